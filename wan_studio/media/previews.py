"""A small RGB picture of the current latents, for live progress: no decoder, no extra weights.

The VAE's latent channels are projected onto their three main directions (a PCA over the pixels
of one latent frame) and stretched to 0..255. It shows layout, motion and colour blocks well
enough to judge a run early; it is not a decode.
"""

from __future__ import annotations

import numpy as np


def latent_preview(latents, max_side: int = 256) -> np.ndarray | None:
    """uint8 (H, W, 3) of the middle latent frame of a (B, C, F, H, W) or (B, C, H, W) tensor."""
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
    image = (rgb.reshape(3, height, width).transpose(1, 2, 0) * 255).astype(np.uint8)
    scale = max(1, max_side // max(height, width))
    return image.repeat(scale, axis=0).repeat(scale, axis=1) if scale > 1 else image
