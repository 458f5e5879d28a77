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
    with torch.no_grad():
        x = latents[0].detach().float().cpu()
        if x.dim() == 4:  # C, F, H, W
            x = x[:, x.shape[1] // 2]
        channels, height, width = x.shape
        flat = x.reshape(channels, -1)
        flat = flat - flat.mean(dim=1, keepdim=True)
        if channels >= 3:
            # principal directions of the channel vectors; signs fixed so the picture is stable
            _, _, vh = torch.linalg.svd(flat.T, full_matrices=False)
            basis = vh[:3]
            basis = basis * torch.sign(basis.sum(dim=1, keepdim=True) + 1e-12)
            rgb = basis @ flat
        else:
            rgb = flat.repeat(3, 1)[:3]
        low = torch.quantile(rgb, 0.02, dim=1, keepdim=True)
        high = torch.quantile(rgb, 0.98, dim=1, keepdim=True)
        rgb = ((rgb - low) / (high - low + 1e-6)).clamp(0, 1)
        image = (rgb.reshape(3, height, width).permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    scale = max(1, max_side // max(height, width))
    return np.kron(image, np.ones((scale, scale, 1), dtype=np.uint8)) if scale > 1 else image
