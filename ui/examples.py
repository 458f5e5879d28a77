"""Example inputs for every mode panel: three or more one-click prefills that never run anything.

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

PROMPTS = {
    "t2v": ["A red fox runs through fresh snow at dawn, tracking shot",
            "Macro shot of a dew drop sliding down a leaf, soft morning light",
            "A neon-lit city street in the rain at night, slow dolly forward"],
    "i2v": ["Slow zoom in, the sun sinks below the horizon", "Waves roll gently, camera pans right",
            "The ball bounces once and rolls away"],
    "ti2v": ["A paper boat drifts down a rainy street", "Clouds race over the hills, timelapse",
             "The lantern flickers and sways"],
    "flf2v": ["The sky turns from day to night", "The ball rolls across the frame", "A slow cross-fade of colours"],
    "v2v": ["The same scene as a watercolour painting", "Turn it into a pencil sketch", "Cyberpunk neon colours"],
    "vace": ["A river in autumn, golden light", "A robot walks through the scene", "Fill the masked area with flowers"],
    "s2v": ["A woman sings on a stage, close-up", "A man speaks to the camera in a studio", "A child tells a story"],
    "animate": ["A person dancing in a park", "A dancer on a stage under a spotlight", "A character waves hello"],
}


def example_media(folder: Path) -> dict[str, Path]:
    """Make (once) the example files; returns name -> path."""
    from PIL import Image, ImageDraw

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
    samples = (int(12000 * abs(math.sin(math.pi * 4 * n / rate)) * math.sin(2 * math.pi * (180 + 40 * math.sin(n / rate * 3)) * n / rate))
               for n in range(count))
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"".join(struct.pack("<h", s) for s in samples))


def examples_for(mode: str, files: dict[str, Path]) -> tuple[list[str], list[list]]:
    """(input field names, rows) for gr.Examples; field names match the panel's components."""
    prompts = PROMPTS[mode]
    pictures = [str(files[n]) for n in ("sunset", "sea", "field")]
    if mode == "t2v":
        return ["prompt"], [[p] for p in prompts]
    if mode in ("i2v", "ti2v"):
        return ["prompt", "image"], [[p, img] for p, img in zip(prompts, pictures)]
    if mode == "flf2v":
        return ["prompt", "image", "last_image"], [[p, a, b] for p, a, b in zip(prompts, pictures, pictures[1:] + pictures[:1])]
    if mode == "v2v":
        clips = [str(files["clip"]), str(files["bars"]), str(files["clip"])]
        return ["prompt", "video"], [[p, c] for p, c in zip(prompts, clips)]
    if mode == "vace":
        return ["prompt", "vace_mode", "video", "bbox"], [
            [prompts[0], "edges", str(files["clip"]), ""],
            [prompts[1], "grayscale", str(files["bars"]), ""],
            [prompts[2], "inpaint", str(files["clip"]), "32, 24, 96, 72"],
        ]
    if mode == "s2v":
        return ["prompt", "image", "audio"], [[p, img, str(files["voice"])] for p, img in zip(prompts, pictures)]
    if mode == "animate":
        return ["prompt", "image", "pose_video", "face_video"], [
            [p, img, str(files["pose"]), str(files["face"])] for p, img in zip(prompts, pictures)]
    return ["prompt"], [[p] for p in prompts]
