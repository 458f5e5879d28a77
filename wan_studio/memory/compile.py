"""torch.compile of the transformers' repeated blocks, and the compiled graphs kept between starts.

Regional compilation (diffusers' `compile_repeated_blocks`) compiles one block and reuses it for every
block of the model and of its second expert, so compiling takes seconds to a minute instead of many
minutes. Not `fullgraph`: group offloading's onload and offload run around each block and are
`torch.compiler.disable`d, so there the graph breaks at the block's edges; the same weights may get
another plan's hooks without compiling again.

The graphs a process compiled or used are written to a file of its own, per torch version and device
(`torch.compiler.save_cache_artifacts`), after a job that compiled or read any; the next start loads
every such file before compiling, so its first job finds its graphs in the cache instead of compiling
again. That matters where the inductor's own cache in /tmp does not survive a restart (containers).
A file whose every graph a newer one holds is removed.

A job whose compiled blocks fail (a graph that will not compile, a compiled block that raises) runs
again uncompiled (`raised_by_compiler` tells those errors from the rest).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import platform
import re
import shutil
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)
BACKEND = "inductor"  # torch.compile's backend
FOLDER = "compiled"  # under the models folder
# artifact files loaded (or written) by this process -> (their mtime and size then, their graphs' keys)
_loaded: dict[Path, tuple] = {}
_own_file: Path | None = None  # the file this process writes
_lock = threading.Lock()


def why_not(device: str) -> str | None:
    """Why torch.compile cannot run on this device here, or None when it can."""
    if device.startswith("cuda"):
        return None if importlib.util.find_spec("triton") is not None else "torch.compile needs Triton on CUDA"
    if device == "cpu":
        compiler = os.environ.get("CXX", "g++")
        return None if shutil.which(compiler) else f"torch.compile on the CPU needs a C++ compiler ({compiler})"
    return f"torch.compile is not used on {device}"


def artifacts_prefix(models_dir: Path, device_name: str) -> Path:
    """The files that keep this torch version's compiled graphs for this device: `<prefix>-*.bin`, one
    per process that compiled."""
    import torch

    slug = re.sub(r"[^A-Za-z0-9.]+", "-", f"torch-{torch.__version__}-{device_name}").strip("-").lower()
    return models_dir / FOLDER / slug


def _keys(info) -> set[tuple[str, str]]:
    return {(kind, key) for kind, keys in (getattr(info, "artifacts", None) or {}).items() for key in keys}


def _files(prefix: Path) -> list[Path]:
    """`<prefix>-<date>-<time>-<host>-<pid>.bin`: this prefix's files (not a longer device name's)."""
    pattern = re.compile(re.escape(prefix.name) + r"-\d{8}-\d{6}-[a-z0-9.-]*-\d+\.bin")
    return sorted(path for path in prefix.parent.glob(f"{prefix.name}-*.bin") if pattern.fullmatch(path.name))


def _stamp(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size


def load_artifacts(prefix: Path) -> None:
    """Put the graphs earlier starts compiled into this process's caches (each file once)."""
    import torch

    with _lock:
        for path in _files(prefix):
            if path in _loaded:
                continue
            try:
                stamp = _stamp(path)
                info = torch.compiler.load_cache_artifacts(path.read_bytes())
            except Exception as exc:  # damaged, or going: those graphs compile afresh; the file is left alone
                log.warning("could not load compiled graphs from %s (%s)", path, exc)
                continue
            if info is not None:
                _loaded[path] = (stamp, _keys(info))
                log.info("compiled graphs loaded from %s", path)


def save_artifacts(prefix: Path) -> None:
    """Write the graphs this process compiled or used to its own file (rewritten as it compiles more),
    and drop earlier files whose every graph it now holds. A file that cannot be written costs only
    the next start's compile time, never the job."""
    import torch

    global _own_file
    try:
        saved = torch.compiler.save_cache_artifacts()  # everything recorded since the process started
        if saved is None:
            return
        with _lock:
            if _own_file is None or _own_file.parent != prefix.parent:
                host = re.sub(r"[^a-z0-9.-]+", "-", platform.node().lower())[:40]
                _own_file = prefix.parent / f"{prefix.name}-{time.strftime('%Y%m%d-%H%M%S')}-{host}-{os.getpid()}.bin"
            _own_file.parent.mkdir(parents=True, exist_ok=True)
            part = _own_file.with_suffix(".part")
            part.write_bytes(saved[0])
            os.replace(part, _own_file)
            kept = _keys(saved[1])
            _loaded[_own_file] = (_stamp(_own_file), kept)
            for path, (stamp, keys) in list(_loaded.items()):
                # a file this one covers goes, unless its writer added to it since it was read here
                if path != _own_file and keys <= kept and path.exists() and _stamp(path) == stamp:
                    path.unlink()
                    del _loaded[path]
    except Exception as exc:
        log.warning("could not keep the compiled graphs under %s: %s", prefix.parent, exc)


def compile_blocks(transformers: list, device: str, artifacts: Path | None) -> list[str]:
    """Compile each transformer's repeated blocks (lazily: the first step compiles); notes for the recipe.
    `artifacts`: the prefix of the files of graphs compiled before (`artifacts_prefix`)."""
    reason = why_not(device)
    if reason is not None:
        return [f"compile skipped: {reason}"]
    if artifacts is not None:
        load_artifacts(artifacts)
    for transformer in transformers:
        if not getattr(transformer, "_repeated_blocks", None):
            return [f"compile skipped: {type(transformer).__name__} names no repeated blocks"]
    for transformer in transformers:
        transformer.compile_repeated_blocks(backend=BACKEND)
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
        if not (self.compiled or self.cached or self.seconds):
            return None
        parts = [f"{n} graph{'s' * (n > 1)} {word}" for n, word in ((self.compiled, "compiled"),
                                                                     (self.cached, "from the cache")) if n]
        return f"compiling took {self.seconds:.1f} s" + (f" ({', '.join(parts)})" if parts else "")


def so_far() -> Compiling:
    """This process's compile time and graph counts until now (torch's own counters); zero when torch
    has never been imported or lacks them."""
    if "torch" not in sys.modules:
        return Compiling()
    try:
        from torch._dynamo.utils import compilation_time_metrics, counters
    except ImportError:
        return Compiling()
    seconds = sum(compilation_time_metrics.get("_compile.compile_inner", []))
    inductor = counters["inductor"]
    return Compiling(round(seconds, 3), inductor["fxgraph_cache_miss"], inductor["fxgraph_cache_hit"])


_COMPILER_CODE = ("/torch/_dynamo/", "/torch/_inductor/", "/torch/export/", "/spaces/zero/torch/aoti")


def raised_by_compiler(exc: BaseException) -> bool:
    """Whether an error came from compiling or from compiled code (dynamo, inductor, AOTInductor,
    spaces' compiled blocks) rather than from the model itself."""
    dynamo = sys.modules.get("torch._dynamo.exc")
    if dynamo is not None and isinstance(exc, (dynamo.TorchRuntimeError, dynamo.UserError)):
        return False  # the model's own error, met while tracing: it fails uncompiled too
    if dynamo is not None and isinstance(exc, dynamo.TorchDynamoException):
        return True
    frames = []
    traceback = exc.__traceback__
    while traceback is not None:
        frames.append(traceback.tb_frame.f_code.co_filename.replace("\\", "/"))
        traceback = traceback.tb_next
    return any(part in frame for frame in frames for part in _COMPILER_CODE)
