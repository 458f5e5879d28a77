"""A result's recipe read back: from its .json, or from the comment tag of its .mp4 (the output library,
runtime/library.py, writes both). Here, below the requests, so a request can read what a result it
names was made with."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from wan_studio.errors import RequestError


def read_embedded_recipe(mp4: Path) -> dict | None:
    """The recipe stored in an mp4's comment tag, read back with the bundled ffmpeg."""
    import imageio_ffmpeg

    out = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(mp4), "-f", "ffmetadata", "-"],
        capture_output=True, text=True, check=False,
    ).stdout
    # ffmetadata escapes '=', ';', '#', '\\' and newlines with a backslash
    for line in _join_continuations(out):
        if line.startswith("comment="):
            value = _unescape(line[len("comment="):])
            try:
                return json.loads(value)
            except ValueError:
                return None
    return None


def _join_continuations(text: str) -> list[str]:
    lines, current = [], ""
    for raw in text.split("\n"):
        current += raw
        if raw.endswith("\\") and not raw.endswith("\\\\"):
            current = current[:-1] + "\n"
            continue
        lines.append(current)
        current = ""
    return lines


def _unescape(value: str) -> str:
    out, i = [], 0
    while i < len(value):
        if value[i] == "\\" and i + 1 < len(value):
            out.append(value[i + 1])
            i += 2
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def load_recipe(path: Path) -> dict:
    """A result's recipe: its .json, or the one embedded in its .mp4; RequestError when it is neither."""
    if not path.is_file():
        raise RequestError("recipe", f"Recipe file not found: {path}")
    if path.suffix.lower() == ".mp4":
        recipe = read_embedded_recipe(path)
        if recipe is None:
            raise RequestError("recipe", f"{path} carries no Wan Studio recipe in its metadata.")
        return recipe
    try:
        recipe = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestError("recipe", f"{path} is not a valid recipe JSON file ({exc}).")
    if not isinstance(recipe, dict) or "request" not in recipe:
        raise RequestError("recipe", f"{path} is not a Wan Studio recipe (it has no 'request').")
    return recipe
