"""A small RGB picture of the current latents, for live progress: no decoder, no extra weights.

For the Wan 2.1 and Wan 2.2 VAEs each latent pixel is projected to RGB by the VAE's published
latent-to-RGB factors (data/latent_rgb.json): one fixed projection, so colours stay put from step
to step. For a VAE without factors (the Tiny ones) the channels are projected onto their three
main directions (a PCA over the pixels of one latent frame) and stretched to 0..255. Either shows
layout, motion and colour well enough to judge a run early; it is not a decode.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

FACTORS_FILE = Path(__file__).parents[1] / "data" / "latent_rgb.json"


@lru_cache(maxsize=None)
def rgb_factors(vae: str | None) -> tuple[np.ndarray, np.ndarray] | None:
    """(C x 3 factors, 3 bias) of a VAE (its shared-component id), or None when none are known."""
    entry = json.loads(FACTORS_FILE.read_text()).get(vae or "")
    if not isinstance(entry, dict):
        return None
    return np.asarray(entry["factors"], np.float32), np.asarray(entry["bias"], np.float32)


def latent_preview(latents, max_side: int = 256, vae: str | None = None) -> np.ndarray | None:
    """uint8 (H, W, 3) of the middle latent frame of a (B, C, F, H, W) or (B, C, H, W) tensor;
    `vae` (its shared-component id, e.g. "wan2.1-vae") picks its fixed projection when it has one."""
    import torch

    if latents is None or not hasattr(latents, "dim") or latents.dim() not in (4, 5):
        return None
    x = latents[0]
    if x.dim() == 4:  # C, F, H, W
        x = x[:, x.shape[1] // 2]
    # numpy, not torch, for the sums below: torch sends even a 16x16 product to its thread pool,
    # which on a busy CPU costs ~16 ms a call, every few denoising steps; numpy takes microseconds
    x = x.detach().to("cpu", torch.float32).numpy()
    channels, height, width = x.shape
    flat = x.reshape(channels, -1)
    known = rgb_factors(vae)
    if known is not None and known[0].shape[0] == channels:
        factors, bias = known
        rgb = np.clip((factors.T @ flat + bias[:, None] + 1) / 2, 0, 1)
        return _picture(rgb, height, width, max_side)
    flat = flat - flat.mean(axis=1, keepdims=True)
    if channels >= 3:
        # principal directions of the channel vectors (eigenvectors of their C x C covariance,
        # largest first); signs fixed so the picture is stable from step to step
        _, vectors = np.linalg.eigh(flat @ flat.T)
        basis = vectors[:, ::-1][:, :3].T
        basis = basis * np.sign(basis.sum(axis=1, keepdims=True) + 1e-12)
        rgb = basis @ flat
    else:
        rgb = np.tile(flat, (3, 1))[:3]
    low, high = np.percentile(rgb, [2, 98], axis=1, keepdims=True)
    rgb = np.clip((rgb - low) / (high - low + 1e-6), 0, 1)
    return _picture(rgb, height, width, max_side)


def _picture(rgb: np.ndarray, height: int, width: int, max_side: int) -> np.ndarray:
    """3 x (H*W) values in 0..1 -> uint8 (H, W, 3), enlarged by a whole factor toward `max_side`."""
    image = np.rint(rgb.reshape(3, height, width).transpose(1, 2, 0) * 255).astype(np.uint8)
    scale = max(1, max_side // max(height, width))
    return image.repeat(scale, axis=0).repeat(scale, axis=1) if scale > 1 else image
