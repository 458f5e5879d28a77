"""`python -m wan_studio plan`: the memory plan a run gets, its estimate, and the rungs considered.

    python -m wan_studio plan --model wan2.1-t2v-14b --size 1280x720 --frames 81 --vram 16GiB --backend cuda
    python -m wan_studio plan --table [--vram 16GiB --backend cuda]    (the README's table)

Without --backend the machine at hand is used.
"""

from __future__ import annotations

import json
import re

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
    from wan_studio.memory.plans import BACKENDS, PLAN_NAMES

    plan = sub.add_parser("plan", help="show the memory plan, estimate and rungs for a run on a machine")
    plan.add_argument("--model", help="catalog id (see `models`)")
    plan.add_argument("--mode", help="default: the checkpoint's first mode")
    plan.add_argument("--size", help="WIDTHxHEIGHT; default: the checkpoint's native size")
    plan.add_argument("--frames", type=int)
    plan.add_argument("--steps", type=int)
    plan.add_argument("--plan", default="auto", help=f"pin a plan: {', '.join(PLAN_NAMES)}")
    plan.add_argument("--backend", choices=BACKENDS, help="simulate a machine instead of this one")
    plan.add_argument("--vram", help="accelerator memory of the simulated machine, e.g. 16GiB")
    plan.add_argument("--capability", default="8.9", help="CUDA compute capability of the simulated GPU")
    plan.add_argument("--ram", help="RAM of the simulated machine, e.g. 64GiB")
    plan.add_argument("--table", action="store_true", help="every checkpoint at its native sizes, as a Markdown table")
    plan.add_argument("--write-readme", action="store_true", help="with --table: replace the README's table")
    plan.add_argument("--json", action="store_true")


def machine_from_args(args):
    from wan_studio.backend import detect
    from wan_studio.memory.plans import machine_from_backend, simulated_machine

    if args.backend is None:
        return machine_from_backend(detect())
    return simulated_machine(
        args.backend, memory_gib(args.vram) if args.vram else None, capability(args.capability),
        memory_gib(args.ram) if args.ram else None,
    )


def cmd_plan(args, settings) -> int:
    from wan_studio import catalog
    from wan_studio.memory.choose import choose
    from wan_studio.memory.estimate import shape_for
    from wan_studio.memory.plans import NoPlanFits

    machine = machine_from_args(args)
    if args.table:
        table = plan_table(machine)
        if args.write_readme:
            write_readme_table(table)
        print(table)
        return 0
    if not args.model:
        raise StudioError("Say which checkpoint: --model ID (see `python -m wan_studio models`), or --table.")
    record = catalog.get(args.model)
    shape = shape_for(record, args.mode, args.size, args.frames, args.steps)
    try:
        choice = choose(record, shape, machine, args.plan)
    except NoPlanFits as exc:
        print(f"{record.name} · {shape.width}x{shape.height} · {shape.frames} frames on {machine.describe()}")
        print(f"nothing fits: {exc}")
        return 1
    if args.json:
        print(json.dumps({
            "model": record.id, "shape": shape.__dict__, "machine": choice.machine.describe(),
            "plan": choice.plan.as_dict(), "estimate": choice.estimate.as_dict(),
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


def plan_table(machine) -> str:
    """Markdown: the plan and predicted peak of every real checkpoint at each native size."""
    from wan_studio import catalog
    from wan_studio.memory.choose import choose
    from wan_studio.memory.estimate import shape_for
    from wan_studio.memory.plans import NoPlanFits

    lines = [
        f"| Checkpoint | Size x frames | Plan on {machine.describe()} | Peak GiB | RAM GiB | Time (est.) |",
        "|---|---|---|---|---|---|",
    ]
    for record in catalog.checkpoints():
        if record.is_tiny:
            continue
        for width, height in dict.fromkeys(tuple(sorted(s, reverse=True)) for s in record.sizes):  # one per orientation pair
            shape = shape_for(record, size=f"{width}x{height}")
            try:
                choice = choose(record, shape, machine)
            except NoPlanFits:
                lines.append(f"| {record.name} | {width}x{height}x{shape.frames} | does not fit | - | - | - |")
                continue
            est = choice.estimate
            lines.append(
                f"| {record.name} | {width}x{height}x{shape.frames} | {choice.plan.label} | {est.peak_gb:.1f} "
                f"| {est.ram_gb:.0f} | {est.seconds / 60:.0f} min |"
            )
    return "\n".join(lines)


def write_readme_table(table: str) -> None:
    from wan_studio.settings import REPO_ROOT

    readme = REPO_ROOT / "README.md"
    text = readme.read_text()
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    readme.write_text(f"{head}{README_START}\n{table}\n{README_END}{tail}")
