"""Who serves a queue: one process at a time owns the accelerator for an output folder.

The owner holds an exclusive OS lock (filelock: flock on Linux and macOS, msvcrt on Windows) on
`<output_dir>/queue.serving`, with its process id written in, for as long as its worker runs jobs.
The OS drops the lock when the process dies, even by `kill -9`, so a stale owner never blocks the
queue. A studio or `queue run` holds it while serving; `generate` from the CLI holds it only while
it runs its own job, and otherwise leaves its job to the owner.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from filelock import FileLock, Timeout

LOCK_NAME = "queue.serving"


def _write_pid(descriptor: int) -> None:
    """Who holds it, for a person looking at the folder."""
    os.ftruncate(descriptor, 0)
    os.lseek(descriptor, 0, os.SEEK_SET)
    os.write(descriptor, str(os.getpid()).encode())


class ServingLock:
    """An exclusive, non-blocking, process-wide lock on one queue folder.

    Not reentrant, unlike a bare FileLock: `acquire` on a held lock is a no-op, and one `release`
    frees it, from whichever thread (the worker takes it; `Studio.stop` may give it back).
    """

    def __init__(self, folder: Path | str):
        self.path = Path(folder) / LOCK_NAME
        self._lock = FileLock(self.path, thread_local=False, blocking=False, on_acquired=_write_pid)
        self._guard = threading.Lock()

    @property
    def held(self) -> bool:
        return self._lock.is_locked

    def acquire(self) -> bool:
        """Take the lock if no other process holds it; True when this object holds it now."""
        with self._guard:
            if self._lock.is_locked:
                return True
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                self._lock.acquire()
            except Timeout:
                return False
            return True

    def release(self) -> None:
        with self._guard:
            self._lock.release(force=True)

    def __enter__(self) -> "ServingLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()
