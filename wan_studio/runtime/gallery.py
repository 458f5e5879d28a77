"""What the studio's gallery needs from the output library, without any UI: pages of results
newest first, a result's request ready to load back into its mode, a zip export, and the last
frame of a video for chaining into an image mode.

Files removed by hand are tolerated everywhere: a result without its video is listed as
missing, a reload whose input copies are gone says which file is missing.
"""

from __future__ import annotations

import math
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path

from wan_studio.errors import StudioError
from wan_studio.runtime.library import OutputLibrary, Result

PAGE_SIZE = 24


@dataclass(frozen=True)
class GalleryEntry:
    id: str
    mode: str
    caption: str
    media: Path
    thumbnail: Path | None  # None when the thumbnail is gone
    missing: bool


def _caption(result: Result) -> str:
    recipe = result.recipe or {}
    prompt = " ".join(str(recipe.get("request", {}).get("prompt", "")).split())
    badge = result.mode.upper() + _lineage(recipe)
    text = f"[{badge}] {prompt[:60]}{'...' if len(prompt) > 60 else ''}"
    return f"{text} (file missing)" if result.missing else text


def _lineage(recipe: dict) -> str:
    """What a result made from another one is (its recipe's `parent` names which)."""
    if not recipe.get("parent"):
        return ""
    finishing = recipe.get("finishing") or {}
    if finishing.get("operation") == "interpolate":
        return f" · smoothed ×{finishing.get('factor')}"
    if finishing.get("operation") == "upscale":
        return f" · upscaled ×{finishing.get('scale')}"
    if (recipe.get("windows") or {}).get("continuing"):
        return " · extended"
    return " · from another result"


def gallery_page(library: OutputLibrary, page: int = 1, per_page: int = PAGE_SIZE) -> tuple[list[GalleryEntry], int]:
    """One page of results (1-based, clamped) and the page count; newest first."""
    results = library.list()
    pages = max(1, math.ceil(len(results) / per_page))
    page = min(max(1, page), pages)
    chosen = results[(page - 1) * per_page: page * per_page]
    entries = [
        GalleryEntry(r.id, r.mode, _caption(r), r.media, r.thumbnail if r.thumbnail.exists() else None, r.missing)
        for r in chosen
    ]
    return entries, pages


def recent_prompts(library: OutputLibrary, mode: str, limit: int = 50) -> list[str]:
    """The prompts of the mode's results, newest first, each once: the prompt history."""
    found: list[str] = []
    for result in library.list():
        request = (result.recipe or {}).get("request") or {}
        prompt = str(request.get("prompt") or "").strip()
        if request.get("mode") == mode and prompt and prompt not in found:
            found.append(prompt)
            if len(found) == limit:
                break
    return found


def recipe_differences(first: dict, second: dict) -> list[tuple[str, object, object]]:
    """(field, first's value, second's value) for each request field that differs, then the model's
    and the memory plan's; fields in the request order."""
    found = []
    a, b = first.get("request") or {}, second.get("request") or {}
    for key in [*a, *(k for k in b if k not in a)]:
        if a.get(key) != b.get(key):
            found.append((key, a.get(key), b.get(key)))
    for section, key in (("memory", "plan"), ("memory", "attention")):
        left, right = (first.get(section) or {}).get(key), (second.get(section) or {}).get(key)
        if left != right:
            found.append((f"{section} {key}", left, right))
    return found


def reload_request(library: OutputLibrary, result_id: str) -> dict:
    """The saved request of a result, input paths made absolute; raises if it cannot be re-run."""
    from wan_studio.requests import absolutize_inputs, request_types

    result = library.get(result_id)
    if result is None or not result.recipe or "request" not in result.recipe:
        raise StudioError(f"There is no result {result_id!r} with a recipe in the library.")
    data = absolutize_inputs(dict(result.recipe["request"]), library.root)
    cls = request_types().get(data.get("mode"))
    if cls is None:
        raise StudioError(f"Result {result_id} was made by mode {data.get('mode')!r}, which this version cannot run.")
    for name in cls.file_fields:
        value = data.get(name)
        for path in value if isinstance(value, list) else [value] if value else []:
            if not Path(path).is_file():
                raise StudioError(f"The {name.replace('_', ' ')} of result {result_id} ({Path(path).name}) "
                                  "was deleted; upload it again to re-run this recipe.")
    return data


def export_zip(library: OutputLibrary, result_id: str, dest_dir: Path) -> Path:
    """A zip of the result's media, its recipe, its thumbnail and the input files it used."""
    result = library.get(result_id)
    if result is None:
        raise StudioError(f"There is no result {result_id!r} in the library.")
    if result.missing:
        raise StudioError(f"The video of {result_id} was deleted from the output folder; nothing to export.")
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / f"{result_id}.zip"
    inputs = library.root / f"{result_id}.inputs"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in (result.media, result.recipe_path, result.thumbnail):
            if path.is_file():
                archive.write(path, path.name)
        if inputs.is_dir():
            for path in sorted(inputs.rglob("*")):
                if path.is_file():
                    archive.write(path, f"{inputs.name}/{path.relative_to(inputs)}")
    return target


def save_last_frame(video: Path | str, dest: Path) -> Path:
    """The last frame of a video as a PNG (for "send to I2V / FLF2V"); decodes only the final second."""
    import imageio_ffmpeg

    dest.parent.mkdir(parents=True, exist_ok=True)
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-nostdin", "-y", "-sseof", "-1", "-i", str(video),
               "-update", "1", "-frames:v", "1000", str(dest)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode or not dest.is_file():
        raise StudioError(f"Could not read the last frame of {Path(video).name}: {done.stderr.strip()[-200:]}")
    return dest
