"""Test media made on the spot: pictures with PIL, clips with the ffmpeg bundled in imageio-ffmpeg."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
from PIL import Image


def make_image(path: Path, size=(200, 100), color=(200, 60, 30), mode="RGB") -> Path:
    w, h = size
    gradient = np.linspace(0, 255, w, dtype=np.uint8)[None, :, None].repeat(h, 0).repeat(3, 2)
    image = Image.fromarray((gradient * 0.5 + np.array(color) * 0.5).astype(np.uint8))
    if mode != "RGB":
        image = image.convert(mode)
    image.save(path)
    return path


def make_video(path: Path, size=(160, 120), fps: float = 24, seconds: float = 2.0, source="testsrc2",
               codec=("-c:v", "libx264", "-pix_fmt", "yuv420p")) -> Path:
    import imageio_ffmpeg

    w, h = size
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi",
           "-i", f"{source}{':' if '=' in source else '='}size={w}x{h}:rate={fps}", "-t", str(seconds), *codec, str(path)]
    subprocess.run(cmd, check=True, capture_output=True)
    return path


def make_mask_video(path: Path, size=(160, 120), fps: float = 16, seconds: float = 2.0) -> Path:
    """White box in the middle (generate), black around it (keep)."""
    w, h = size
    return make_video(path, size, fps, seconds, source="color=c=black",
                      codec=("-vf", f"drawbox=x={w // 4}:y={h // 4}:w={w // 2}:h={h // 2}:color=white:t=fill",
                             "-c:v", "libx264", "-pix_fmt", "yuv420p", "-qp", "0"))
