"""Depth (Depth Anything V2: relative depth, near = large), drawn near = bright and far = dark, the
look of VACE's depth controls, with one scale for the whole clip."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image

CHUNK = 8  # frames per forward pass: bounded memory on long videos, progress between chunks


def depth_maps(frames: list[Image.Image], folder, device="cpu", progress: Callable[[int, int], None] | None = None):
    """Relative depth (near = large), one float map per frame at the frame's size: (N, H, W)."""
    import torch
    import torch.nn.functional as F
    from transformers import DepthAnythingForDepthEstimation, DPTImageProcessorPil

    # the PIL processor: the default one wants torchvision, which the studio does not install
    processor = DPTImageProcessorPil.from_pretrained(folder)
    model = DepthAnythingForDepthEstimation.from_pretrained(folder).to(device).eval()
    width, height = frames[0].size
    maps = []
    for start in range(0, len(frames), CHUNK):
        chunk = [frame.convert("RGB") for frame in frames[start:start + CHUNK]]
        pixels = processor(images=chunk, return_tensors="pt").pixel_values.to(device)
        with torch.no_grad():
            predicted = model(pixel_values=pixels).predicted_depth.float()
        resized = F.interpolate(predicted[:, None], size=(height, width), mode="bicubic", align_corners=False)
        maps.append(resized[:, 0].cpu())
        if progress is not None:
            progress(min(start + CHUNK, len(frames)), len(frames))
    return torch.cat(maps)


def depth_frames(maps) -> list[Image.Image]:
    """Depth maps -> grey frames with one scale for the whole clip (a scale per frame would flicker
    as objects enter and leave), from its 1st to 99th percentile."""
    import torch

    sample = maps[:, ::4, ::4].flatten()
    low, high = torch.quantile(sample, 0.01), torch.quantile(sample, 0.99)
    span = float(high - low) or 1.0  # a flat clip (a wall) stays black rather than dividing by zero
    scaled = ((maps - low) / span).clamp(0, 1)
    grey = (scaled * 255).round().to(torch.uint8).numpy()
    return [Image.fromarray(np.repeat(plane[..., None], 3, axis=2)) for plane in grey]
