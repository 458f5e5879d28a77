"""The output library: every result as a browser-playable mp4, a thumbnail and a JSON recipe.

Layout (flat, one stem per result):  <output_dir>/<id>.mp4 (or .png)  <id>.jpg  <id>.json
and <id>.inputs/ with copies of the images, videos and masks the request used; the recipe names
them relative to the output folder, so reloading a recipe re-runs it exactly.
- Writes are atomic: each file is written under a hidden temporary name and renamed into place;
  the recipe is renamed last, so a result with a recipe is always complete, and a crash leaves
  only hidden `.partial` files that listing ignores and `sweep_partials` removes.
- The mp4 is H.264 (CRF 17), yuv420p, +faststart, at the model's native fps, with the recipe
  embedded in its comment tag, so the file alone is enough to reproduce it (media/recipe.py reads it back).
- Listing and deleting tolerate files removed by hand: a result whose video is gone is listed as
  missing, never raises.
- The gallery's Delete moves a result into the hidden `.trash/<id>/` (listing ignores it), from where
  `restore` puts every file back as it was; `empty_trash` removes what has been there over a day
  (the studio does at start). `trash_all` / `restore_all` do the same for several at once.
- A star is a `"starred": true` key in the result's own recipe, rewritten atomically (`set_starred`):
  it goes where the recipe goes (the trash and back, an export, another machine's library), needs no
  second file kept in step with deletes, and the gallery's search reads it with the recipe it reads
  anyway. The request is untouched, so the recipe reproduces the result as before.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import shutil
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
from PIL import Image, PngImagePlugin

from wan_studio.disk import QUEUE_ROOM, free_space
from wan_studio.errors import StudioError
from wan_studio.media import facts

RECIPE_FORMAT = "wan-studio-recipe/1"
THUMB_WIDTH = 320
TRASH = ".trash"  # deleted results, restorable until emptied
TRASH_KEEP_S = 24 * 3600


@dataclass
class Result:
    id: str
    media: Path  # the mp4 (or png for one-frame previews)
    thumbnail: Path
    recipe_path: Path
    recipe: dict | None

    @property
    def missing(self) -> bool:
        return not self.media.exists()

    @property
    def mode(self) -> str:
        return (self.recipe or {}).get("mode", "?")

    @property
    def starred(self) -> bool:
        return bool((self.recipe or {}).get("starred"))


_last_ms = 0
_id_lock = threading.Lock()
_edit_lock = threading.Lock()  # a recipe rewritten (a star) is never moved to the trash halfway


def new_result_id(mode: str) -> str:
    """Sortable by creation: the time to the millisecond, strictly increasing within a process (two
    results of one second must not fall in random order: the gallery lists newest first by id)."""
    global _last_ms
    with _id_lock:
        _last_ms = max(int(time.time() * 1000), _last_ms + 1)
        ms = _last_ms
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(ms / 1000))
    return f"{stamp}-{ms % 1000:03d}-{mode}-{secrets.token_hex(3)}"


@dataclass
class FrameStream:
    """Frames made one at a time and encoded as they come (a long upscale need not fit in memory):
    their count and size are known before the first."""
    count: int
    width: int
    height: int
    frames: Iterable[np.ndarray]


def write_mp4(path: Path, frames: np.ndarray | FrameStream, fps: int, comment: str = "",
              audio: tuple | None = None) -> None:
    """Encode uint8 frames (F, H, W, 3) to H.264 yuv420p; atomic through a temporary file.
    `audio` = (file, seconds): a sound track muxed in as AAC, cut to that length (S2V)."""
    import imageio_ffmpeg

    if isinstance(frames, FrameStream):
        width, height, frames = frames.width, frames.height, _checked(frames)
    else:
        frames = np.asarray(frames)
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"expected uint8 frames (F, H, W, 3), got {frames.dtype} {frames.shape}")
        height, width = frames.shape[1:3]
    tmp = path.with_name(f".{path.stem}.partial.mp4")
    # CRF 17 sets the quality; x264's "faster" search reaches it (PSNR within 0.06 dB of "medium" on
    # Tiny and 480p test clips, files no larger) with 35-45 % less encoding time
    params = ["-crf", "17", "-preset", "faster", "-movflags", "+faststart"]
    if comment:
        params += ["-metadata", f"comment={comment}"]
    sound = {}
    if audio is not None:
        from wan_studio.media.audio import mux_options

        sound = mux_options(*audio)
        params += sound.pop("output_params")
    writer = imageio_ffmpeg.write_frames(
        str(tmp), (width, height), fps=fps, codec="libx264", pix_fmt_out="yuv420p", quality=None,
        macro_block_size=2, output_params=params, ffmpeg_log_level="error", **sound,
    )
    try:
        writer.send(None)
        for frame in frames:
            writer.send(np.ascontiguousarray(frame))
        writer.close()
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            writer.close()
        except Exception:  # ffmpeg already failed; its error is the one below
            pass
        tmp.unlink(missing_ok=True)
        if not isinstance(exc, OSError) and free_space(path.parent) < QUEUE_ROOM:  # ffmpeg could not write: say why
            raise OSError(errno.ENOSPC, f"No space left on the disk holding {path.parent}") from exc
        raise


def _checked(stream: FrameStream) -> Iterator[np.ndarray]:
    made = 0
    for frame in stream.frames:
        if frame.dtype != np.uint8 or frame.shape != (stream.height, stream.width, 3):
            raise ValueError(f"expected uint8 frames ({stream.height}, {stream.width}, 3), "
                             f"got {frame.dtype} {frame.shape}")
        made += 1
        yield frame
    if made != stream.count:
        raise ValueError(f"expected {stream.count} frames, got {made}")


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.partial")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def _whole_or_nothing(*written: Path):
    """A result whose thumbnail or recipe could not be written (a full disk) leaves no file behind."""
    try:
        yield
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise


def write_thumbnail(path: Path, frame: np.ndarray) -> None:
    image = Image.fromarray(frame)
    if image.width > THUMB_WIDTH:
        image = image.resize((THUMB_WIDTH, max(2, round(image.height * THUMB_WIDTH / image.width))))
    buf = BytesIO()
    image.save(buf, format="JPEG", quality=88)
    _write_atomic(path, buf.getvalue())


def _keeping_middle(frames: Iterable[np.ndarray], index: int, kept: list) -> Iterator[np.ndarray]:
    for n, frame in enumerate(frames):
        if n == index:
            kept.append(frame)
        yield frame


class OutputLibrary:
    def __init__(self, root: Path):
        self.root = Path(root)

    def _paths(self, result_id: str, ext: str = ".mp4") -> tuple[Path, Path, Path]:
        return self.root / f"{result_id}{ext}", self.root / f"{result_id}.jpg", self.root / f"{result_id}.json"

    def copy_inputs(self, result_id: str, files: dict[str, list[str]]) -> dict[str, list[str]]:
        """Copy a request's input files beside the result; return their paths relative to the library."""
        if not files:
            return {}
        folder = self.root / f"{result_id}.inputs"
        folder.mkdir(parents=True, exist_ok=True)
        copied: dict[str, list[str]] = {}
        for field_name, paths in files.items():
            for n, source in enumerate(paths):
                suffix = Path(source).suffix.lower()
                name = f"{field_name}{'-' + str(n + 1) if len(paths) > 1 else ''}{suffix}"
                shutil.copyfile(source, folder / name)
                facts.carry(source, folder / name)
                copied.setdefault(field_name, []).append(f"{folder.name}/{name}")
        return copied

    def result_files(self, result_id: str) -> dict[str, bytes]:
        """Every file of a result (media, thumbnail, recipe, input copies) by its path in the library:
        what another machine's library needs to hold the same result (`adopt`)."""
        result = self.get(result_id)
        if result is None:
            raise KeyError(result_id)
        paths = [result.media, result.thumbnail, result.recipe_path]
        inputs = self.root / f"{result_id}.inputs"
        if inputs.is_dir():
            paths += sorted(path for path in inputs.iterdir() if path.is_file())
        return {path.relative_to(self.root).as_posix(): path.read_bytes() for path in paths if path.is_file()}

    def adopt(self, files: dict[str, bytes]) -> Result:
        """A result made on another machine (`result_files` there), written here: inputs, media and
        thumbnail first, the recipe last, so a listing never shows half of one."""
        self.root.mkdir(parents=True, exist_ok=True)
        recipe_name = next(name for name in files if name.endswith(".json") and "/" not in name)
        result_id = Path(recipe_name).stem
        for name in files:
            parts = Path(name).parts  # the result's own files, or its inputs' folder's: nothing else
            own = (len(parts) == 1 and Path(name).stem == result_id) or \
                  (len(parts) == 2 and parts[0] == f"{result_id}.inputs" and parts[1] not in ("", ".", ".."))
            if not own or Path(name).is_absolute():
                raise ValueError(f"refusing to write {name!r}: not a file of result {result_id}")
        named = json.loads(files[recipe_name]).get("output", {}).get("file")
        if named not in files:  # the recipe names its media, which `delete` removes later: one of these
            raise ValueError(f"result {result_id}'s recipe names {named!r}, which did not come with it")
        for name in sorted(files, key=lambda n: (n == recipe_name, n)):
            target = self.root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            _write_atomic(target, files[name])
        return self._load(Path(recipe_name).stem)

    def save_image(self, frame: np.ndarray, recipe: dict, result_id: str | None = None) -> Result:
        """A one-frame result (preview) as PNG, with thumbnail and recipe."""
        self.root.mkdir(parents=True, exist_ok=True)
        result_id = result_id or new_result_id(recipe.get("mode", "image"))
        media, thumb, recipe_path = self._paths(result_id, ".png")
        frame = np.asarray(frame)
        output = {"file": media.name, "frames": 1, "width": int(frame.shape[1]), "height": int(frame.shape[0])}
        recipe = {"format": RECIPE_FORMAT, "id": result_id, **recipe, "output": output}
        buf = BytesIO()
        info = PngImagePlugin.PngInfo()
        info.add_itxt("wan_studio_recipe", json.dumps(recipe, ensure_ascii=False, default=str))
        Image.fromarray(frame).save(buf, format="PNG", pnginfo=info)
        _write_atomic(media, buf.getvalue())
        with _whole_or_nothing(media, thumb):
            write_thumbnail(thumb, frame)
            _write_atomic(recipe_path, json.dumps(recipe, indent=2, ensure_ascii=False, default=str).encode("utf-8"))
        return Result(result_id, media, thumb, recipe_path, recipe)

    def save_video(self, frames: np.ndarray | FrameStream, fps: int, recipe: dict, result_id: str | None = None,
                   audio: tuple | None = None) -> Result:
        """Frames (an array, or a FrameStream encoded as it comes) as a result: mp4, thumbnail, recipe."""
        self.root.mkdir(parents=True, exist_ok=True)
        result_id = result_id or new_result_id(recipe.get("mode", "video"))
        media, thumb, recipe_path = self._paths(result_id)
        if isinstance(frames, FrameStream):
            count, width, height = frames.count, frames.width, frames.height
            middle: list[np.ndarray] = []
            frames = FrameStream(count, width, height, _keeping_middle(frames.frames, count // 2, middle))
        else:
            frames = np.asarray(frames)
            (count, height, width), middle = frames.shape[:3], [frames[len(frames) // 2]]
        recipe = {
            "format": RECIPE_FORMAT, "id": result_id, **recipe,
            "output": {
                "file": media.name, "frames": int(count), "width": int(width),
                "height": int(height), "fps": fps, "duration_s": round(count / fps, 3),
            },
        }
        if audio is not None:
            recipe["output"]["audio"] = {"codec": "aac", "duration_s": round(audio[1], 3)}
        text = json.dumps(recipe, indent=2, ensure_ascii=False, default=str)
        write_mp4(media, frames, fps, comment=json.dumps(recipe, ensure_ascii=False, default=str), audio=audio)
        with _whole_or_nothing(media, thumb):
            write_thumbnail(thumb, middle[0])
            _write_atomic(recipe_path, text.encode("utf-8"))
        return Result(result_id, media, thumb, recipe_path, recipe)

    def list(self) -> list[Result]:
        """Every result, newest first. Recipes without media and media without recipes are kept."""
        return [self._load(result_id) for result_id in self.result_ids()]

    def result_ids(self) -> list[str]:
        """Every result's id, newest first, from the folder's file names alone (nothing is opened)."""
        if not self.root.is_dir():
            return []
        found = set()
        with os.scandir(self.root) as entries:
            for entry in entries:
                stem, dot, suffix = entry.name.rpartition(".")
                if dot and not entry.name.startswith(".") and suffix in ("json", "mp4", "png") and entry.is_file():
                    found.add(stem)
        return sorted(found, reverse=True)

    def _load(self, result_id: str) -> Result:
        _, thumb, recipe_path = self._paths(result_id)
        recipe = None
        try:
            recipe = json.loads(recipe_path.read_text())
        except (OSError, ValueError):
            pass
        name = (recipe or {}).get("output", {}).get("file")
        media = self.root / name if name else next(
            (p for p in (self.root / f"{result_id}.mp4", self.root / f"{result_id}.png") if p.exists()),
            self.root / f"{result_id}.mp4",
        )
        return Result(result_id, media, thumb, recipe_path, recipe)

    def get(self, result_id: str) -> Result | None:
        if "/" in result_id or "\\" in result_id or result_id.startswith("."):
            return None
        result = self._load(result_id)
        return result if (result.recipe or not result.missing) else None

    def delete(self, result_id: str) -> bool:
        """Remove a result's files; files already gone are fine. True if anything was removed."""
        result = self.get(result_id)
        if result is None:
            return False
        removed = False
        for path in (result.media, result.thumbnail, result.recipe_path):
            try:
                path.unlink()
                removed = True
            except FileNotFoundError:
                pass
        inputs = self.root / f"{result_id}.inputs"
        if inputs.is_dir():
            shutil.rmtree(inputs, ignore_errors=True)
            removed = True
        return removed

    def set_starred(self, result_id: str, starred: bool) -> Result:
        """Star or unstar a result: its recipe's `starred` key, the recipe rewritten atomically
        (unstarred, the key is removed: the recipe is as it was saved)."""
        with _edit_lock:
            result = self.get(result_id)
            if result is None or not result.recipe:
                raise StudioError(f"Result {result_id} has no recipe in the output folder (deleted, or made by hand), "
                                  "so it cannot be starred.")
            recipe = {key: value for key, value in result.recipe.items() if key != "starred"}
            if starred:
                recipe["starred"] = True
            if recipe != result.recipe:
                text = json.dumps(recipe, indent=2, ensure_ascii=False, default=str)
                _write_atomic(result.recipe_path, text.encode("utf-8"))
            return Result(result.id, result.media, result.thumbnail, result.recipe_path, recipe)

    def trash(self, result_id: str) -> bool:
        """Move a result's files (media, thumbnail, input copies, the recipe last) into the trash,
        from where `restore` puts them back. Files already gone are fine. True if anything was moved."""
        result = self.get(result_id)
        if result is None:
            return False
        folder = self.root / TRASH / result_id
        with _edit_lock:
            shutil.rmtree(folder, ignore_errors=True)  # an older delete of the same result, restored since
            folder.mkdir(parents=True)
            moved = False
            for path in (result.media, result.thumbnail, self.root / f"{result_id}.inputs", result.recipe_path):
                if path.exists():
                    os.replace(path, folder / path.name)
                    moved = True
            if not moved:
                folder.rmdir()
        return moved

    def trash_all(self, result_ids: Iterable[str]) -> list[str]:
        """`trash` for several results; the ids of those moved (one Undo gives them to `restore_all`)."""
        return [result_id for result_id in dict.fromkeys(result_ids) if self.trash(result_id)]

    def _restorable(self, result_id: str) -> list[str]:
        """The names of a trashed result's files, the recipe last; raises if they cannot go back."""
        folder = self.root / TRASH / result_id
        if "/" in result_id or "\\" in result_id or result_id.startswith(".") or not folder.is_dir():
            raise StudioError(f"Result {result_id} is no longer in the trash (it is emptied when the studio starts, "
                              "a day after a delete), so it cannot be restored.")
        names = sorted((path.name for path in folder.iterdir()), key=lambda name: (name == f"{result_id}.json", name))
        taken = [name for name in names if (self.root / name).exists()]
        if taken:
            raise StudioError(f"Cannot restore result {result_id}: {', '.join(taken)} is in the output folder again; "
                              "move it away, then press Undo again.")
        return names

    def restore(self, result_id: str) -> Result:
        """Put a trashed result's files back where they were (the recipe last, so a listing never
        shows half of it)."""
        return self.restore_all([result_id])[0]

    def restore_all(self, result_ids: Iterable[str]) -> list[Result]:
        """`restore` for several results, all or none: if one cannot go back (gone from the trash, or
        its name taken again), nothing is moved and the error says which."""
        result_ids = list(dict.fromkeys(result_ids))
        with _edit_lock:
            names = {result_id: self._restorable(result_id) for result_id in result_ids}
            for result_id, files in names.items():
                folder = self.root / TRASH / result_id
                for name in files:
                    os.replace(folder / name, self.root / name)
                folder.rmdir()
        return [self._load(result_id) for result_id in result_ids]

    def empty_trash(self, older_than_s: float = TRASH_KEEP_S) -> int:
        """Remove the results deleted more than `older_than_s` ago; how many were removed."""
        trash = self.root / TRASH
        if not trash.is_dir():
            return 0
        count, now = 0, time.time()
        for folder in trash.iterdir():
            if folder.is_dir() and now - folder.stat().st_mtime > older_than_s:
                shutil.rmtree(folder, ignore_errors=True)
                count += 1
        return count

    def sweep_partials(self) -> int:
        """Remove leftovers of writes that were interrupted (a crash mid-encode)."""
        count = 0
        if self.root.is_dir():
            for path in self.root.glob(".*.partial*"):
                path.unlink(missing_ok=True)
                count += 1
        return count
