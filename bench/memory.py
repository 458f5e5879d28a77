"""Memory plans at full model size, on a real GPU capped to stand in for a 16 GiB RTX 4080.

For each case: full-size architectures with random weights (built from the shipped configs, no
download), the plan the studio chooses for a 16 GiB card of this GPU's capability, applied with the
same code as the swap manager (wan_studio/memory/apply.py), then one run with
`torch.cuda.set_per_process_memory_fraction` capping the process at 16 GiB. Reports the chosen plan,
predicted vs measured peak (`torch.cuda.max_memory_allocated`), seconds per step and total time.
Targets: no out-of-memory under the cap; prediction within 15 % of measured.

    python bench/memory.py [--cap-gib 16] [--cases t2v-1.3b,ti2v-5b,t2v-a14b] [--steps N]
    python bench/memory.py --smoke      # the same code path on the CPU with Tiny models (no GPU)
"""

from __future__ import annotations

import argparse
import time

from _common import print_table, write_json

CASES = {
    "t2v-1.3b": ("wan2.1-t2v-1.3b", 832, 480, 81, None),
    "ti2v-5b": ("wan2.2-ti2v-5b", 1280, 704, 121, None),
    "t2v-a14b": ("wan2.2-t2v-a14b", 832, 480, 81, 4),
}
SMOKE = {"tiny-t2v": ("tiny-t2v", 64, 64, 9, 2), "tiny-t2v-moe": ("tiny-t2v-moe", 64, 64, 9, 2)}


def random_init(module, generator) -> None:
    """Random weights in place, small enough that activations stay finite."""
    import torch

    with torch.no_grad():
        for name, param in module.named_parameters():
            if not param.dtype.is_floating_point:
                continue
            if param.dim() > 1:
                param.normal_(0.0, 0.02, generator=generator)
            else:  # norm scales 1, biases 0
                param.fill_(1.0 if name.endswith("weight") else 0.0)


def build_pipeline(record, dtype: str, smoke: bool):
    """The checkpoint's diffusers pipeline from random full-size components (or the Tiny ones)."""
    import diffusers
    import torch
    from accelerate import init_empty_weights

    from wan_studio.memory import footprints
    from wan_studio.models import tiny

    if smoke:
        return tiny.build_pipeline(record)
    torch_dtype = getattr(torch, dtype)
    generator = torch.Generator().manual_seed(0)
    components = {}
    for name, config_id in footprints.config_ids(record).items():
        with init_empty_weights():
            module = footprints._build_from_data(config_id)
        # storage in the run's dtype straight away: a 14B expert in fp32 would need 57 GB of RAM
        module = module.to_empty(device="cpu").to(torch.float32 if name == "vae" else torch_dtype)
        if hasattr(module, "tie_weights") and name == "text_encoder":
            module.tie_weights()
        random_init(module, generator)
        components[name] = module.eval()
    tokenizer = tiny.make_tokenizer()
    scheduler = tiny.make_scheduler(next(iter(record.flow_shift.values())))
    cls = getattr(diffusers, record.pipelines["t2v"])
    extra = {"boundary_ratio": record.boundary_ratio, "expand_timesteps": record.expand_timesteps}
    return cls(tokenizer=tokenizer, scheduler=scheduler, transformer_2=components.pop("transformer_2", None),
               **components, **extra)


def run_case(name, spec, args):
    import torch

    from wan_studio import catalog
    from wan_studio.memory import apply as plan_apply
    from wan_studio.memory.choose import choose
    from wan_studio.memory.estimate import Shape, estimate
    from wan_studio.memory.plans import simulated_machine

    model, width, height, frames, steps = spec
    record = catalog.get(model)
    steps = args.steps or steps or record.steps
    shape = Shape("t2v", width, height, frames, steps, record.guidance, record.guidance_2)
    if args.smoke:
        machine = simulated_machine("cpu", ram_gb=args.cap_gib)
        device = "cpu"
    else:
        props = torch.cuda.get_device_properties(0)
        machine = simulated_machine("cuda", args.cap_gib, (props.major, props.minor), name=props.name)
        device = "cuda"
    choice = choose(record, shape, machine, args.plan)
    plan = choice.plan
    predicted = estimate(record, shape, plan, machine)

    built = time.perf_counter()
    pipe = build_pipeline(record, plan.transformer_dtype, args.smoke)
    pipe.set_progress_bar_config(disable=True)
    notes = plan_apply.convert_weights(pipe, plan, device)
    notes += plan_apply.attach_runtime(pipe, plan, device)
    build_s = time.perf_counter() - built
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    step_marks = []
    started = time.perf_counter()
    error = None
    try:
        pipe(prompt="a red fox running through fresh snow, cinematic", negative_prompt="blurry", height=height,
             width=width, num_frames=frames, num_inference_steps=steps, guidance_scale=record.guidance,
             guidance_scale_2=record.guidance_2 if record.is_moe else None,
             generator=torch.Generator("cpu").manual_seed(0), output_type="np",
             callback_on_step_end=lambda p, s, t, kw: step_marks.append(time.perf_counter()) or kw)
    except torch.OutOfMemoryError as exc:
        error = f"OOM: {str(exc).splitlines()[0]}"
    total = time.perf_counter() - started
    measured = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None
    per_step = (step_marks[-1] - step_marks[0]) / (len(step_marks) - 1) if len(step_marks) > 1 else None
    del pipe
    if device == "cuda":
        torch.cuda.empty_cache()
    return {
        "case": name, "model": model, "size": f"{width}x{height}x{frames}", "steps": steps, "plan": plan.name,
        "plan_detail": plan.describe(), "predicted_peak_gib": predicted.peak_gb,
        "measured_peak_gib": round(measured, 2) if measured is not None else None,
        "ratio_measured_to_predicted": round(measured / predicted.peak_gb, 3) if measured else None,
        "predicted_s": predicted.seconds, "s_per_step": round(per_step, 3) if per_step else None,
        "total_s": round(total, 1), "build_s": round(build_s, 1), "error": error, "notes": notes,
        "breakdown_gib": predicted.breakdown,
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cap-gib", type=float, default=16.0)
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--steps", type=int)
    parser.add_argument("--plan", default="auto")
    parser.add_argument("--smoke", action="store_true", help="CPU, Tiny models: checks the script, measures nothing")
    args = parser.parse_args()

    import torch

    cases = SMOKE if args.smoke else {k: CASES[k] for k in args.cases.split(",")}
    if not args.smoke:
        if not torch.cuda.is_available():
            raise SystemExit("bench/memory.py needs a CUDA GPU (or --smoke on the CPU).")
        total = torch.cuda.get_device_properties(0).total_memory / 2**30
        torch.cuda.set_per_process_memory_fraction(min(1.0, args.cap_gib / total))
    rows = [run_case(name, spec, args) for name, spec in cases.items()]
    print_table(
        f"Memory plans under a {args.cap_gib:g} GiB cap"
        + (" (smoke run on CPU: nothing measured)" if args.smoke else ""),
        [(r["case"], r["size"], r["steps"], r["plan"], r["predicted_peak_gib"], r["measured_peak_gib"],
          r["ratio_measured_to_predicted"], r["s_per_step"], r["total_s"], r["error"] or "ok") for r in rows],
        ("case", "size", "steps", "plan", "predicted GiB", "measured GiB", "measured/predicted", "s/step", "total s",
         "result"),
    )
    write_json("memory-smoke" if args.smoke else "memory", {"cap_gib": args.cap_gib, "cases": rows,
               "device": None if args.smoke else torch.cuda.get_device_name(0)})


if __name__ == "__main__":
    main()
