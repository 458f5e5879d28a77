"""torch.compile of the transformers' repeated blocks, and the compiled graphs kept between starts.

Regional compilation (diffusers' `compile_repeated_blocks`) compiles one block and reuses it for every
block of the model and of its second expert, so compiling takes seconds to a minute instead of many
minutes. Not `fullgraph`: group offloading's onload and offload run around each block and are
`torch.compiler.disable`d, so there the graph breaks at the block's edges; the same weights may get
another plan's hooks without compiling again.

The graphs compiled in this process are written to one file per torch version and device
(`torch.compiler.save_cache_artifacts`) after a job that compiled something; the next start loads it
before compiling, so its first job finds every graph in the cache instead of compiling again. That
matters where the inductor's own cache in /tmp does not survive a restart (containers, Spaces).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)
COMPILE_CHOICES = ("auto", "on", "off")
FOLDER = "compiled"  # under the models folder
_loaded: set[Path] = set()  # artifact files loaded into this process
_lock = threading.Lock()


def why_not(device: str) -> str | None:
    """Why torch.compile cannot run on this device here, or None when it can."""
    import importlib.util

    if device.startswith("cuda"):
        return None if importlib.util.find_spec("triton") is not None else "torch.compile needs Triton on CUDA"
    if device == "cpu":
        compiler = os.environ.get("CXX", "g++")
        return None if shutil.which(compiler) else f"torch.compile on the CPU needs a C++ compiler ({compiler})"
    return f"torch.compile is not used on {device}"


def artifacts_file(models_dir: Path, device_name: str) -> Path:
    """Where this torch version's compiled graphs for this device are kept."""
    import torch

    slug = re.sub(r"[^A-Za-z0-9.]+", "-", f"torch-{torch.__version__}-{device_name}").strip("-").lower()
    return models_dir / FOLDER / f"{slug}.bin"


def load_artifacts(path: Path) -> None:
    """Put the graphs an earlier start compiled into this process's caches, once per file."""
    import torch

    with _lock:
        if path in _loaded or not path.exists():
            return
        _loaded.add(path)
        try:
            torch.compiler.load_cache_artifacts(path.read_bytes())
            log.info("compiled graphs loaded from %s", path)
        except Exception as exc:  # another torch build's file, or a damaged one: compile afresh
            log.warning("could not load compiled graphs from %s (%s); compiling again", path, exc)


def save_artifacts(path: Path) -> None:
    """Write every graph this process compiled or loaded, replacing the file atomically."""
    import torch

    saved = torch.compiler.save_cache_artifacts()
    if saved is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_suffix(f".{os.getpid()}.part")
    part.write_bytes(saved[0])
    os.replace(part, path)
    with _lock:
        _loaded.add(path)


def compile_blocks(transformers: list, device: str, artifacts: Path | None) -> list[str]:
    """Compile each transformer's repeated blocks (lazily: the first step compiles); notes for the recipe."""
    reason = why_not(device)
    if reason is not None:
        return [f"compile skipped: {reason}"]
    if artifacts is not None:
        load_artifacts(artifacts)
    for transformer in transformers:
        if not getattr(transformer, "_repeated_blocks", None):
            return [f"compile skipped: {type(transformer).__name__} names no repeated blocks"]
    for transformer in transformers:
        transformer.compile_repeated_blocks()
    return []


@dataclass(frozen=True)
class Compiling:
    """What compiling cost during a job: seconds, graphs compiled, graphs found in the cache."""

    seconds: float = 0.0
    compiled: int = 0
    cached: int = 0

    def __sub__(self, other: "Compiling") -> "Compiling":
        return Compiling(round(self.seconds - other.seconds, 3), self.compiled - other.compiled,
                         self.cached - other.cached)

    def note(self) -> str | None:
        if not (self.compiled or self.cached):
            return None
        parts = [f"{n} graph{'s' * (n > 1)} {word}" for n, word in ((self.compiled, "compiled"),
                                                                     (self.cached, "from the cache")) if n]
        return f"compiling took {self.seconds:.1f} s ({', '.join(parts)})"


def so_far() -> Compiling:
    """This process's compile time and graph counts until now (torch's own counters); zero when torch
    has never been imported or lacks them."""
    import sys

    if "torch" not in sys.modules:
        return Compiling()
    try:
        from torch._dynamo.utils import compilation_time_metrics, counters
    except ImportError:
        return Compiling()
    seconds = sum(compilation_time_metrics.get("_compile.compile_inner", []))
    inductor = counters["inductor"]
    return Compiling(round(seconds, 3), inductor["fxgraph_cache_miss"], inductor["fxgraph_cache_hit"])
