"""Measure the working memory of one Wan transformer block, to fit the estimator's activation constants.

A one-block WanTransformer3DModel with the real hidden size and FFN width of a checkpoint runs one
forward pass on N tokens in a fresh subprocess (no_grad, the run's dtype); the rise of the process's
peak resident memory (ru_maxrss) during the pass is the block's working memory. The estimator models
it as  bytes = dtype_bytes x N x (hidden_copies x hidden + ffn_copies x ffn); this prints measured vs
predicted and the hidden_copies that would match (ffn_copies kept), for data/calibration.json.

    python bench/activations.py [--tokens 4096,16384] [--dtype bfloat16] [--device cpu]

On the CPU this measures PyTorch's CPU kernels (SDPA's flash kernel included); bench/memory.py
checks the whole estimate on a GPU.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from _common import ROOT, print_table, write_json

SHAPES = {"1.3B": (12, 8960), "5B": (24, 14336), "14B": (40, 13824)}  # heads (x128 = hidden), ffn

CHILD = r"""
import json, resource, sys, torch
from wan_studio.backend import import_ml
import_ml()
import diffusers
heads, ffn, tokens, dtype, device = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
dt = getattr(torch, dtype)
torch.set_default_dtype(dt)  # built in the run's dtype: a freed fp32 copy would hide the activations' RSS rise
model = diffusers.WanTransformer3DModel(num_attention_heads=heads, attention_head_dim=128, in_channels=16,
    out_channels=16, text_dim=4096, freq_dim=256, ffn_dim=ffn, num_layers=1, cross_attn_norm=True,
    qk_norm="rms_norm_across_heads").to(device, dt).eval()
side = int((tokens) ** 0.5)
frames = max(1, tokens // (side * side))
latents = torch.randn(1, 16, frames, side * 2, tokens // frames // side * 2, dtype=dt, device=device)
n = frames * side * (tokens // frames // side)
text = torch.randn(1, 512, 4096, dtype=dt, device=device)
t = torch.tensor([500], device=device)
with torch.no_grad():
    if device == "cuda":  # warm-up on the GPU (kernels, cuBLAS workspace); on the CPU the first pass is the
        model(latents, t, text, return_dict=False)  # measurement, since freed memory keeps the RSS peak
    if device == "cuda":
        torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats(); base = torch.cuda.memory_allocated()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    model(latents, t, text, return_dict=False)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
peak = (torch.cuda.max_memory_allocated() - base) if device == "cuda" else (after - before) * 1024
print(json.dumps({"tokens": n, "peak_bytes": peak}))
"""


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", default="4096,16384")
    parser.add_argument("--shapes", default="1.3B,14B")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    from wan_studio.memory.estimate import DTYPE_BYTES, calibration

    act = calibration()["activation"]
    rows, results = [], []
    for shape in args.shapes.split(","):
        heads, ffn = SHAPES[shape]
        hidden = heads * 128
        for tokens in (int(t) for t in args.tokens.split(",")):
            out = subprocess.run([sys.executable, "-c", CHILD, str(ROOT), str(heads), str(ffn), str(tokens), args.dtype,
                                  args.device], capture_output=True, text=True, check=True)
            measured = json.loads(out.stdout.strip().splitlines()[-1])
            n, peak = measured["tokens"], measured["peak_bytes"]
            per = DTYPE_BYTES[args.dtype] * n
            predicted = per * (act["hidden_copies"] * hidden + act["ffn_copies"] * ffn)
            fitted = (peak / per - act["ffn_copies"] * ffn) / hidden
            results.append({"shape": shape, "tokens": n, "measured_gib": peak / 2**30,
                            "predicted_gib": predicted / 2**30, "hidden_copies_fit": fitted})
            rows.append((shape, n, f"{peak / 2**30:.3f}", f"{predicted / 2**30:.3f}", f"{peak / predicted:.2f}",
                         f"{fitted:.1f}"))
    print_table(f"One Wan block's working memory ({args.device}, {args.dtype})", rows,
                ("shape", "tokens", "measured GiB", "predicted GiB", "measured/predicted", "hidden_copies fit"))
    write_json(f"activations-{args.device}", {"dtype": args.dtype, "device": args.device, "results": results,
                                              "command": " ".join(sys.argv)})


if __name__ == "__main__":
    main()
