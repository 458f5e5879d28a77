"""Choosing a memory plan: the first rung of the machine's ladder (memory.plans) whose estimate
(memory.estimate) fits with a safety margin; a pinned plan name starts at that rung. Below the
last rung `NoPlanFits` says what would fit instead."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from wan_studio import catalog
from wan_studio.backend import detect, gpu_count, gpu_link_gb_s
from wan_studio.catalog import Checkpoint
from wan_studio.errors import StudioError
from wan_studio.memory.estimate import (
    estimate,
    latent_geometry,
    parallel_seconds,
    shape_of,
    transformer_config,
    zerogpu_duration,
)
from wan_studio.memory.plans import PLAN_NAMES, Machine, NoPlanFits, Plan, ladder, machine_from_backend


def _tier(name: str) -> tuple[str, ...]:
    """The rungs a pinned plan name may use (Balanced may quantize if plain Balanced does not fit)."""
    return {"balanced": ("balanced", "balanced-quantized")}.get(name, (name,))


@dataclass(frozen=True)
class Choice:
    plan: Plan
    machine: Machine
    estimate: object  # wan_studio.memory.estimate.Estimate
    considered: tuple  # (Plan, Estimate, fits) for every rung looked at, in order
    pinned: str = "auto"
    messages: tuple[str, ...] = ()

    @property
    def rungs(self) -> list[Plan]:
        return [plan for plan, _, _ in self.considered]


def _check_plan_name(name: str) -> str:
    name = (name or "auto").strip().lower().replace(" ", "-").replace("_", "-")
    if name not in PLAN_NAMES:
        raise StudioError(f"Unknown memory plan '{name}'; choose one of {', '.join(PLAN_NAMES)}.")
    return name


def choose(record: Checkpoint, shape, machine: Machine, pinned: str = "auto", attention: str = "auto") -> Choice:
    """The fastest plan whose estimate fits; `shape` is a request (or anything with its fields).

    On ZeroGPU without a fixed size, `large` is tried before `xlarge` (half the quota cost). A
    pinned attention backend replaces the device's choice on a CUDA GPU (elsewhere only SDPA runs).
    """
    pinned = _check_plan_name(pinned)
    if machine.kind == "zerogpu" and machine.zerogpu_size is None:
        machine = machine.with_zerogpu_size("large")
    sizes = ["large", "xlarge"] if machine.kind == "zerogpu" and machine.zerogpu_size == "large" else [None]
    considered = []
    for size in sizes:
        current = machine.with_zerogpu_size(size) if size else machine
        rungs = ladder(current, record)
        if attention not in (None, "auto") and current.kind in ("cuda", "zerogpu"):
            rungs = [dataclasses.replace(p, attention=attention, attention_pinned=True) for p in rungs]
        if pinned != "auto":
            allowed = _tier(pinned)
            matching = [p for p in rungs if p.name in allowed]
            if not matching:  # e.g. Low VRAM on ZeroGPU: the nearest smaller rung it has
                matching = [rungs[-1]]
            rungs = matching
        for plan in rungs:
            est = estimate(record, shape, plan, current)
            fits = est.fits(current)
            considered.append((plan, est, fits))
            if fits:
                return Choice(plan, current, est, tuple(considered), pinned, _ram_warning(est, current))
    if pinned != "auto":  # the user asked for this plan: run it, and say it may not fit
        plan, est, _ = considered[0]
        note = (f"The pinned {plan.label} plan is estimated at {est.peak_gb:.1f} GiB, more than the "
                f"{est.budget_gb(machine):.1f} GiB available; it may run out of memory and step down.")
        return Choice(plan, machine, est, tuple(considered), pinned, (note,))
    raise NoPlanFits(what_would_fit(record, shape, machine, considered[-1][1]))


def _ram_warning(est, machine: Machine) -> tuple[str, ...]:
    """RAM does not decide the plan (the OS can page), but a user should know before a slow run."""
    if machine.kind != "cpu" and est.ram_gb > machine.ram_gb * 0.95:
        return (f"This run needs about {est.ram_gb:.0f} GiB of RAM for the weights kept off the GPU; "
                f"the machine has {machine.ram_gb:.0f} GiB, so it may slow down while the system pages.",)
    return ()


def what_would_fit(record: Checkpoint, shape, machine: Machine, smallest) -> str:
    """A message for a run no plan can hold: what it needs, and what would fit instead."""
    want = shape_of(shape)
    plan = ladder(machine, record)[-1]
    head = (f"{record.name} at {want.width}x{want.height}, {want.frames} frames needs about "
            f"{smallest.peak_gb:.1f} GiB even with the {plan.label} plan; {machine.describe()} offers "
            f"{max(0.0, smallest.budget_gb(machine)):.1f} GiB.")
    options = []
    frames = want.frames
    while frames > record.frames_min and record.frame_rule == "4k+1":
        frames -= 4
        if estimate(record, dataclasses.replace(want, frames=frames), plan, machine).fits(machine):
            options.append(f"{frames} frames at this size")
            break
    for width, height in sorted(record.sizes, key=lambda s: s[0] * s[1]):
        if width * height < want.width * want.height:
            if estimate(record, dataclasses.replace(want, width=width, height=height), plan, machine).fits(machine):
                options.append(f"{width}x{height} with {want.frames} frames")
                break
    for other in catalog.for_mode(want.mode, record.generation):
        if other.id != record.id and not other.is_tiny:
            w, h = other.default_size
            other_shape = dataclasses.replace(want, width=w, height=h, frames=min(want.frames, other.frames_max))
            if estimate(other, other_shape, ladder(machine, other)[-1], machine).fits(machine):
                options.append(f"{other.name} at {w}x{h}")
                break
    tail = " What would fit: " + "; or ".join(options) + "." if options else " Nothing smaller fits this machine."
    return head + tail


def cost_line(request, machine: Machine | None = None, pinned: str | None = None, attention: str = "auto",
              gpus: int | None = None) -> str:
    """One line for the interface before a run: checkpoint, frames x size, time, memory, plan; on a
    machine with several GPUs (`gpus`, else counted), the split over them when it would save time."""
    record = request.checkpoint
    machine = machine or machine_from_backend(detect())
    seconds = request.frames / record.fps
    head = f"{record.name} · {request.frames} frames ({seconds:.1f} s) at {request.width}x{request.height}"
    try:
        choice = choose(record, request, machine, pinned or getattr(request, "memory_plan", "auto"), attention)
    except NoPlanFits as exc:
        return f"{head} · does not fit: {exc}"
    est = choice.estimate
    split = getattr(request, "parallel", 1)
    seconds_run = (parallel_seconds(est, record, request, choice.plan, choice.machine, split, _link(choice.machine))
                   if split > 1 else est.seconds)
    took = "under a second" if seconds_run < 1 else f"about {_duration(seconds_run)}"
    line = f"{head} · {took} · peak {est.peak_gb:.1f} GiB · {choice.plan.label} plan ({choice.plan.hint})"
    if choice.plan.attention != "native":
        from wan_studio.memory.attention import LABELS

        line += f" · {LABELS.get(choice.plan.attention, choice.plan.attention)}"
    if split > 1:
        line += f" · split over {split} GPUs"
    else:
        line += _parallel_offer(request, record, choice, gpus)
    if choice.machine.kind == "zerogpu":
        windows = request.windows() if getattr(request, "long_video", False) else None
        if windows is not None:  # one reservation a window, so none runs past the Space's limit
            line += (f" · reserves ZeroGPU {choice.machine.zerogpu_size} for "
                     f"{zerogpu_duration(est, parts=windows.count)} s for each of {windows.count} windows")
        else:
            line += f" · reserves ZeroGPU {choice.machine.zerogpu_size} for {zerogpu_duration(est)} s"
    return line


def _link(machine) -> float | None:
    """NVLink's GB/s between this machine's GPUs, where it joins them; None: PCIe (the model's default)."""
    if machine.kind != "cuda":
        return None
    return gpu_link_gb_s()


OFFER_AFTER_S = 300  # a job shorter than this is not worth the split's start-up


def _parallel_offer(request, record, choice, gpus: int | None) -> str:
    """" · on N GPUs about T (--parallel N)" when this machine has GPUs to spare and splitting the job
    would save at least a fifth of its time; else ""."""
    if gpus is None:
        gpus = gpu_count() if choice.machine.kind == "cuda" else 0
    est = choice.estimate
    if gpus < 2 or est.seconds < OFFER_AFTER_S or not request.mode_info.parallel:
        return ""
    if getattr(request, "long_video", False) and request.windows(record) is not None:
        return ""
    cfg = transformer_config(record)
    tokens, _ = latent_geometry(record, shape_of(request))
    link = _link(choice.machine)
    options = [(parallel_seconds(est, record, request, choice.plan, choice.machine, n, link), n)
               for n in range(2, gpus + 1) if cfg["num_attention_heads"] % n == 0 and tokens % n == 0]
    if not options:
        return ""
    seconds, ranks = min(options)
    if seconds > 0.8 * est.seconds:
        return ""
    return f" · on {ranks} GPUs about {_duration(seconds)} (--parallel {ranks})"


def _duration(seconds: float) -> str:
    if seconds < 1:
        return "under a second"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def attention_of(request, settings) -> str:
    """The job's attention pin, else the studio's (config.json `attention`), else auto."""
    return request.attention if request.attention not in (None, "auto") else settings.attention
