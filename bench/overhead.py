"""Engine overhead: Engine.generate (T2V) versus a bare diffusers WanPipeline call.

Same tiny model folder, same settings, same seed; runs interleaved after a warm-up, the order rotated every round.
Two bare baselines: the pipeline call alone, and the call plus diffusers' own `export_to_video` (the
fairest comparison, since the engine also writes an mp4, thumbnail and recipe).
Target: engine / (bare call + export) <= 1.03, ratio of medians. CPU seconds (this process plus
the ffmpeg it starts) are recorded beside wall seconds: on a shared, busy machine they show the
engine's own work when wall clocks mostly show the neighbours'.

    python bench/overhead.py [--runs 7] [--size 192x192] [--frames 33] [--steps 10]
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

from _common import print_table, summarize, write_json


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--size", default="192x192")
    parser.add_argument("--frames", type=int, default=33)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--model", default="tiny-t2v")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))

    work = Path(tempfile.mkdtemp(prefix="wan-bench-"))
    os.environ["WAN_STUDIO_OUTPUT_DIR"] = str(work / "outputs")
    os.environ.setdefault("WAN_STUDIO_TINY_MODELS_DIR", str(work / "tiny"))

    import diffusers
    import torch
    from diffusers.utils import export_to_video

    from pipelines.common import set_flow_shift
    from wan_studio import catalog, models
    from wan_studio.requests import T2VRequest
    from wan_studio.runtime.engine import Engine

    record = catalog.get(args.model)
    request = T2VRequest(model=record.id, prompt="a red fox running through fresh snow", width=width, height=height,
                         frames=args.frames, steps=args.steps, seed=7).prepare()  # as a queued job holds it
    folder = models.resolve(record)
    bare = getattr(diffusers, record.pipeline_class("t2v")).from_pretrained(folder, dtype=torch.float32)
    bare.set_progress_bar_config(disable=True)
    set_flow_shift(bare, request.flow_shift)
    engine = Engine()

    def bare_call():
        return bare(prompt=request.prompt, negative_prompt=request.negative_prompt, height=height, width=width,
                    num_frames=args.frames, num_inference_steps=args.steps, guidance_scale=request.guidance,
                    generator=torch.Generator("cpu").manual_seed(request.seed), output_type="np").frames[0]

    def bare_export():
        export_to_video(bare_call(), str(work / "bare.mp4"), fps=record.fps)

    runners = {"bare call": bare_call, "bare call + export_to_video": bare_export,
               "engine.generate": lambda: engine.generate(request)}
    for run in runners.values():  # warm-up: load, first-call allocations, ffmpeg start
        run()
    samples = {name: [] for name in runners}
    cpu_samples = {name: [] for name in runners}
    names = list(runners)
    for round_ in range(args.runs):
        # rotate the order every round so no runner always follows the same one (caches, clocks)
        for name in names[round_ % len(names):] + names[:round_ % len(names)]:
            run = runners[name]
            start, cpu_start = time.perf_counter(), cpu_seconds()
            run()
            samples[name].append(time.perf_counter() - start)
            cpu_samples[name].append(cpu_seconds() - cpu_start)

    stats = summarize(samples)
    engine_median = stats["engine.generate"]["median_s"]
    rows = [(name, f"{s['median_s']:.3f}", f"{s['min_s']:.3f}", f"{s['max_s']:.3f}",
             f"{engine_median / s['median_s']:.3f}") for name, s in stats.items()]
    print_table(f"T2V overhead: {record.id} {width}x{height}x{args.frames}, {args.steps} steps, {args.runs} runs",
                rows, ("runner", "median s", "min s", "max s", "engine / runner"))
    ratio = engine_median / stats["bare call + export_to_video"]["median_s"]
    print(f"\nengine / (bare call + export) = {ratio:.3f}  (target <= 1.03)")
    cpu = summarize(cpu_samples)
    cpu_ratio = cpu["engine.generate"]["median_s"] / cpu["bare call + export_to_video"]["median_s"]
    print(f"CPU seconds, engine / (bare call + export) = {cpu_ratio:.3f}  "
          f"({cpu['engine.generate']['median_s']:.3f} / {cpu['bare call + export_to_video']['median_s']:.3f})")
    write_json("overhead", {"model": record.id, "size": [width, height], "frames": args.frames, "steps": args.steps,
                            "runners": stats, "ratio_vs_bare_call": engine_median / stats["bare call"]["median_s"],
                            "ratio_vs_bare_call_plus_export": ratio, "target": 1.03,
                            "cpu_runners": cpu, "cpu_ratio_vs_bare_call_plus_export": cpu_ratio})


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (ffmpeg), user + system."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


if __name__ == "__main__":
    main()
