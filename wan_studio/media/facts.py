"""Facts about input files, read once per version of a file: an image's size, a video's length and
size, an audio file's duration, a LoRA file's header.

A request is prepared often (every cost-line refresh on the page, again at submit); keyed by the
file's identity (resolved path, size, modification time), each file is opened once, and a file
edited in place is read again. A queued job keeps what its preparation found (requests/prepared.py),
so the worker reads nothing; the library's copies of an input `carry` the facts of the original,
so a re-run from the gallery does not probe its copy either.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Callable

_facts: dict[tuple, object] = {}
_lock = threading.Lock()
MAX_ENTRIES = 4096
reads = 0  # how many times a file was actually read (for tests and benchmarks)


def identity(path) -> tuple | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None  # missing or unreadable: the reader raises its own clear message
    return str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns


def remember(kind: str, path, read: Callable[[], object]):
    """`read()` once per (kind, file version); errors are not cached (the user may fix the file)."""
    global reads
    found = identity(path)
    key = (kind, *found) if found else None
    if key is not None:
        with _lock:
            if key in _facts:
                return _facts[key]
    value = read()
    with _lock:
        reads += 1
        if key is not None:
            if len(_facts) >= MAX_ENTRIES:
                _facts.clear()
            _facts[key] = value
    return value


def carry(source, copy) -> None:
    """The copy holds the same bytes as the source: it has the source's facts."""
    old, new = identity(source), identity(copy)
    if old is None or new is None:
        return
    with _lock:
        for key, value in list(_facts.items()):
            if key[1:] == old:
                _facts[(key[0], *new)] = value


# -- the facts requests need ----------------------------------------------------------------------
def image_size(path, field: str) -> tuple[int, int]:
    from wan_studio import media

    return remember("image-size", path, lambda: media.load_image(path, field=field).size)


def video_info(path, field: str):
    from wan_studio import media

    return remember("video-info", path, lambda: media.probe_video(path, field=field))


def audio_seconds(path, field: str) -> float:
    from wan_studio.media import audio

    return remember("audio-seconds", path, lambda: audio.audio_duration(path, field=field))
