"""Example inputs for every mode panel: the one-click prefills its request class declares
(ModeInfo.examples), which never run anything.

The example pictures, clips and speech-like audio are drawn on the spot (PIL, the ffmpeg inside
imageio-ffmpeg, the wave module) into a hidden folder of the output directory, so they need no
download and no licence.
"""

from __future__ import annotations

import math
import struct
import subprocess
import wave
from pathlib import Path

from PIL import Image, ImageDraw

from wan_studio.requests import ExampleFile, mode_info


def example_media(folder: Path) -> dict[str, Path]:
    """Make (once) the example files; returns name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, (top, bottom, disc) in {"sunset": ((250, 120, 40), (40, 20, 90), (255, 220, 120)),
                                      "sea": ((90, 170, 230), (10, 60, 120), (250, 250, 250)),
                                      "field": ((150, 210, 250), (60, 140, 40), (240, 60, 40))}.items():
        path = folder / f"{name}.png"
        if not path.exists():
            image = Image.new("RGB", (192, 128))
            draw = ImageDraw.Draw(image)
            for y in range(128):
                t = y / 127
                draw.line([(0, y), (191, y)], fill=tuple(round(a + (b - a) * t) for a, b in zip(top, bottom)))
            draw.ellipse([70, 40, 120, 90], fill=disc)
            image.save(path)
        files[name] = path
    for name, source, fps, seconds in (("clip", "testsrc2", 16, 1.5), ("bars", "smptebars", 16, 1.5),
                                       ("pose", "testsrc2", 30, 1.0), ("face", "testsrc", 30, 1.0)):
        path = folder / f"{name}.mp4"
        if not path.exists():
            _clip(path, source, fps, seconds)
        files[name] = path
    path = folder / "voice.wav"
    if not path.exists():
        speechlike_wav(path, 2.0)
    files["voice"] = path
    return files


def _clip(path: Path, source: str, fps: int, seconds: float) -> None:
    import imageio_ffmpeg

    tmp = path.with_name(f".{path.name}.partial.mp4")
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i",
                    f"{source}=size=128x96:rate={fps}", "-t", str(seconds), "-c:v", "libx264", "-pix_fmt", "yuv420p",
                    str(tmp)], check=True, capture_output=True)
    tmp.replace(path)


def speechlike_wav(path: Path, seconds: float, rate: int = 16000) -> None:
    """A syllable-like warble (a pitch glide under a 4 Hz envelope), enough to drive S2V's audio path."""
    count = int(seconds * rate)
    samples = (int(12000 * abs(math.sin(math.pi * 4 * n / rate))
                   * math.sin(2 * math.pi * (180 + 40 * math.sin(n / rate * 3)) * n / rate))
               for n in range(count))
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"".join(struct.pack("<h", s) for s in samples))


def examples_for(mode: str, files: dict[str, Path]) -> tuple[list[str], list[list]]:
    """(input field names, rows) for gr.Examples, from the examples the mode's ModeInfo declares (its
    ExampleFile values made paths of `files`); field names match the panel's components. ([], []): none."""
    examples = mode_info(mode).examples
    names = list(dict.fromkeys(name for row in examples for name in row))
    rows = [[_value(row.get(name), files) for name in names] for row in examples]
    return names, rows


def _value(value, files: dict[str, Path]):
    return str(files[value.name]) if isinstance(value, ExampleFile) else value
