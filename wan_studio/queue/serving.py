"""Who serves a queue: one process at a time owns the accelerator for an output folder.

The owner holds an exclusive OS lock on `<output_dir>/queue.serving` (flock on Linux and macOS,
msvcrt on Windows) for as long as its worker runs jobs. The OS drops the lock when the process
dies, even by `kill -9`, so a stale owner never blocks the queue. A studio or `queue run` holds it
while serving; `generate` from the CLI holds it only while it runs its own job, and otherwise
leaves its job to the owner.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

LOCK_NAME = "queue.serving"


class ServingLock:
    """An exclusive, non-blocking, process-wide lock on one queue folder."""

    def __init__(self, folder: Path | str):
        self.path = Path(folder) / LOCK_NAME
        self._file = None
        self._guard = threading.Lock()

    @property
    def held(self) -> bool:
        return self._file is not None

    def acquire(self) -> bool:
        """Take the lock if no other process holds it; True when this object holds it now."""
        with self._guard:
            if self._file is not None:
                return True
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(self.path, "a+b")
            try:
                _lock(handle)
            except OSError:
                handle.close()
                return False
            handle.seek(0)
            handle.truncate()
            handle.write(str(os.getpid()).encode())
            handle.flush()
            self._file = handle
            return True

    def release(self) -> None:
        with self._guard:
            if self._file is None:
                return
            try:
                _unlock(self._file)
            finally:
                self._file.close()
                self._file = None

    def served_elsewhere(self) -> bool:
        """Another process holds the lock now (this object does not)."""
        if self.held:
            return False
        if not self.acquire():
            return True
        self.release()
        return False

    def __enter__(self) -> "ServingLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


if os.name == "nt":  # pragma: no cover - Windows
    import msvcrt

    def _lock(handle) -> None:
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)

    def _unlock(handle) -> None:
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
else:
    import fcntl

    def _lock(handle) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock(handle) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
