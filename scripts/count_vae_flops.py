"""Count the FLOPs a Wan VAE spends decoding one output pixel (for data/calibration.json).

Builds each VAE at full size with random weights from data/component_configs.json on the CPU and
decodes a few latent frames under torch's FLOP counter; the count does not depend on the weights.

    python scripts/count_vae_flops.py
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def flops_per_pixel(name: str, latent_frames: int = 3, side: int = 64) -> tuple[float, float]:
    """(decode, encode) FLOPs per pixel of the video."""
    import torch
    from diffusers import AutoencoderKLWan
    from torch.utils.flop_counter import FlopCounterMode

    configs = json.loads((ROOT / "wan_studio" / "data" / "component_configs.json").read_text())
    config = configs["components"][name]["config"]
    vae = AutoencoderKLWan.from_config(config).eval()
    scale = config.get("scale_factor_spatial", 8)
    latent = torch.randn(1, config.get("z_dim", 16), latent_frames, side // scale, side // scale)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        video = vae.decode(latent).sample
    pixels = video.shape[2] * video.shape[3] * video.shape[4]
    decode = counter.get_total_flops() / pixels
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        vae.encode(video)
    return decode, counter.get_total_flops() / pixels


if __name__ == "__main__":
    for vae in ("wan2.1-vae", "wan2.2-vae"):
        decode, encode = flops_per_pixel(vae)
        print(f"{vae}: {decode / 1e6:.1f} MFLOP per decoded pixel, {encode / 1e6:.1f} MFLOP per encoded pixel")
