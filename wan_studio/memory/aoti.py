"""ZeroGPU: the transformers' repeated blocks compiled ahead of time (AOTInductor) through `spaces`.

A Space cannot torch.compile inside a GPU reservation worth having, so its blocks come compiled:
- from the Hub, where the catalog names a repo of compiled blocks with a variant for the plan's weights
  format (`spaces.aoti_blocks_load`; Wan 2.2 A14B: `zerogpu-aoti/Wan2`, variant `fp8da`). The start loads
  them before anything else; a repo that cannot be fetched is remembered for the process (its reason in
  the start warning) and the start compiles instead;
- else compiled on the Space when it starts (`compile_in_reservation`): one block's inputs are captured
  from the first step of a run at the checkpoint's default size, the block is exported with its token
  count left free (so other sizes and frame counts use the same code), compiled, and saved as a
  package. Every block of every expert then runs that code with its own weights
  (`spaces.aoti_load_from_package_dir`), so one compile serves a whole MoE pair. The package is kept
  under the models folder, per checkpoint, weights format and torch / diffusers / spaces versions: a
  later start with the same folder (a Space's persistent storage) only loads it. A compile that failed
  is remembered there too, so a restart does not spend another reservation on it.
The compiled code replaces each block's `forward` on the same weights, so it goes on and comes off
like a hook (`attach`, `detach`): a job with LoRAs, whose weights the compiled blocks would ignore,
runs the plain blocks without reloading anything. Where none is possible the run is eager, and the
recipe says why.
"""

from __future__ import annotations

import inspect
import json
import logging
import re
import time
from importlib.metadata import version
from pathlib import Path

from wan_studio.memory.compile import FOLDER
from wan_studio.memory.plans import Plan, blocks_of, has_blocks, repo_blocks

log = logging.getLogger(__name__)
COMPILE_RESERVATION_S = 1500  # the GPU reservation compiling may take (a 14B block: minutes)
MADE, FAILED = "made.json", "failed.json"  # written last: a package folder with neither is unfinished
_said_once: set[str] = set()
_compiling: dict = {}  # the pipeline being compiled: the reservation's process gets it by fork, not pickled


def _once(message: str) -> None:
    if message not in _said_once:
        _said_once.add(message)
        log.info(message)


def package_dir(models_dir: Path, record, plan: Plan) -> Path:
    """Where blocks compiled on this Space for this checkpoint and weights format are kept."""
    versions = "-".join(f"{name}-{version(name)}" for name in ("torch", "diffusers", "spaces"))
    return models_dir / FOLDER / "aoti" / record.id / re.sub(r"[^A-Za-z0-9.]+", "-", f"{plan.quantization}-{versions}")


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def made(folder: Path) -> dict | None:
    """The record of a finished compile in `folder` (seconds it took, size it was captured at), or None."""
    return _read(folder / MADE)


def failed(folder: Path) -> dict | None:
    """The record of a compile that failed in `folder` ({"error": ...}), or None."""
    return _read(folder / FAILED)


def compile_in_reservation(pipe, size: str, width: int, height: int, frames: int, folder: Path) -> dict:
    """`compile_at_start` in a GPU reservation of `size`; its MADE record."""
    import spaces

    # a new function each time: spaces keeps a worker per function, and a worker forked for an earlier
    # checkpoint would still hold that one's pipeline; the function itself holds none (spaces keeps it)
    _compiling["pipe"] = pipe
    try:
        reservation = spaces.GPU(duration=COMPILE_RESERVATION_S, size=size)(
            lambda *args: compile_at_start(_compiling["pipe"], *args))
        return reservation(width, height, frames, str(folder))
    finally:
        _compiling.clear()


def compile_at_start(pipe, width: int, height: int, frames: int, folder: str) -> dict:
    """Capture the first block's inputs from the first step of a run of `pipe`, export the block with the
    token count free, compile it into `folder` and say so in its MADE record. A block that will not
    export or compile is said in FAILED, so later starts do not try again (a failed reservation is
    not: the next start may get one)."""
    try:
        return _compile(pipe, width, height, frames, Path(folder))
    except Exception as exc:
        passing = isinstance(exc, (OSError, MemoryError)) or "out of memory" in str(exc).lower()
        if not passing:  # the block itself will not export or compile: remembered
            Path(folder).mkdir(parents=True, exist_ok=True)
            error = (str(exc) or type(exc).__name__).splitlines()[0][:300]
            (Path(folder) / FAILED).write_text(json.dumps({"error": error}))
        raise


def _compile(pipe, width: int, height: int, frames: int, folder: Path) -> dict:
    import spaces
    import torch
    from torch.utils._pytree import tree_map

    started = time.perf_counter()
    block = pipe.transformer.blocks[0]
    with torch.no_grad(), spaces.aoti_capture(block) as call:  # stops the run at the first block
        pipe(prompt="a", height=height, width=width, num_frames=frames, num_inference_steps=2, output_type="latent")
    if not call.args and not call.kwargs:
        raise RuntimeError("the run never reached the transformer's first block")
    arguments = inspect.signature(block.forward).bind(*call.args, **call.kwargs).arguments
    # dim 1 of every tensor is the token count (video, text or rotary): free; the rest is fixed
    free_tokens = tree_map(lambda value: {1: torch.export.Dim.AUTO}
                           if isinstance(value, torch.Tensor) and value.ndim >= 2 else None, dict(arguments))
    exported = torch.export.export(block, args=call.args, kwargs=call.kwargs, dynamic_shapes=free_tokens)
    inputs = [node for node in exported.graph.nodes
              if node.op == "placeholder" and node.name in exported.graph_signature.user_inputs]
    if not isinstance(inputs[0].meta["val"].shape[1], torch.SymInt):  # the video tokens fixed: one size only
        raise RuntimeError("export fixed the block's video token count; the package would run at one size only")
    spaces.aoti_compile_and_save(folder, exported, submodule="blocks")
    record = {"seconds": round(time.perf_counter() - started, 1), "captured_at": f"{width}x{height}x{frames}",
              "torch": torch.__version__}
    (folder / MADE).write_text(json.dumps(record))
    return record


def attach(transformers: list, plan: Plan, aoti: dict | None) -> list[str]:
    """Give the transformers their compiled blocks, compiled here at start for the plan's weights
    (`aoti["local"]`) or from the Hub repo the catalog names; notes for the recipe. After the weights
    are in place: each block's compiled code reads that block's tensors as they are now."""
    try:
        import spaces
    except ImportError:
        return ["AOTI skipped: the spaces package is not installed"]
    notes = []
    for transformer in transformers:
        if getattr(transformer, "peft_config", None):
            # an earlier job's LoRA layers (peft) are on these weights: the package's weight names are the
            # plain block's, so they go (a later LoRA job loads its LoRAs again)
            transformer.unload_lora()
            notes = ["LoRA layers of an earlier job unloaded for the compiled blocks"]
    local = (aoti or {}).get("local", {}).get(plan.quantization)
    if local:
        folder = Path(local["folder"])
        for transformer in transformers:
            spaces.aoti_load_from_package_dir(transformer, folder)
        return notes + [f"AOTI blocks compiled on this Space at start in {local['seconds']:.0f} s (kept in {folder})"]
    source = repo_blocks(aoti, plan.quantization)
    if source is None or not hasattr(spaces, "aoti_blocks_load"):
        _once("AOTI: no compiled graphs for this checkpoint; running eager")
        return notes + ["AOTI skipped: no compiled graphs for this checkpoint"]
    try:
        load_from_repo(transformers, *source)
    except Exception as exc:  # the Hub or the graphs may be missing: eager still works
        detach(transformers)
        _once(f"AOTI: could not load compiled graphs ({exc}); running eager")
        return notes + [f"AOTI skipped: {exc}"]
    return notes + [f"AOTI blocks from {repo_name(*source)}"]


def repo_name(repo: str, variant: str | None) -> str:
    return f"{repo} ({variant})" if variant else repo


def load_from_repo(transformers: list, repo: str, variant: str | None) -> None:
    """Each transformer's repeated blocks from the repo's package for them (`spaces.aoti_blocks_load`:
    `<BlockClass>.<variant>/package.pt2`, downloaded through the Hub cache); raises what the download
    raised."""
    import spaces

    for transformer in transformers:
        spaces.aoti_blocks_load(transformer, repo, variant=variant)


def why_not_fetched(exc: BaseException) -> str:
    """Why a repo's blocks could not be fetched, in a few words."""
    from huggingface_hub import constants
    from huggingface_hub.errors import LocalEntryNotFoundError, RemoteEntryNotFoundError, RepositoryNotFoundError

    if isinstance(exc, LocalEntryNotFoundError):
        if constants.HF_HUB_OFFLINE:
            return "the Hub is off for this process (HF_HUB_OFFLINE=1) and they are not in its cache"
        cause = exc.__cause__ or exc.__context__
        said = (str(cause) or type(cause).__name__).splitlines()[0] if cause is not None else ""
        return "the Hub could not be reached" + (f" ({said})" if said else "") + " and they are not in its cache"
    if isinstance(exc, RemoteEntryNotFoundError):
        found = re.search(r"/resolve/[^/\s]+/(\S+?)\.?(\s|$)", str(exc))
        return f"the repo has no {found.group(1)}" if found else "the repo has no package for these blocks"
    if isinstance(exc, RepositoryNotFoundError):
        return "the repo does not exist or is not public"
    return (str(exc) or type(exc).__name__).splitlines()[0][:300]


def detach(transformers: list) -> None:
    """Put back the plain blocks: spaces sets the compiled code as each block's own `forward` (taken
    off after any hook put over it)."""
    for transformer in transformers:
        for module in transformer.modules():
            if type(module.__dict__.get("forward")).__module__.startswith("spaces."):
                del module.forward



def why_uncompiled(record, plan: Plan, compile_setting: str) -> str:
    """The recipe's line for a Space run without compiled blocks."""
    if compile_setting == "off":
        return "AOTI skipped: compile is off in the settings; runs uncompiled"
    aoti = blocks_of(record)
    if has_blocks(aoti, plan.quantization):  # the job said why (its LoRAs, a failure)
        return "AOTI not used for this job; runs uncompiled"
    unfetched = aoti.get("unfetched", {}).get(plan.quantization)
    if unfetched is not None:
        source = repo_name(aoti["repo"], aoti.get("variants", {}).get(plan.quantization))
        return (f"AOTI skipped: the blocks from {source} could not be fetched ({unfetched}) and none were "
                "compiled at start; runs uncompiled")
    weights = f" with {plan.quantization} weights" if plan.quantization != "none" else ""
    return (f"AOTI skipped: no compiled blocks for {record.name}{weights} (the catalog names none and none were "
            "compiled at start); runs uncompiled")
