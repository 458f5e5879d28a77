"""One rank of a parallel job: `python -m wan_studio.runtime.rank --serve IDLE_S`, started by the
engine on one machine (runtime/parallel.py) and serving its split jobs one after another, or
`generate` itself under torchrun, one command per machine (run_group); either way with torchrun's
environment (RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT).

Each rank loads the pipeline on its GPU with the memory plan chosen for that GPU, splits its
transformer(s) with diffusers' context parallelism (Ulysses over all ranks) and runs the same call
on the same inputs as every other rank. The output projection gathers the tokens back on every
rank, so each decodes the whole video; rank 0 reports the steps (its stdout) and writes the frames.
"""

from __future__ import annotations

import json
import os
import select
import sys
import threading
import time
from pathlib import Path

import numpy as np

from wan_studio.errors import StudioError
from wan_studio.runtime.parallel import DONE_LINE, FRAMES_FILE, PROGRESS_PREFIX, REQUEST_FILE
from wan_studio.runtime.swap import SwapManager, free_memory, limit_gpu_memory


def vace_plan(model) -> dict:
    """diffusers gives Wan's transformer a context-parallel plan but not VACE's: Wan's, plus the
    first VACE block's two sequences (the video's and the control's) split like the video's."""
    from diffusers.models._modeling_parallel import ContextParallelInput
    from diffusers.models.transformers.transformer_wan import WanTransformer3DModel

    split = ContextParallelInput(split_dim=1, expected_dims=3, split_output=False)
    return {**WanTransformer3DModel._cp_plan, "vace_blocks.0": {"hidden_states": split, "control_hidden_states": split}}


def _check_devices(world: int) -> bool:
    """True on CUDA (one GPU per rank of this machine, checked); False where the ranks share the CPU
    over gloo."""
    import torch

    here = int(os.environ.get("LOCAL_WORLD_SIZE", world))  # torchrun: the ranks on this machine
    if torch.cuda.is_available():
        if torch.cuda.device_count() < here:
            where = "this machine" if here == world else f"this machine's {here} ranks"
            raise StudioError(f"--parallel {world} needs a GPU for each of {where}; it has "
                              f"{torch.cuda.device_count()}.")
        return True
    if torch.accelerator.device_count() == 0:  # diffusers places rank r on accelerator r % count
        raise StudioError(f"--parallel {world} needs a GPU per rank; this machine has none.")
    return False


def split_transformers(pipe, world: int) -> list[str]:
    """Each transformer of the pipeline split over the ranks; what the recipe should know."""
    from diffusers import ContextParallelConfig

    notes = []
    for name in ("transformer", "transformer_2"):
        model = getattr(pipe, name, None)
        if model is None:
            continue
        plan = vace_plan(model) if type(model).__name__ == "WanVACETransformer3DModel" else None
        try:
            model.enable_parallelism(config=ContextParallelConfig(ulysses_degree=world), cp_plan=plan)
        except ValueError as exc:  # an attention kernel without context parallelism: PyTorch's SDPA has it
            if "does not support context parallelism" not in str(exc):
                raise
            model.set_attention_backend("native")
            model.enable_parallelism(config=ContextParallelConfig(ulysses_degree=world), cp_plan=plan)
            notes.append("the attention kernel has no context parallelism; the split ran PyTorch SDPA")
    return notes


def _end_with_parent() -> None:
    """A rank whose engine is gone (killed, crashed) ends too, rather than hold its GPU."""
    parent = os.getppid()

    def watch():
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(3)

    threading.Thread(target=watch, name="wan-studio-rank-parent", daemon=True).start()


def run_group(request, settings, report=None) -> tuple[object, dict]:
    """This process's share of a split job, in the group torch.distributed forms from the
    environment (ours, or torchrun's across machines): the frames, made on every rank, and what the
    recipe says. `report` (rank 0's) hears each step."""
    import torch.distributed as dist

    import pipelines
    from wan_studio import models
    from wan_studio.backend import import_ml
    from wan_studio.loras import apply as lora_apply
    from wan_studio.memory.choose import attention_of, choose
    from wan_studio.memory.plans import machine_from_backend
    from wan_studio.queue.status import JobStatus

    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    cuda = _check_devices(world)
    import_ml()
    # the model's files at hand before the group forms: transformers writes weights only on rank 0
    # of a process group, so a Tiny model built by another rank inside the group would lack them
    models.resolve(request.checkpoint, settings)
    if cuda:
        import torch

        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", rank)))
    dist.init_process_group("nccl" if cuda else "gloo")
    try:
        swap = SwapManager(settings)
        record, wrapper = request.checkpoint, pipelines.wrapper_for(request)
        pinned = request.memory_plan if request.memory_plan != "auto" else settings.memory_plan
        machine = machine_from_backend(swap.backend, settings.memory_limit_gb, settings.compile)
        limit_gpu_memory(swap.backend, machine)
        choice = choose(record, request, machine, pinned, attention_of(request, settings))
        pipe = swap.activate(record, pipelines.pipeline_mode(wrapper, request), choice.plan)
        lora_apply.prepare(pipe, request, record)
        cache = split_step_cache(pipe, request, record)
        notes = split_transformers(pipe, world)
        total = pipelines.total_steps(wrapper, request)
        started, steps = time.perf_counter(), [0]

        def on_step_end(pipe_, step, timestep, callback_kwargs):
            steps[0] += 1
            if report is not None:
                elapsed = time.perf_counter() - started
                report(JobStatus("running", step=steps[0], total=total, elapsed_s=round(elapsed, 3),
                                 remaining_s=round(elapsed / steps[0] * (total - steps[0]), 1)))
            return callback_kwargs

        try:
            frames = wrapper.run(pipe, request, record, on_step_end)
        finally:
            cache.remove()
        return frames, {"ranks": world, "split": "ulysses", "backend": "nccl" if cuda else "gloo",
                        "plan": choice.plan.name, "notes": notes, "cache": cache.as_recipe()}
    finally:
        dist.destroy_process_group()


def split_step_cache(pipe, request, record):
    """The job's step cache, where every rank makes the same choices: MagCache's skips follow its
    fixed curve and TaylorSeer's its schedule, but FirstBlockCache compares each rank's own share of
    the tokens, so ranks could disagree and wait on each other forever: that one runs without."""
    from wan_studio.memory import step_cache

    cache = step_cache.apply(pipe, request, record)
    if cache.method == "first-block":
        cache.remove()
        return step_cache.StepCache(cache.setting, message=(
            "Ran without a step cache: FirstBlockCache (this model's) decides on each GPU's share of the tokens, "
            "so the GPUs of a split job could disagree."))
    return cache


def run(folder: Path) -> None:
    """A job the engine sent (runtime/parallel.py): the request from the folder; rank 0 reports the
    steps on its stdout and writes the frames there."""
    from wan_studio.requests import request_from_dict
    from wan_studio.settings import load_settings

    data = json.loads((folder / REQUEST_FILE).read_text())
    request = request_from_dict(data["request"], data["preparation"])
    first = int(os.environ["RANK"]) == 0

    def report(status):
        print(PROGRESS_PREFIX + json.dumps(status.as_dict()), flush=True)

    frames, account = run_group(request, load_settings(), report if first else None)
    if first:
        np.save(folder / FRAMES_FILE, np.asarray(frames))
        (folder / "account.json").write_text(json.dumps(account))


def serve(idle_s: float) -> None:
    """Jobs from stdin, one JSON line each (its folder, and the environment it runs in: this
    process's settings and its group's address come with the job), until stdin ends or no job comes
    for `idle_s`. A job that fails ends the process, and with it the group."""
    _end_with_parent()
    place = {name: os.environ[name] for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE")}  # this rank's, for good
    while select.select([sys.stdin], [], [], idle_s)[0]:
        line = sys.stdin.readline()
        if not line:
            return
        job = json.loads(line)
        os.environ.clear()
        os.environ.update({**job["env"], **place})
        run(Path(job["folder"]))
        free_memory()  # this job's pipeline, before the next one loads its own
        print(DONE_LINE, flush=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        serve(float(argv[argv.index("--serve") + 1]))
    except StudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
