"""`python -m wan_studio plan`: the memory plan a run gets, its estimate, and the rungs considered.

    python -m wan_studio plan --model wan2.1-t2v-14b --size 1280x720 --frames 81 --gpu "RTX 4080" [--json]
    python -m wan_studio plan --model wan2.2-t2v-a14b --vram 16GiB --backend cuda    (a GPU not in the table)
    python -m wan_studio plan --table [--write-readme]    (docs/memory-and-speed.md's table: minutes per GPU and preset)
    python -m wan_studio plan --fit [bench/results/gpu-*.json] [--write]    (refit the time model)

Without --gpu or --backend the machine at hand is used.
"""

from __future__ import annotations

import dataclasses
import json
import re
import statistics

from wan_studio.errors import StudioError

README_START = "<!-- plan-table:start -->"
README_END = "<!-- plan-table:end -->"


def memory_gib(text: str) -> float:
    """'16GiB', '16 GB', '16' -> 16.0 (GiB, what a GPU reports)."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*(gib|gb|g)?\s*", str(text).lower())
    if not match:
        raise StudioError(f"Memory must look like 16GiB; got {text!r}.")
    return float(match.group(1))


def capability(text: str) -> tuple[int, int]:
    try:
        major, minor = str(text).split(".")
        return int(major), int(minor)
    except ValueError:
        raise StudioError(f"CUDA capability must look like 8.9; got {text!r}.")


def add_plan_parser(sub) -> None:
    from wan_studio.memory.attention import BACKENDS as ATTENTION_BACKENDS
    from wan_studio.memory.plans import BACKENDS, PLAN_NAMES
    from wan_studio.memory.step_cache import SETTINGS as STEP_CACHE_SETTINGS

    plan = sub.add_parser("plan", help="show the memory plan, estimate and rungs for a run on a machine")
    plan.add_argument("--model", help="catalog id (see `models`)")
    plan.add_argument("--mode", help="default: the checkpoint's first mode")
    plan.add_argument("--size", help="WIDTHxHEIGHT; default: the checkpoint's native size")
    plan.add_argument("--frames", type=int)
    plan.add_argument("--steps", type=int)
    plan.add_argument("--plan", default="auto", help=f"pin a plan: {', '.join(PLAN_NAMES)}")
    plan.add_argument("--gpu",
                      help='a GPU of the estimator\'s table, e.g. "RTX 4080", "H100" (its memory and capability)')
    plan.add_argument("--preset", choices=("quality", "fast"), help="steps and guidance of a preset")
    plan.add_argument("--cache", choices=STEP_CACHE_SETTINGS, default="off", help="step cache setting")
    plan.add_argument("--attention", choices=("auto", *ATTENTION_BACKENDS), default="auto",
                      help="pin an attention backend (auto: the device's checked choice)")
    plan.add_argument("--backend", choices=BACKENDS, help="simulate a machine instead of this one")
    plan.add_argument("--vram", help="accelerator memory of the simulated machine, e.g. 16GiB")
    plan.add_argument("--capability", default="8.9", help="CUDA compute capability of the simulated GPU")
    plan.add_argument("--ram", help="RAM of the simulated machine, e.g. 64GiB")
    plan.add_argument("--table", action="store_true",
                      help="minutes for a 5 s clip of every checkpoint on a few GPUs, as a Markdown table")
    plan.add_argument("--write-readme", action="store_true",
                      help="with --table: replace the table in docs/memory-and-speed.md")
    plan.add_argument("--fit", nargs="*", metavar="RESULTS",
                      help="refit the time model to Wan's published runs (and bench/gpu.py result files)")
    plan.add_argument("--write", action="store_true", help="with --fit: store the fit in data/calibration.json")
    plan.add_argument("--json", action="store_true")


def machine_from_args(args, settings=None):
    from wan_studio.backend import detect
    from wan_studio.memory.plans import machine_from_backend, simulated_machine

    if args.gpu:
        from wan_studio.memory.fit import machine_of

        return machine_of(args.gpu, memory_gib(args.vram) if args.vram else None)
    if args.backend is None:  # this machine, as far as the memory limit and compile setting let the studio use it
        if settings is None:
            return machine_from_backend(detect())
        return machine_from_backend(detect(), settings.memory_limit_gb, settings.compile)
    return simulated_machine(
        args.backend, memory_gib(args.vram) if args.vram else None, capability(args.capability),
        memory_gib(args.ram) if args.ram else None,
    )


def run_shape(record, mode=None, size=None, frames=None, steps=None, preset=None, cache="off"):
    """The shape of a run with a preset's steps and guidance and a step cache's expected skip;
    (shape, whether the preset has its own values: False where Fast falls back to Quality)."""
    from wan_studio.loras.presets import resolve
    from wan_studio.memory import step_cache
    from wan_studio.memory.estimate import shape_for
    from wan_studio.requests import mode_info

    shape = shape_for(record, mode, size, frames, steps)
    own = True
    if preset:
        resolution = resolve(record, shape.mode, preset, {"steps": steps})
        own = preset == "quality" or bool(resolution.loras)
        values = resolution.values
        shape = dataclasses.replace(shape, steps=values.get("steps", shape.steps),
                                    guidance=values.get("guidance", shape.guidance),
                                    guidance_2=values.get("guidance_2", shape.guidance_2) if record.is_moe else None)
    method, _ = step_cache.method_for(record, mode_info(shape.mode).step_cache, "text")
    return dataclasses.replace(shape, skip=step_cache.expected_skip(cache, method)), own


def cmd_plan(args, settings) -> int:
    from wan_studio import catalog
    from wan_studio.memory.choose import choose
    from wan_studio.memory.plans import NoPlanFits

    if args.fit is not None:
        return cmd_fit(args.fit, args.write)
    if args.table:
        table = minutes_table()
        if args.write_readme:
            write_readme_table(table)
        print(table)
        return 0
    machine = machine_from_args(args, settings)
    if not args.model:
        raise StudioError("Say which checkpoint: --model ID (see `python -m wan_studio models`), or --table.")
    record = catalog.get(args.model)
    shape, _ = run_shape(record, args.mode, args.size, args.frames, args.steps, args.preset, args.cache)
    try:
        choice = choose(record, shape, machine, args.plan, args.attention)
    except NoPlanFits as exc:
        print(f"{record.name} · {shape.width}x{shape.height} · {shape.frames} frames on {machine.describe()}")
        print(f"nothing fits: {exc}")
        return 1
    if args.json:
        est = choice.estimate
        print(json.dumps({
            "model": record.id, "machine": choice.machine.describe(), "plan": choice.plan.name,
            "attention": choice.plan.attention, "cache": args.cache, "preset": args.preset or "quality",
            "seconds": est.seconds, "peak_gib": est.peak_gb, "ram_gib": est.ram_gb, "shape": shape.__dict__,
            "plan_details": choice.plan.as_dict(), "estimate": est.as_dict(),
            "considered": [{"plan": p.name, "peak_gb": e.peak_gb, "fits": f} for p, e, f in choice.considered],
        }, indent=2))
        return 0
    est = choice.estimate
    print(f"{record.name} · {shape.mode} · {shape.width}x{shape.height} · {shape.frames} frames · {shape.steps} steps")
    print(f"machine: {choice.machine.describe()} ({est.budget_gb(choice.machine):.1f} GiB usable)")
    print(f"plan:    {choice.plan.describe()}")
    print(f"peak:    {est.peak_gb:.1f} GiB accelerator, {est.ram_gb:.1f} GiB RAM; about {est.seconds / 60:.1f} min")
    for line in choice.messages + est.notes:
        print(f"note:    {line}")
    print("breakdown (GiB):")
    for name, value in est.breakdown.items():
        print(f"  {name:<24} {value:8.2f}")
    print("seconds:", ", ".join(f"{k} {v:.0f}" for k, v in est.seconds_breakdown.items()))
    print("rungs considered:")
    for plan, e, fits in choice.considered:
        print(f"  {plan.label:<22} {e.peak_gb:7.1f} GiB  {'fits' if fits else 'does not fit'}")
    return 0


TABLE_GPUS = ("RTX 4080", "RTX 4090", "H100", "ZeroGPU large")
TARGET_MINUTES = 9.0  # the seed's goal: a 5 s 720p clip in under 9 minutes on an RTX 4080


def minutes_table() -> str:
    """Markdown: minutes for a 5 s clip of every real checkpoint at each native size, per GPU and
    preset (Quality / Fast), with the plan each GPU gets; ✓ where the RTX 4080 meets 9 minutes."""
    from wan_studio import catalog
    from wan_studio.memory.choose import choose
    from wan_studio.memory.fit import machine_of
    from wan_studio.memory.plans import NoPlanFits, simulated_machine

    machines = {gpu: simulated_machine("zerogpu-large") if gpu.startswith("ZeroGPU") else machine_of(gpu)
                for gpu in TABLE_GPUS}
    lines = ["| Checkpoint | Size x frames | " + " | ".join(f"{gpu}: Quality / Fast" for gpu in TABLE_GPUS) + " |",
             "|---|---|" + "---|" * len(TABLE_GPUS)]
    for record in catalog.checkpoints():
        if record.is_tiny:
            continue
        for width, height in dict.fromkeys(tuple(sorted(s, reverse=True)) for s in record.sizes):
            size = f"{width}x{height}"
            cells = []
            for gpu, machine in machines.items():
                minutes = []
                for preset in ("quality", "fast"):
                    shape, own = run_shape(record, size=size, preset=preset)
                    try:
                        choice = choose(record, shape, machine)
                    except NoPlanFits:
                        minutes.append("does not fit")
                        continue
                    value = choice.estimate.seconds / 60
                    mark = " ✓" if gpu == "RTX 4080" and value <= TARGET_MINUTES else ""
                    text = f"{value:.1f}{mark}" if value < 10 else f"{value:.0f}{mark}"
                    minutes.append(text if own else "–")
                    if preset == "quality":
                        plan_label = choice.plan.label
                fits = minutes[0] != "does not fit"
                cells.append(f"{minutes[0]} / {minutes[1]} ({plan_label})" if fits else "does not fit")
            lines.append(f"| {record.name} | {size}x{shape.frames} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def cmd_fit(paths: list[str], write: bool) -> int:
    """Refit the time model's utilisations and print how each timed run comes out."""
    from wan_studio.memory import fit
    from wan_studio.memory.estimate import CALIBRATION_FILE, calibration

    measured, left_out = fit.measured_runs(paths)
    runs = list(calibration()["published_runs"]) + measured
    for line in left_out:
        print(f"left out: {line}")
    found = fit.fit(runs)
    print(f"{'run':<64} {'measured s':>10} {'predicted s':>11} {'ratio':>6}")
    for run in runs:
        predicted = fit.predicted_seconds(run, found)
        name = f"{run['model']} {run['size']}x{run['frames']} {run['steps']} steps, {run['gpu']}"[:64]
        print(f"{name:<64} {run['seconds']:>10.1f} {predicted:>11.1f} {predicted / run['seconds']:>6.2f}")
    for variant, ratios in fit.speedups(paths).items():
        print(f"measured speed-up, {variant}: x{statistics.median(ratios):.2f} (median of {len(ratios)}: "
              f"{', '.join(f'{r:.2f}' for r in sorted(ratios))})")
    print(json.dumps(found))
    if write:
        data = json.loads(CALIBRATION_FILE.read_text())
        data["utilisation"] = {**found, "source": (
            f"least-squares fit (relative error) of the time model to {len(runs)} timed runs: data/calibration.json "
            f"published_runs{' and ' + ', '.join(paths) if paths else ''}, "
            "by `python -m wan_studio plan --fit --write`. "
            "vae is not fitted (too small a share of those runs): assumed.")}
        CALIBRATION_FILE.write_text(json.dumps(data, indent=1) + "\n")
        calibration.cache_clear()
        print(f"stored in {CALIBRATION_FILE}")
    return 0


def write_readme_table(table: str) -> None:
    from wan_studio.settings import REPO_ROOT

    readme = REPO_ROOT / "docs" / "memory-and-speed.md"  # the table moved there from the README
    text = readme.read_text()
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    readme.write_text(f"{head}{README_START}\n{table}\n{README_END}{tail}")
