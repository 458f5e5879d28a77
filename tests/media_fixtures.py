"""Test media made on the spot: pictures with PIL, clips with the ffmpeg bundled in imageio-ffmpeg."""

from __future__ import annotations

import subprocess
import wave
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
           "-i", f"{source}{':' if '=' in source else '='}size={w}x{h}:rate={fps}", "-t", str(seconds),
           *codec, str(path)]
    subprocess.run(cmd, check=True, capture_output=True)
    return path


def make_mask_video(path: Path, size=(160, 120), fps: float = 16, seconds: float = 2.0) -> Path:
    """White box in the middle (generate), black around it (keep)."""
    w, h = size
    return make_video(path, size, fps, seconds, source="color=c=black",
                      codec=("-vf", f"drawbox=x={w // 4}:y={h // 4}:w={w // 2}:h={h // 2}:color=white:t=fill",
                             "-c:v", "libx264", "-pix_fmt", "yuv420p", "-qp", "0"))


def moving_square_video(path: Path, size=(64, 48), fps: float = 16, seconds: float = 0.6, square=16,
                        start=(8, 12), step=2) -> Path:
    """A red square on grey moving right `step` px a frame from `start` (its top-left corner)."""
    w, h = size
    x0, y0 = start
    return make_video(path, size, fps, seconds, source="color=c=gray",
                      codec=("-vf", f"color=c=red:s={square}x{square}[sq];"
                                    f"[in][sq]overlay=x={x0}+{step}*n:y={y0}:shortest=1",
                             "-c:v", "libx264", "-pix_fmt", "yuv420p", "-qp", "0"))


def speech_like(seconds: float, rate: int = 16000, channels: int = 1, seed: int = 0) -> np.ndarray:
    """A voice-like signal: harmonics of a gliding pitch (110-220 Hz) under syllable-rate bursts."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    pitch = 150 + 40 * np.sin(2 * np.pi * 0.7 * t) + 15 * np.sin(2 * np.pi * 3.1 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 9))
    syllables = np.clip(np.sin(2 * np.pi * 4.0 * t), 0, None) ** 0.5
    signal = 0.25 * voice * syllables + 0.01 * rng.standard_normal(t.size)
    signal = np.clip(signal, -1, 1).astype(np.float32)
    if channels == 2:  # the right channel a little quieter and later, like a room
        signal = np.stack([signal, 0.8 * np.roll(signal, rate // 200)], axis=1)
    return signal


def write_wav(path: Path, samples: np.ndarray, rate: int) -> Path:
    pcm = (np.asarray(samples) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1 if pcm.ndim == 1 else pcm.shape[1])
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())
    return path


def to_mp3(source: Path, target: Path) -> Path:
    import imageio_ffmpeg

    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-i", str(source), "-c:a", "libmp3lame",
                    "-b:a", "64k", str(target)], check=True, capture_output=True)
    return target
