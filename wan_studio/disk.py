"""A full disk, said in the studio's words: which folder, how much is free, how much a job needs.

A job is refused before it is queued when its output folder has less room than it needs (its
input copies, the video, the queue's growth), and a write that still finds the disk full (SQLite's
"database or disk is full", its "disk I/O error" when it cannot grow a file, an OS write's ENOSPC)
becomes `DiskFull` instead of a traceback. Nothing is lost either way: SQLite rolls the change back,
results are written as hidden `.partial` files first, and a queued job stays queued.
"""

from __future__ import annotations

import errno
import shutil
import sys
from pathlib import Path

from wan_studio.errors import StudioError

QUEUE_ROOM = 1 << 20  # the queue database's growth for a job, its write-ahead log and index
H264_BYTES_PER_PIXEL = 0.3  # a generous bound for the studio's H.264 (noise, the Tiny models' output, included)


class DiskFull(StudioError):
    """The output folder's disk has no room for what the studio must write there."""

    def __init__(self, folder: Path | str, needed: int, free: int | None = None, job_id: str | None = None):
        self.folder, self.needed = Path(folder), int(needed)
        self.free = free_space(self.folder) if free is None else int(free)
        self.job_id = job_id
        super().__init__(self._text())

    def _text(self) -> str:
        text = (f"The disk holding {self.folder} is full: {describe_size(self.free)} free, and this needs about "
                f"{describe_size(self.needed)}. Free some space there (or choose another output folder) and try "
                f"again; earlier results and the queue are kept.")
        if self.job_id:
            text += (f" Job {self.job_id} stays queued and runs once there is room "
                     f"(`python -m wan_studio queue run`, or the studio, runs it).")
        return text


def describe_size(n: int) -> str:
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"


def free_space(folder: Path | str) -> int:
    """Bytes free on the disk that holds `folder` (or its nearest existing parent)."""
    path = Path(folder)
    while not path.exists() and path.parent != path:
        path = path.parent
    return shutil.disk_usage(path).free


def space_needed(request, inputs_copied: bool = False) -> int:
    """About how many bytes a job writes in the output folder: the queue's copies of its inputs
    (unless `inputs_copied`: a queued job's are there already), its video (or image) with thumbnail
    and recipe, and the queue's own growth."""
    inputs = 0
    for paths in request.input_files().values():
        for path in paths:
            try:
                inputs += Path(path).stat().st_size
            except OSError:
                pass
    width, height, frames = (getattr(request, name, None) for name in ("width", "height", "frames"))
    if all(isinstance(v, int) and v > 0 for v in (width, height, frames)):
        output = int(width * height * frames * H264_BYTES_PER_PIXEL)
    else:  # a finishing job: a few times its source video (interpolated or upscaled)
        output = 4 * inputs
    return (0 if inputs_copied else inputs) + output + QUEUE_ROOM


def require_space(folder: Path | str, needed: int) -> None:
    """Raise DiskFull when the disk holding `folder` has less than `needed` bytes free."""
    free = free_space(folder)
    if free < needed:
        raise DiskFull(folder, needed, free)


def is_disk_full(exc: BaseException, folder: Path | str, room: int = QUEUE_ROOM) -> bool:
    """The error is the disk being full: ENOSPC / EDQUOT from the OS, SQLITE_FULL, or SQLite's
    I/O error (it cannot grow its files) while less than `room` is free."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return True
    # only a loaded sqlite3 can have raised; not imported here, so the page is built without it
    sqlite3 = sys.modules.get("sqlite3")
    if sqlite3 is not None and isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        primary = code & 0xFF if code is not None else None
        words = str(exc).lower()
        if primary == sqlite3.SQLITE_FULL or "disk is full" in words:
            return True
        if primary == sqlite3.SQLITE_IOERR or "disk i/o error" in words:
            return free_space(folder) < room
    return False
