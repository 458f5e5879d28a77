"""What the studio's gallery needs from the output library, without any UI: pages of results
newest first, searched and filtered (prompt words, mode, date, starred), a result described by its
file and how it was made, the differences between two results, a result's request ready to load back
into its mode, a zip export of one result or several, and the last frame of a video for chaining into
an image mode.

Searching a few thousand results opens no video and reads each recipe once: what the search needs
of a recipe is kept, per file, until the file changes (its inode, size or modification time), so a
search, a filter or a page turn reads only the recipes written since and the page's own results.

A finished result (upscaled, smoothed, extended) keeps the request that made its parent's frames, so
what it is (size, frames, fps, duration) is read from its file, and what was done to it from its
recipe's `finishing` and `parent`; a parent is named by its prompt, mode and time, not its id.

Files removed by hand are tolerated everywhere: a result without its video is listed as
missing, a reload whose input copies are gone says which file is missing.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import secrets
import subprocess
import threading
import time
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Iterable

from wan_studio.errors import StudioError
from wan_studio.media import facts
from wan_studio.runtime.library import OutputLibrary, Result

PAGE_SIZE = 24
# request fields that are the lineage's bookkeeping (`made_by` says it in words) or that the output
# file itself answers (`output_facts`): never listed as differences
LINEAGE_FIELDS = ("extra", "continue_from")
OUTPUT_FIELDS = ("width", "height", "frames")


# the date filter: when a result was made, by the calendar of the machine's clock
MADE_WITHIN = {"all": "Any time", "today": "Today", "week": "This week", "month": "This month"}


@dataclass(frozen=True)
class GalleryEntry:
    id: str
    mode: str
    caption: str
    media: Path
    thumbnail: Path | None  # None when the thumbnail is gone
    missing: bool
    starred: bool = False


@dataclass(frozen=True)
class GallerySearch:
    """Which results the gallery shows. `text`: words that must all begin a word of the prompt, in any
    order and case ("red kit" finds "A Red Kite"); `mode`: one mode's results ("" every mode); `made`:
    a key of MADE_WITHIN (today, this week from Monday, this month from the 1st); `starred`: only
    starred results."""
    text: str = ""
    mode: str = ""
    made: str = "all"
    starred: bool = False

    def __post_init__(self):
        if self.made not in MADE_WITHIN:
            raise StudioError(f"Unknown date filter {self.made!r}: choose one of {', '.join(MADE_WITHIN)}.")

    @property
    def words(self) -> tuple[str, ...]:
        return tuple(_words(self.text))

    def since(self, now: datetime) -> datetime | None:
        """The earliest time a result may have been made to be shown; None: any time."""
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return {"all": None, "today": midnight, "week": midnight - timedelta(days=midnight.weekday()),
                "month": midnight.replace(day=1)}[self.made]


@dataclass(frozen=True)
class _Listed:
    """What searching needs of one result, from its recipe alone."""
    id: str
    mode: str
    words: frozenset[str]  # the prompt's words, casefolded
    starred: bool
    made: datetime | None


@dataclass
class _ListedCache:
    """`_Listed` per recipe file, kept until the file changes; one per output folder."""
    lock: threading.Lock = field(default_factory=threading.Lock)
    entries: dict[str, tuple[tuple, _Listed]] = field(default_factory=dict)


_caches: dict[Path, _ListedCache] = {}
_caches_lock = threading.Lock()


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.casefold())


def _made(result_id: str, recipe_stat: os.stat_result | None) -> datetime | None:
    """When a result was made: its id's time (`new_result_id`), else its recipe file's."""
    found = re.match(r"(\d{8}-\d{6})", result_id)
    if found:
        try:
            return datetime.strptime(found.group(1), "%Y%m%d-%H%M%S")
        except ValueError:
            pass
    return datetime.fromtimestamp(recipe_stat.st_mtime) if recipe_stat else None


def _listed(library: OutputLibrary, result_ids: list[str]) -> list[_Listed]:
    """`_Listed` of each result, reading only the recipes not read before or changed since."""
    with _caches_lock:
        cache = _caches.setdefault(library.root.resolve(), _ListedCache())
    found = []
    with cache.lock:
        for result_id in result_ids:
            path = library.root / f"{result_id}.json"
            try:
                stat = path.stat()
                key = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
            except OSError:
                stat, key = None, None
            kept = cache.entries.get(result_id)
            if kept is None or kept[0] != key:
                recipe = {}
                if stat is not None:
                    try:
                        recipe = json.loads(path.read_bytes())
                    except (OSError, ValueError):
                        pass
                recipe = recipe if isinstance(recipe, dict) else {}
                prompt = str((recipe.get("request") or {}).get("prompt") or "")
                kept = key, _Listed(result_id, str(recipe.get("mode", "?")), frozenset(_words(prompt)),
                                    bool(recipe.get("starred")), _made(result_id, stat))
                cache.entries[result_id] = kept
            found.append(kept[1])
        for gone in cache.entries.keys() - set(result_ids):  # deleted since: not kept for ever
            del cache.entries[gone]
    return found


def _matches(listed: _Listed, search: GallerySearch, words: tuple[str, ...], since: datetime | None) -> bool:
    if search.mode and listed.mode != search.mode:
        return False
    if search.starred and not listed.starred:
        return False
    if since is not None and (listed.made is None or listed.made < since):
        return False
    return all(any(word.startswith(wanted) for word in listed.words) for wanted in words)


def _caption(result: Result) -> str:
    recipe = result.recipe or {}
    prompt = " ".join(str(recipe.get("request", {}).get("prompt", "")).split())
    badge = result.mode.upper() + _lineage(recipe)
    text = f"{'★ ' if result.starred else ''}[{badge}] {prompt[:60]}{'...' if len(prompt) > 60 else ''}"
    return f"{text} (file missing)" if result.missing else text


def _lineage(recipe: dict) -> str:
    """What a result made from another one is (its recipe's `parent` names which)."""
    if not recipe.get("parent"):
        return ""
    finishing = recipe.get("finishing") or {}
    if finishing.get("operation") == "interpolate":
        return f" · smoothed ×{finishing.get('factor')}"
    if finishing.get("operation") == "upscale":
        if finishing.get("target"):
            return f" · upscaled to {finishing['target']}"
        return f" · upscaled ×{finishing.get('scale')}"
    if (recipe.get("windows") or {}).get("continuing"):
        return " · extended"
    return " · from another result"


@dataclass(frozen=True)
class GalleryView:
    """One page of the results a search finds."""
    entries: list[GalleryEntry]
    page: int  # 1-based, clamped to the pages there are
    pages: int  # of the results found (at least 1)
    found: int  # how many results the search finds
    total: int  # how many results the library holds
    modes: list[str]  # the modes of the library's results, for the mode filter


def _search(library: OutputLibrary, search: GallerySearch | None,
            now: datetime | None) -> tuple[list[_Listed], list[str]]:
    """Every result (`_Listed`) and the ids of those the search finds, both newest first."""
    listed = _listed(library, library.result_ids())
    search = search or GallerySearch()
    words, since = search.words, search.since(now or datetime.now())
    return listed, [entry.id for entry in listed if _matches(entry, search, words, since)]


def search_results(library: OutputLibrary, search: GallerySearch | None = None,
                   now: datetime | None = None) -> list[str]:
    """The ids of the results a search finds, newest first; every result without a search."""
    return _search(library, search, now)[1]


def gallery_view(library: OutputLibrary, page: int = 1, per_page: int = PAGE_SIZE,
                 search: GallerySearch | None = None, now: datetime | None = None) -> GalleryView:
    """The page `page` of the results `search` finds, newest first."""
    listed, found = _search(library, search, now)
    pages = max(1, math.ceil(len(found) / per_page))
    page = min(max(1, page), pages)
    entries = []
    for result_id in found[(page - 1) * per_page: page * per_page]:
        r = library.get(result_id)
        if r is not None:  # (None: deleted a moment ago)
            entries.append(GalleryEntry(r.id, r.mode, _caption(r), r.media,
                                        r.thumbnail if r.thumbnail.exists() else None, r.missing, r.starred))
    modes = sorted({entry.mode for entry in listed} - {"?"})
    return GalleryView(entries, page, pages, len(found), len(listed), modes)


def gallery_page(library: OutputLibrary, page: int = 1, per_page: int = PAGE_SIZE,
                 search: GallerySearch | None = None) -> tuple[list[GalleryEntry], int]:
    """One page of results (1-based, clamped) and the page count; newest first."""
    view = gallery_view(library, page, per_page, search)
    return view.entries, view.pages


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


@dataclass(frozen=True)
class OutputFacts:
    """What a result's file holds."""
    width: int
    height: int
    frames: int
    fps: float | None  # None for a still image
    duration_s: float | None
    from_file: bool  # False: the file is gone, these are what its recipe recorded when it was saved

    @property
    def size(self) -> str:
        return f"{self.width}x{self.height}"

    def describe(self) -> str:
        if self.fps is None:
            return f"{self.size} · still image"
        return f"{self.size} · {self.frames} frames · {self.fps:g} fps · {self.duration_s:.2f} s"


def output_facts(result: Result) -> OutputFacts | None:
    """Size, frame count, fps and duration read from the result's file (its request may describe its
    parent: an upscale keeps the 64x64 it was made from); the recipe's record when the file is gone."""
    if not result.missing:
        try:
            if result.media.suffix.lower() == ".png":
                width, height = facts.image_size(result.media, "result")
                return OutputFacts(width, height, 1, None, None, True)
            video = facts.video_info(result.media, "result")
            return OutputFacts(video.width, video.height, video.frames, round(video.fps, 2), video.duration_s, True)
        except StudioError:  # unreadable: what the recipe recorded is the next best
            pass
    output = (result.recipe or {}).get("output") or {}
    if not (output.get("width") and output.get("height")):
        return None
    fps = output.get("fps")
    frames = int(output.get("frames") or 1)
    return OutputFacts(int(output["width"]), int(output["height"]), frames, fps,
                       output.get("duration_s") or (frames / fps if fps else None), False)


def made_at(result_id: str) -> str:
    """When a result was made, from its id (`new_result_id`): "2026-01-02 10:15:08", or ""."""
    found = re.match(r"(\d{4})(\d\d)(\d\d)-(\d\d)(\d\d)(\d\d)", result_id)
    return "{}-{}-{} {}:{}:{}".format(*found.groups()) if found else ""


def result_label(library: OutputLibrary, result_id: str) -> str:
    """A result as a person knows it: its prompt, mode (and what was done to it) and when it was made."""
    result = library.get(result_id)
    when = made_at(result_id)
    if result is None:
        return f"a deleted result{' made ' + when if when else ''}"
    recipe = result.recipe or {}
    prompt = " ".join(str((recipe.get("request") or {}).get("prompt") or "").split())
    quoted = f"“{prompt[:40]}{'…' if len(prompt) > 40 else ''}”" if prompt else ""
    return " · ".join(part for part in (quoted, result.mode.upper() + _lineage(recipe), when) if part)


def made_by(library: OutputLibrary, result: Result, names: dict[str, str] | None = None) -> str:
    """How the result was made, in words: "generated", or what was done to which result ("upscaled ×2
    with tiny-upscaler from “a red kite” · T2V · ..."). `names` calls some results otherwise ("A")."""
    recipe = result.recipe or {}
    finishing = recipe.get("finishing") or {}
    parent = recipe.get("parent")
    if finishing.get("operation") == "upscale":
        target = finishing.get("target")
        done = f"upscaled to {target}" if target else f"upscaled ×{finishing.get('scale')}"
    elif finishing.get("operation") == "interpolate":
        done = f"smoothed ×{finishing.get('factor')}"
    elif parent and (recipe.get("windows") or {}).get("continuing"):
        added = (recipe.get("request") or {}).get("frames")
        done = f"extended by {added} frames" if added else "extended"
    elif parent:
        done = "made"
    else:
        return "generated"
    if finishing.get("model"):
        done += f" with {finishing['model']}"
    if not parent:
        return done
    return f"{done} from {(names or {}).get(parent) or result_label(library, parent)}"


def result_differences(library: OutputLibrary, first: Result, second: Result) -> list[tuple[str, str, str]]:
    """What differs between two results, in words: (what, first's, second's). How each was made, what
    its file holds (size, frames, fps, duration), then the request's fields in request order (input
    files by their contents) and the memory plan. The lineage's bookkeeping is not listed."""
    found: list[tuple[str, str, str]] = []

    def differ(what: str, a: object, b: object) -> None:
        a, b = _said(a), _said(b)
        if a != b:
            found.append((what, a, b))

    names = {first.id: "A", second.id: "B"}
    differ("made", made_by(library, first, names), made_by(library, second, names))
    outputs = output_facts(first), output_facts(second)
    if None not in outputs:
        for what, read in (("size", lambda o: o.size), ("frames", lambda o: o.frames), ("fps", lambda o: o.fps),
                           ("duration", lambda o: None if o.duration_s is None else f"{o.duration_s:.2f} s")):
            differ(what, *map(read, outputs))
    recipes = first.recipe or {}, second.recipe or {}
    a, b = (recipe.get("request") or {} for recipe in recipes)
    files = {*(recipes[0].get("inputs") or {}), *(recipes[1].get("inputs") or {})}
    skipped = LINEAGE_FIELDS + (OUTPUT_FIELDS if None not in outputs else ())
    for key in [*a, *(k for k in b if k not in a)]:
        if key in skipped:
            continue
        if key in files:
            if _contents(library, a.get(key)) != _contents(library, b.get(key)):
                found.append((key.replace("_", " "), _said(_file_names(a.get(key))), _said(_file_names(b.get(key)))))
            continue
        differ(key.replace("_", " "), a.get(key), b.get(key))
    for key in ("plan", "attention"):
        differ(f"memory {key}", *((recipe.get("memory") or {}).get(key) for recipe in recipes))
    return found


def _said(value: object) -> str:
    """A recipe's value in words: nothing set is "—", a list its items."""
    if value is None or value == [] or value == {}:
        return "—"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_said(item) for item in value)
    if isinstance(value, dict):
        return ", ".join(f"{key} {_said(item)}" for key, item in value.items())
    return str(value)


def _paths(value: object) -> list[str]:
    return [str(item) for item in value] if isinstance(value, list) else [str(value)] if value else []


def _file_names(value: object) -> list[str]:
    return [Path(path).name for path in _paths(value)]


def _contents(library: OutputLibrary, value: object) -> list[str]:
    """The input files' contents (a digest; a file gone by its name), so two results' copies of one
    upload compare equal although each has its own copy."""
    found = []
    for path in _paths(value):
        path = library.root / path  # relative to the library; an absolute path stays as it is
        if path.is_file():
            digest = hashlib.sha256()
            with path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            found.append(digest.hexdigest())
        else:
            found.append(path.name)
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


def export_zip(library: OutputLibrary, result_ids: str | Iterable[str], dest_dir: Path) -> Path:
    """A zip of one result or several, laid out as in the output folder: each one's media, recipe and
    thumbnail, and the input files it used in `<id>.inputs/` (its recipe names them so), so unzipped
    into another studio's output folder they list and reload as they are. One result makes `<id>.zip`,
    several `<n>-results-<time>-<tag>.zip`. A result whose video is gone stops the export, named."""
    ids = [result_ids] if isinstance(result_ids, str) else list(dict.fromkeys(result_ids))
    if not ids:
        raise StudioError("No result to export: select one or more results first.")
    results = []
    for result_id in ids:
        result = library.get(result_id)
        if result is None:
            raise StudioError(f"There is no result {result_id!r} in the library (deleted since it was selected?).")
        if result.missing:
            if len(ids) == 1:
                raise StudioError(f"The video of {result_id} was deleted from the output folder; nothing to export.")
            raise StudioError(f"The video of {result_label(library, result_id)} was deleted from the output folder; "
                              "unselect it to export the others.")
        results.append(result)
    dest_dir.mkdir(parents=True, exist_ok=True)
    if len(ids) == 1:
        target = dest_dir / f"{ids[0]}.zip"
    else:
        target = dest_dir / f"{len(ids)}-results-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}.zip"
    partial = target.with_name(f".{target.name}.partial")
    try:
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
            for result in sorted(results, key=lambda r: r.id):
                for path in (result.media, result.recipe_path, result.thumbnail):
                    if path.is_file():
                        archive.write(path, path.name)
                inputs = library.root / f"{result.id}.inputs"
                if inputs.is_dir():
                    for path in sorted(inputs.rglob("*")):
                        if path.is_file():
                            archive.write(path, f"{inputs.name}/{path.relative_to(inputs).as_posix()}")
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
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
