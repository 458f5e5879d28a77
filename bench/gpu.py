"""The prepared GPU check: full-size Wan transformers with random weights, a few denoising steps each,
timed and measured against the estimator, in one short run.

    python bench/gpu.py                 # on a GPU: about 5-8 minutes (--budget-s caps it)
    python bench/gpu.py --smoke         # on the CPU: the Tiny transformers, seconds (CI runs this)
    python -m wan_studio plan --fit bench/results/gpu-*.json --write     # refit the time model

For each case (checkpoint x size x attention backend x step cache) it builds the transformer with
random weights straight on the device in bf16 (no download: the weights do not change the time or
the memory), runs one warm-up forward, then `--steps` steps of classifier-free guidance (two
forwards each) and records the seconds, the peak allocated memory, and the estimate for the same
case. Attention backends that are not installed are skipped with the reason. Then each case runs
once more for each of the memory plans' weight and offload variants (compiled blocks, FP8 with
per-row scales, block-level group offload), on a fresh model each, at SDPA without a step cache; a
compiled run's warm-up is its compile time. The results go to bench/results/gpu-<gpu name>.json as
"runs" that `plan --fit` reads ("only": "denoise": the transformer's share of a run; the variants
give the measured speed-ups it prints) and a printed table.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
# (checkpoint, sizes); the 14B is one expert of Wan 2.2 A14B as much as it is Wan 2.1 14B
GPU_CASES = (
    ("wan2.1-t2v-1.3b", ((832, 480, 81), (1280, 720, 81))),
    ("wan2.2-ti2v-5b", ((1280, 704, 121),)),
    ("wan2.1-t2v-14b", ((832, 480, 81), (1280, 720, 81))),
)
SMOKE_CASES = (("tiny-t2v", ((64, 64, 9), (96, 64, 13))), ("tiny-ti2v", ((64, 64, 9),)))
ATTENTION_BACKENDS = ("native", "flash", "_flash_3", "sage")  # diffusers' dispatcher names
# the plan rungs' changes to the transformer, timed against the plain bf16 run of the same case
PLAIN = {"compile": "none", "quantization": "none", "offload": "none"}
VARIANTS = {
    "compiled": {**PLAIN, "compile": "repeated-blocks"},
    "fp8-dynamic": {**PLAIN, "quantization": "fp8-dynamic"},
    "group-offload": {**PLAIN, "offload": "group"},
}


def build_transformer(record, device, dtype):
    """The checkpoint's transformer at full size with random weights, made on the device."""
    import torch
    from diffusers import WanTransformer3DModel

    from wan_studio.memory.footprints import transformer_config

    config = {k: v for k, v in transformer_config(record).items() if not k.startswith("_")}
    with torch.device("meta"):
        model = WanTransformer3DModel.from_config(config)
    keep = tuple(getattr(model, "_keep_in_fp32_modules", None) or ())  # as from_pretrained keeps them
    model = model.to_empty(device=device)
    for name, module in model.named_modules():
        if not any(part in keep for part in name.split(".")):
            for parameter in module.parameters(recurse=False):
                parameter.data = parameter.data.to(dtype)
    generator = torch.Generator(device=device).manual_seed(0)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.02, generator=generator)
    return model.eval()


def inputs_for(model, record, width, height, frames, device, dtype):
    import torch

    from wan_studio.memory.estimate import TEXT_TOKENS

    spatial = 16 if "wan2.2-vae" in record.shared.values() or "tiny-vae-16x" in record.shared.values() else 8
    latents = torch.randn(1, model.config.in_channels, (frames - 1) // 4 + 1, height // spatial, width // spatial,
                          device=device, dtype=dtype)
    text = torch.randn(1, TEXT_TOKENS, model.config.text_dim, device=device, dtype=dtype)
    return latents, text


def apply_variant(model, variant: dict, device) -> str | None:
    """Change the model as a plan rung does; why it cannot be done on this device, or None."""
    import torch

    if variant["compile"] != "none":
        from wan_studio.memory.compile import why_not

        if (reason := why_not(device.type)) is not None:
            return reason
        model.compile_repeated_blocks()
    if variant["quantization"] != "none":
        if device.type != "cuda" or torch.cuda.get_device_capability(device) < (8, 9):
            return "FP8 needs an NVIDIA GPU of capability 8.9 or newer"
        from wan_studio.memory.apply import quantize

        quantize(model, variant["quantization"])
    if variant["offload"] != "none":
        if device.type != "cuda":
            return "group offloading moves blocks between the CPU and a GPU"
        model.to("cpu")
        model.enable_group_offload(onload_device=device, offload_device=torch.device("cpu"), offload_type="block_level",
                                   num_blocks_per_group=1, use_stream=True, non_blocking=True)
    return None


def time_case(model, latents, text, steps: int, cache: str, device) -> tuple[float, float, float]:
    """(seconds for `steps` guided steps, peak GiB allocated, seconds of the warm-up forward) after
    one warm-up forward (for a compiled model, the warm-up compiles)."""
    import torch

    cuda = device.type == "cuda"
    timestep = torch.tensor([999], device=device)

    def forward(name):
        with model.cache_context(name):
            return model(latents, timestep, text, return_dict=False)[0]

    if cache != "off":
        import diffusers

        model.enable_cache(diffusers.FirstBlockCacheConfig(threshold={"balanced": 0.05, "aggressive": 0.12}[cache]))
    try:
        with torch.no_grad():
            warm_up = time.perf_counter()
            forward("cond")  # warm-up: kernels chosen (or compiled), memory pools filled
            if cuda:
                torch.cuda.synchronize()
            warm_up = time.perf_counter() - warm_up
            if cuda:
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            started = time.perf_counter()
            for step in range(steps):
                timestep.fill_(999 - 999 * (step + 1) // (steps + 1))
                forward("cond")
                forward("uncond")
            if cuda:
                torch.cuda.synchronize()
        seconds = time.perf_counter() - started
        peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else 0.0
    finally:
        if model.is_cache_enabled:
            model.disable_cache()
    return seconds, peak, warm_up


def predicted_seconds(record, width, height, frames, steps, machine, attention) -> float:
    """The estimator's seconds for the same guided steps (the transformer's share only)."""
    from wan_studio.memory.estimate import Shape, calibration, utilisation, work_terms
    from wan_studio.memory.plans import Plan

    shape = Shape("t2v", width, height, frames, steps, 5.0)
    terms = work_terms(record, shape, Plan("bench", "bfloat16", attention=attention), machine)
    use = utilisation(machine, attention)
    overhead = terms["forwards"] * calibration()["speed"]["step_overhead_s"][machine.kind]
    return terms["linear"] / use["linear"] + terms["attention"] / use["attention"] + overhead


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="the Tiny transformers on the CPU (CI)")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--budget-s", type=float, default=420.0, help="stop starting new cases after this long")
    parser.add_argument("--out", type=Path, help="default: bench/results/gpu-<gpu name>.json")
    args = parser.parse_args(argv)

    import torch

    from wan_studio import catalog
    from wan_studio.backend import detect
    from wan_studio.memory.plans import machine_from_backend

    def free_memory():
        if device.type == "cuda":
            torch.cuda.empty_cache()

    def timed(case, model, record, size, latents, text, attention, cache, variant) -> dict | None:
        """One timed case as a result run, or None (said in `skipped`) when it failed."""
        width, height, frames = size
        try:
            seconds, peak, warm_up = time_case(model, latents, text, args.steps, cache, device)
        except Exception as exc:
            skipped.append(f"{case}: {type(exc).__name__}: {str(exc).splitlines()[0][:160]}")
            free_memory()
            return None
        plain = variant == PLAIN and cache == "off"
        predicted = predicted_seconds(record, width, height, frames, args.steps, machine, attention) if plain else None
        return {
            "model": record.id, "mode": "t2v", "size": f"{width}x{height}", "frames": frames, "steps": args.steps,
            "gpu": gpu_name, "attention": attention, "cache": cache, **variant, "only": "denoise",
            "seconds": round(seconds, 4), "warm_up_s": round(warm_up, 3),
            "predicted_s": round(predicted, 4) if predicted is not None else None, "peak_gib": round(peak, 3),
        }

    device = torch.device("cuda" if torch.cuda.is_available() and not args.smoke else "cpu")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    machine = machine_from_backend(detect())
    gpu_name = torch.cuda.get_device_name(0) if device.type == "cuda" else "CPU"
    cases = SMOKE_CASES if args.smoke else GPU_CASES
    started = time.perf_counter()
    runs, skipped = [], []
    for model_id, sizes in cases:
        record = catalog.get(model_id)
        if time.perf_counter() - started > args.budget_s:
            skipped.append(f"{model_id}: over the time budget")
            continue
        model = build_transformer(record, device, dtype)
        for width, height, frames in sizes:
            latents, text = inputs_for(model, record, width, height, frames, device, dtype)
            for attention in ATTENTION_BACKENDS if device.type == "cuda" else ("native",):
                try:
                    model.set_attention_backend(attention)
                except Exception as exc:  # not installed, or not for this GPU
                    skipped.append(f"{attention}: {str(exc).splitlines()[0][:160]}")
                    continue
                for cache in ("off", "balanced"):
                    if time.perf_counter() - started > args.budget_s:
                        skipped.append(f"{model_id} {width}x{height} {attention} {cache}: over the time budget")
                        continue
                    run = timed(f"{model_id} {width}x{height} {attention} {cache}", model, record,
                                (width, height, frames), latents, text, attention, cache, PLAIN)
                    if run is not None:
                        runs.append(run)
            model.reset_attention_backend()
        del model
        free_memory()
        for name, variant in VARIANTS.items():  # each on a fresh model: they change it for good
            if time.perf_counter() - started > args.budget_s:
                skipped.append(f"{model_id} {name}: over the time budget")
                continue
            model = build_transformer(record, device, dtype)
            reason = apply_variant(model, variant, device)
            if reason is not None:
                skipped.append(f"{model_id} {name}: {reason}")
            else:
                for width, height, frames in sizes:
                    latents, text = inputs_for(model, record, width, height, frames, device, dtype)
                    run = timed(f"{model_id} {width}x{height} {name}", model, record, (width, height, frames),
                                latents, text, "native", "off", variant)
                    if run is not None:
                        runs.append(run)
            del model
            free_memory()
    result = {
        "gpu": gpu_name, "device": str(device), "smoke": args.smoke, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "torch": torch.__version__, "python": platform.python_version(),
        "wall_s": round(time.perf_counter() - started, 1),
        "runs": runs, "skipped": skipped,
    }
    out = args.out or RESULTS / f"gpu-{re.sub(r'[^a-z0-9]+', '-', gpu_name.lower()).strip('-')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"{'case':<46} {'attention':<10} {'cache':<9} {'variant':<14} {'s':>8} {'warm-up s':>9} {'predicted':>9} "
          f"{'peak GiB':>8}")
    for run in runs:
        case = f"{run['model']} {run['size']}x{run['frames']} x{run['steps']} steps"
        predicted = f"{run['predicted_s']:.3f}" if run["predicted_s"] is not None else "-"
        variant = next((name for name, v in VARIANTS.items() if all(run[k] == v[k] for k in PLAIN)), "-")
        print(f"{case:<46} {run['attention']:<10} {run['cache']:<9} {variant:<14} {run['seconds']:>8.3f} "
              f"{run['warm_up_s']:>9.2f} {predicted:>9} {run['peak_gib']:>8.2f}")
    for line in skipped:
        print(f"skipped: {line}")
    print(f"wrote {out} ({result['wall_s']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
