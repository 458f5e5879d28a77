"""S2V-14B transformer at full size with random weights: time per denoising step and peak memory
for one clip (80 frames at 16 fps), per resolution. Speed and memory do not depend on the weight
values, so this measures what a real run costs without the 33 GB download. Needs a CUDA GPU with
about 40 GB free (bf16 weights are 32.6 GB); on a smaller card use --layers to build a slice and
scale (the blocks are identical).

A denoising step is two forward passes (conditional and unconditional, guidance 4.5). The first
clip has no motion tokens; later clips carry the FramePack motion tokens and cost a little more.

    python bench/s2v.py [--sizes 832x448,1024x704] [--layers 40] [--runs 3] [--backend native]
"""

from __future__ import annotations

import argparse
import time

from _common import print_table, write_json


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="832x448,1024x704")
    parser.add_argument("--layers", type=int, default=40)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--clip-frames", type=int, default=80)
    parser.add_argument("--backend", default=None,
                        help="diffusers attention backend (native, flash, _native_cudnn, ...)")
    args = parser.parse_args()

    import torch
    from accelerate import init_empty_weights

    from wan_studio.models.s2v_transformer import WanS2VTransformer3DModel, full_size_config

    if not torch.cuda.is_available():
        raise SystemExit("bench/s2v.py needs a CUDA GPU (it builds the 14B transformer)")
    device = torch.device("cuda")
    config = {**full_size_config(), "num_layers": args.layers}
    config["audio_inject_layers"] = [i for i in config["audio_inject_layers"] if i < args.layers]
    config.pop("_class_name", None)
    with init_empty_weights():
        model = WanS2VTransformer3DModel(**config)
    model.to_empty(device=device)
    with torch.no_grad():
        for name, param in model.named_parameters():
            keep = set(model._keep_in_fp32_modules) & set(name.split("."))
            param.data = (torch.randn_like(param, dtype=torch.float32) * 0.02).to(
                torch.float32 if keep else torch.bfloat16)
    model.eval()
    if args.backend:
        model.set_attention_backend(args.backend)
    weights_gb = sum(p.numel() * p.element_size() for p in model.parameters()) / 1e9
    print(f"{args.layers} layers, {sum(p.numel() for p in model.parameters()) / 1e9:.2f} B params, "
          f"{weights_gb:.1f} GB on the GPU")

    rows, results = [], []
    for size in args.sizes.split(","):
        width, height = (int(v) for v in size.split("x"))
        lat = (1, 16, args.clip_frames // 4, height // 8, width // 8)
        motion = (1, 16, (model.config.motion_frames + 3) // 4, height // 8, width // 8)
        inputs = dict(
            hidden_states=torch.randn(lat, device=device, dtype=torch.bfloat16),
            timestep=torch.tensor([500.0], device=device),
            encoder_hidden_states=torch.randn(1, 512, 4096, device=device, dtype=torch.bfloat16),
            reference_latents=torch.randn(1, 16, 1, height // 8, width // 8, device=device, dtype=torch.bfloat16),
            motion_latents=torch.randn(motion, device=device, dtype=torch.bfloat16),
            audio_embeds=torch.randn(1, 25, 1024, args.clip_frames, device=device, dtype=torch.bfloat16),
        )
        for first_clip in (True, False):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            times = []
            with torch.no_grad():
                for run in range(args.runs + 1):  # the first is a warm-up
                    start = time.perf_counter()
                    out = model(**inputs, drop_motion=first_clip)
                    torch.cuda.synchronize()
                    if run:
                        times.append(time.perf_counter() - start)
            assert out.shape == lat and torch.isfinite(out).all()
            per_pass = sorted(times)[len(times) // 2]
            peak = torch.cuda.max_memory_allocated() / 1e9
            tokens = lat[2] * lat[3] * lat[4] // 4
            row = dict(size=size, clip="first" if first_clip else "later", video_tokens=tokens,
                       forward_s=round(per_pass, 3), step_s=round(2 * per_pass, 3),
                       clip_40_steps_min=round(80 * per_pass / 60, 1), peak_gb=round(peak, 1))
            results.append(row)
            rows.append(tuple(row.values()))
    print_table(f"S2V-14B transformer ({args.layers} layers, bf16, {torch.cuda.get_device_name()}, "
                f"attention {args.backend or 'default'})", rows, tuple(results[0].keys()))
    write_json("s2v", {"device": torch.cuda.get_device_name(), "layers": args.layers,
                       "weights_gb": round(weights_gb, 1), "backend": args.backend or "default",
                       "torch": torch.__version__, "rows": results})


if __name__ == "__main__":
    main()
