"""Frames as the studio passes them around: uint8 arrays (F, H, W, 3)."""

from __future__ import annotations

import numpy as np


def to_uint8_frames(video) -> np.ndarray:
    """diffusers' np output (F, H, W, 3) floats in [0, 1] -> uint8."""
    frames = np.asarray(video)
    if frames.dtype != np.uint8:
        scaled = np.clip(frames, 0.0, 1.0)  # one float copy, then scaled and rounded in place
        scaled *= 255.0
        frames = np.rint(scaled, out=scaled).astype(np.uint8)
    return frames
