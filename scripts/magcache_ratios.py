"""Measure a checkpoint's MagCache magnitude ratios: how much the transformer's residual changes from
one denoising step to the next (the mean of |residual_t| / |residual_t-1| over tokens, cond pass).

MagCache skips the steps where these ratios stay near 1. The Wan checkpoints' ratios are published
by the MagCache authors (presets/step_cache.json names the source); this measures them for a
checkpoint that has none, e.g. the Tiny models, so the MagCache path runs in the tests.

    python scripts/magcache_ratios.py --model tiny-t2v --steps 20          # print the ratios
    python scripts/magcache_ratios.py --model tiny-t2v --steps 20 --write  # and store them
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def measure(model: str, steps: int, size: int, frames: int) -> list[float]:
    import diffusers

    import pipelines
    from wan_studio.memory.step_cache import transformers_of
    from wan_studio.requests import T2VRequest
    from wan_studio.runtime.engine import Engine

    request = T2VRequest(model=model, prompt="a red fox running through fresh snow", width=size, height=size,
                         frames=frames, steps=steps, seed=7).prepare()
    record = request.checkpoint
    engine = Engine()
    pipe = engine.swap.activate(record, "t2v", engine.choose_plan(request).plan)
    ratios: list[float] = []
    for module in transformers_of(pipe):
        # one more step than the run, so the hook does not reset its list at the last one
        module.enable_cache(diffusers.MagCacheConfig(calibrate=True, num_inference_steps=steps + 1))

        def after_call(_module, _args, _output, module=module):
            manager = module.blocks[0]._diffusers_hook.get_hook("mag_cache_leader_block_hook").state_manager
            if manager._context is not None and manager._context.name == "cond":  # the cond pass's curve
                ratios.append(round(float(manager.get_state().calibration_ratios[-1]), 5))

        module.register_forward_hook(after_call)
    try:
        pipelines.wrapper_for("t2v").run(pipe, request, record, None)
    finally:
        for module in transformers_of(pipe):
            module.disable_cache()
    return ratios


def write(model: str, steps: int, ratios: list[float], command: str) -> None:
    path = ROOT / "presets" / "step_cache.json"
    data = json.loads(path.read_text())
    kept = [e for e in data["magcache_ratios"] if not (e["checkpoint"] == model and e["conditioning"] == "text")]
    kept.append({"checkpoint": model, "conditioning": "text", "steps": steps,
                 "source": f"measured on CPU: {command}", "ratios": ratios})
    data["magcache_ratios"] = kept
    text = json.dumps(data, indent=1)  # number lists on one line each
    text = re.sub(r"\[\s*([-0-9.,\s]+?)\s*\]",
                  lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]", text)
    path.write_text(text + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-t2v")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--frames", type=int, default=9)
    parser.add_argument("--write", action="store_true", help="store them in presets/step_cache.json")
    args = parser.parse_args(argv)
    ratios = measure(args.model, args.steps, args.size, args.frames)
    print(json.dumps({"model": args.model, "steps": args.steps, "ratios": ratios}))
    if args.write:
        write(args.model, args.steps, ratios,
              f"python scripts/magcache_ratios.py --model {args.model} --steps {args.steps} --size {args.size} "
              f"--frames {args.frames}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
