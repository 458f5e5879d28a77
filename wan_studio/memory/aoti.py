"""ZeroGPU: the transformers' repeated blocks compiled ahead of time (AOTInductor) through `spaces`.

A Space cannot torch.compile inside a GPU reservation worth having, so its blocks come compiled:
- from the Hub, where the catalog names a repo of compiled blocks (`spaces.aoti_blocks_load`);
- else compiled on the Space when it starts (`compile_at_start`): one block's inputs are captured from
  the first step of a run at the checkpoint's default size, the block is exported with its token count
  left free (so other sizes and frame counts use the same code), compiled, and saved as a package. Every
  block of every expert then runs that code with its own weights (`spaces.aoti_load_from_package_dir`),
  so one compile serves a whole MoE pair. The package is kept under the models folder, per checkpoint,
  weights format and torch version: a later start only loads it.
Where neither is possible the run is eager, and the recipe says why.
"""

from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path

from wan_studio.memory.compile import FOLDER
from wan_studio.memory.plans import Plan

log = logging.getLogger(__name__)
COMPILE_RESERVATION_S = 1500  # the GPU reservation compiling may take (a 14B block: minutes)
MADE = "made.json"  # written last: a package folder without it is unfinished
_said_once: set[str] = set()


def _once(message: str) -> None:
    if message not in _said_once:
        _said_once.add(message)
        log.info(message)


def package_dir(models_dir: Path, record, plan: Plan) -> Path:
    """Where blocks compiled on this Space for this checkpoint and weights format are kept."""
    import torch

    version = re.sub(r"[^A-Za-z0-9.]+", "-", torch.__version__)
    return models_dir / FOLDER / "aoti" / record.id / f"{plan.quantization}-torch-{version}"


def made(folder: Path) -> dict | None:
    """The record of a finished compile in `folder` (seconds it took, size it was captured at), or None."""
    try:
        return json.loads((folder / MADE).read_text())
    except (OSError, ValueError):
        return None


def compile_at_start(pipe, transformer, width: int, height: int, frames: int, folder: Path) -> dict:
    """Capture the first block's inputs from the first step of a run of `pipe`, export the block with the
    token count free, compile it into `folder` and say so in its MADE record. Runs inside the GPU
    reservation."""
    import inspect

    import spaces
    import torch
    from torch.utils._pytree import tree_map

    started = time.perf_counter()
    block = transformer.blocks[0]
    with torch.no_grad(), spaces.aoti_capture(block) as call:  # stops the run at the first block
        pipe(prompt="a", height=height, width=width, num_frames=frames, num_inference_steps=2, output_type="latent")
    if not call.args and not call.kwargs:
        raise RuntimeError("the run never reached the transformer's first block")
    arguments = inspect.signature(block.forward).bind(*call.args, **call.kwargs).arguments
    # dim 1 of every tensor is the token count (video, text or rotary): free; the rest is fixed
    free_tokens = tree_map(lambda value: {1: torch.export.Dim.AUTO}
                           if isinstance(value, torch.Tensor) and value.ndim >= 2 else None, dict(arguments))
    exported = torch.export.export(block, args=call.args, kwargs=call.kwargs, dynamic_shapes=free_tokens)
    spaces.aoti_compile_and_save(folder, exported, submodule="blocks")
    record = {"seconds": round(time.perf_counter() - started, 1), "captured_at": f"{width}x{height}x{frames}",
              "torch": torch.__version__}
    (folder / MADE).write_text(json.dumps(record))
    return record


def load(transformers: list, plan: Plan, aoti: dict | None) -> list[str]:
    """Give the transformers their compiled blocks: compiled here at start (`aoti["local"]`) or from the
    Hub repo the catalog names; notes for the recipe."""
    try:
        import spaces
    except ImportError:
        return ["AOTI skipped: the spaces package is not installed"]
    if aoti and aoti.get("local"):
        folder = Path(aoti["local"])
        for transformer in transformers:
            spaces.aoti_load_from_package_dir(transformer, folder)
        return [f"AOTI blocks compiled on this Space at start in {aoti['seconds']:.0f} s (kept in {folder})"]
    if not aoti or not hasattr(spaces, "aoti_blocks_load"):
        _once("AOTI: no compiled graphs for this checkpoint; running eager")
        return ["AOTI skipped: no compiled graphs for this checkpoint"]
    variant = aoti.get("variants", {}).get(plan.quantization)
    try:
        for transformer in transformers:
            spaces.aoti_blocks_load(transformer, aoti["repo"], variant=variant)
    except Exception as exc:  # the Hub or the graphs may be missing: eager still works
        _once(f"AOTI: could not load compiled graphs ({exc}); running eager")
        return [f"AOTI skipped: {exc}"]
    return [f"AOTI blocks from {aoti['repo']}" + (f" ({variant})" if variant else "")]


def why_uncompiled(record, compile_setting: str) -> str:
    """The recipe's line for a Space run without compiled blocks."""
    if compile_setting == "off":
        return "AOTI skipped: compile is off in the settings; runs uncompiled"
    return (f"AOTI skipped: no compiled blocks for {record.name} (the catalog names none and none were compiled "
            "at start); runs uncompiled")
