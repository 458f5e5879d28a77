"""Fit the estimator's utilisations to runs whose time is known.

The estimate's time is linear in the inverse utilisations (estimate.time_terms):

    seconds = linear / u_linear + attention / u_attention + vae / u_vae + fixed

(attention on another kernel than SDPA's over u_attention x that kernel's factor, stored under the
backend's own name, e.g. "_flash_3", so a plan naming that backend finds it), with one u_linear and one
u_attention per GPU family (Hopper reaches a smaller share of its peak than Ada and Ampere). So
the utilisations that make a set of timed runs come out right, in relative error, are one weighted
least-squares solve. The
VAE's share is too small in these runs to be told apart, so u_vae stays as the data gives it. The
runs are data (data/calibration.json "published_runs": Wan's own published timings, and what
bench/gpu.py measures, read by `plan --fit`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from wan_studio.errors import StudioError


def family_of(capability) -> str:
    """The utilisation family of a GPU: Hopper reaches a smaller share of its peak than the others."""
    return "hopper" if str(capability or "").startswith("9.") else "default"


def machine_of(gpu_name: str, memory_gb: float | None = None):
    """A simulated CUDA machine for a GPU of the table (its memory and compute capability)."""
    from wan_studio.memory.estimate import gpu_named
    from wan_studio.memory.plans import simulated_machine

    name, spec = gpu_named(gpu_name)
    major, minor = (int(v) for v in str(spec.get("capability") or "8.9").split("."))
    return simulated_machine("cuda", memory_gb or spec.get("memory_gb") or 24.0, (major, minor), name=name)


def run_terms(run: dict) -> dict[str, float]:
    """The work terms of one timed run: its checkpoint, shape, GPU and how it was run."""
    from wan_studio import catalog
    from wan_studio.memory.estimate import calibration, shape_for, work_terms
    from wan_studio.memory.plans import Plan

    record = catalog.get(run["model"])
    shape = shape_for(record, run.get("mode"), run["size"], run["frames"], run["steps"])
    # attention at SDPA's rate: the fit finds the other kernels' factors itself
    plan = Plan("published", "bfloat16", offload=run.get("offload", "none"),
                text_encoder=run.get("text_encoder", "accelerator"))
    machine = machine_of(run["gpu"])
    terms = work_terms(record, shape, plan, machine)
    if run.get("only") == "denoise":  # a benchmark of the transformer alone (bench/gpu.py)
        overhead = calibration()["speed"]["step_overhead_s"][machine.kind]
        terms = {**terms, "vae": 0.0, "fixed": terms["forwards"] * overhead}
    return terms


def fit(runs: list[dict]) -> dict:
    """Utilisations per GPU family, and each attention kernel's factor over SDPA (under the backend's
    name, as plans name it: memory/attention.py), that fit `runs` best in relative error."""
    from wan_studio.memory.attention import kernel
    from wan_studio.memory.estimate import calibration, gpu_named

    vae_use = calibration()["utilisation"]["vae"]
    columns: list[tuple[str, str]] = []  # (family, "linear" | "attention" | a kernel other than SDPA's)
    rows, targets, weights = [], [], []
    for run in runs:
        terms = run_terms(run)
        family = family_of(gpu_named(run["gpu"])[1].get("capability"))
        backend = kernel(run.get("attention", "native"))
        kind = "attention" if backend == "native" else backend
        row = {}
        for column, value in (((family, "linear"), terms["linear"]), ((family, kind), terms["attention"])):
            if column not in columns:
                columns.append(column)
            row[column] = value
        rows.append(row)
        targets.append(float(run["seconds"]) - terms["fixed"] - terms["vae"] / vae_use)
        weights.append(1 / float(run["seconds"]))
    if len(runs) < len(columns):
        raise StudioError(f"Fitting {len(columns)} utilisations needs at least as many timed runs; got {len(runs)}.")
    a = np.array([[row.get(column, 0.0) for column in columns] for row in rows]) * np.array(weights)[:, None]
    inverse, *_ = np.linalg.lstsq(a, np.array(targets) * np.array(weights), rcond=None)
    if (inverse <= 0).any():
        raise StudioError("The timed runs do not fit this time model (a utilisation came out negative); "
                          "check them for a wrong GPU, size or plan.")
    found: dict = {"vae": vae_use}
    for (family, kind), value in zip(columns, inverse):
        found.setdefault(family, {})[kind] = round(float(1 / value), 3)
    for family in [f for f in found if f != "vae"]:
        for name in [k for k in found[family] if k not in ("linear", "attention")]:
            if "attention" not in found[family]:
                raise StudioError(f"Fitting {name}'s factor on {family} GPUs needs runs with SDPA there too.")
            # kept as a factor over the family's SDPA attention
            found[family][name] = round(found[family][name] / found[family]["attention"], 3)
    return found


def predicted_seconds(run: dict, found: dict) -> float:
    """A timed run's seconds as the fit `found` predicts them."""
    from wan_studio.memory.estimate import utilisation

    terms = run_terms(run)
    use = utilisation(machine_of(run["gpu"]), run.get("attention", "native"), found)
    return (terms["linear"] / use["linear"] + terms["attention"] / use["attention"] + terms["vae"] / use["vae"]
            + terms["fixed"])


VARIANT_KEYS = ("compile", "quantization", "offload")  # how bench/gpu.py's plan variants differ from plain bf16


def variant_of(run: dict) -> str | None:
    """"compile repeated-blocks", "offload group", ...: how a timed run differs from plain bf16; None if not."""
    parts = [f"{key} {run[key]}" for key in VARIANT_KEYS if run.get(key, "none") != "none"]
    return ", ".join(parts) or None


def speedups(paths) -> dict[str, list[float]]:
    """Each plan variant's measured speed-up (plain seconds / variant seconds) per GPU, one ratio per
    case that has a plain twin (same model, size, frames, steps and GPU, SDPA, no step cache)."""
    found: dict[str, list[float]] = {}
    for path in paths:
        runs = json.loads(Path(path).read_text()).get("runs", [])
        case = ("model", "size", "frames", "steps", "gpu")
        plain = {tuple(r[k] for k in case): r["seconds"] for r in runs
                 if variant_of(r) is None and r.get("cache", "off") == "off" and r.get("attention") == "native"}
        for run in runs:
            twin = plain.get(tuple(run[k] for k in case))
            if (name := variant_of(run)) is not None and twin and run.get("seconds"):
                found.setdefault(f"{name} on {run['gpu']}", []).append(round(twin / run["seconds"], 3))
    return found


def measured_runs(paths) -> tuple[list[dict], list[str]]:
    """Timed runs from bench/gpu.py result files (their "runs" lists), and why any were left out:
    a run with a step cache (its skips are not in the time model's work) or not on a GPU of the table.
    Plan variants (compiled, FP8, offloaded) are not fitted; `speedups` compares them with plain runs."""
    from wan_studio.memory.estimate import gpu_named

    found, left_out = [], []
    for path in paths:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise StudioError(f"Cannot read the benchmark results {path}: {exc}") from exc
        for run in data.get("runs", []):
            if run.get("cache", "off") != "off" or not run.get("seconds") or variant_of(run) is not None:
                continue  # a variant's speed-up is measured against its plain twin (speedups)
            try:
                gpu_named(run["gpu"])
            except StudioError:
                left_out.append(f"{path}: {run['model']} on {run['gpu']} (not a GPU of the table)")
                continue
            found.append(run)
    return found, left_out
