"""Opening the queue's SQLite file so that nothing in it is ever lost (the job store's first step).

- WAL mode with a busy timeout, so the studio, its worker and a CLI in another process share it;
  SQLite's at-once "locked" (it will not wait while holding a read lock: two processes switching a
  new file to WAL together) is waited out too, up to the same timeout.
- The schema is made or brought up to date (a version-1 queue gains the columns it lacks).
- A damaged file is moved aside as `<name>.corrupt-<time>`, never deleted, and a new one started;
  a file locked by another process is left alone for a separate `queue-<pid>.db` beside it (or,
  without the fallback, QueueError). Either says so in the returned warning.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from wan_studio.disk import QUEUE_ROOM, DiskFull, is_disk_full
from wan_studio.errors import StudioError

log = logging.getLogger(__name__)

SCHEMA_VERSION = 3  # 2: the prepared and progress columns; 3: devices
ADDED_COLUMNS = ("prepared", "progress", "devices")  # an older queue gains them on opening

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    position INTEGER NOT NULL,
    mode TEXT NOT NULL,
    request TEXT NOT NULL,
    owner TEXT,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    result_id TEXT,
    result_path TEXT,
    error_type TEXT,
    error_message TEXT,
    traceback TEXT,
    messages TEXT NOT NULL DEFAULT '[]',
    attempts INTEGER NOT NULL DEFAULT 1,
    requeued_after_interrupt INTEGER NOT NULL DEFAULT 0,
    stop_requested INTEGER NOT NULL DEFAULT 0,
    runner_host TEXT,
    runner_pid INTEGER,
    runner_started REAL,
    prepared TEXT,
    progress TEXT,
    devices TEXT
);
CREATE INDEX IF NOT EXISTS jobs_state_position ON jobs (state, position);
"""


class QueueError(StudioError):
    """A queue action that cannot be done in the job's present state (or on a missing job)."""


def _error_is(exc: sqlite3.Error, codes: tuple[int, ...], words: tuple[str, ...]) -> bool:
    """The error's primary SQLite code is one of `codes` (by its words, on Pythons without codes)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in codes
    return any(word in str(exc).lower() for word in words)


def _is_lock_error(exc: sqlite3.Error) -> bool:
    return _error_is(exc, (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED), ("locked", "busy"))


def _is_damage_error(exc: sqlite3.Error) -> bool:
    """Not a database, or a damaged one (not: a folder we cannot write, a full disk...)."""
    return _error_is(exc, (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB), ("not a database", "malformed"))


SQLITE_HEADER = b"SQLite format 3\x00"


def _check_header(path: Path) -> None:
    try:
        with path.open("rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except FileNotFoundError:
        return
    if header and header != SQLITE_HEADER:
        raise _Corrupt("it is not an SQLite database")


class _Locked(Exception):
    pass


class _Corrupt(Exception):
    pass


@dataclass
class OpenedDatabase:
    conn: sqlite3.Connection
    path: Path  # the file in use: the one asked for, or the fallback beside it
    warning: str | None = None


class _Opener:
    def __init__(self, requested: Path, busy_timeout_s: float):
        self.requested_path, self.busy_timeout_s = requested, busy_timeout_s
        self.warning: str | None = None
        self.db_path = requested
    def _open_or_recover(self, fallback_on_lock: bool) -> sqlite3.Connection:
        try:
            return self._open_waiting(self.requested_path)
        except _Corrupt as exc:
            kept = self._move_aside(self.requested_path)
            self.warning = (f"The job queue database {self.requested_path} was damaged ({exc}); it was kept as "
                            f"{kept} and a new, empty queue was started.")
            log.warning(self.warning)
            return self._open(self.requested_path)
        except _Locked:
            if not fallback_on_lock:
                raise QueueError(
                    f"The job queue {self.requested_path} is locked by another process (waited "
                    f"{self.busy_timeout_s:g}s). Is another Wan Studio using this output folder? Try again later."
                ) from None
            fallback = self.requested_path.with_name(f"{self.requested_path.stem}-{os.getpid()}.db")
            self.warning = (f"The job queue {self.requested_path} is locked by another process — is another Wan "
                            f"Studio using this output folder? This session uses {fallback} instead; jobs queued "
                            f"here are not seen by the other one.")
            log.warning(self.warning)
            self.db_path = fallback
            return self._open(fallback)

    def _open_waiting(self, path: Path) -> sqlite3.Connection:
        """`_open`, tried again until the busy timeout is spent. SQLite answers "locked" at once, without
        waiting, when this connection would have to wait while holding a read lock (two processes switching
        a new file to WAL together, or one writing to it meanwhile): waiting there could deadlock."""
        deadline = time.monotonic() + self.busy_timeout_s
        while True:
            try:
                return self._open(path)
            except _Locked:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.05)

    def _open(self, path: Path) -> sqlite3.Connection:
        _check_header(path)  # before SQLite opens it, so it cannot touch a stranger's -wal beside it
        conn = None
        try:
            conn = sqlite3.connect(path, timeout=self.busy_timeout_s, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
            check = conn.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise _Corrupt(f"integrity check: {check}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("BEGIN IMMEDIATE")  # a write lock now, so a locked file is found at start
            try:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                columns = {row[1] for row in conn.execute("PRAGMA table_info(jobs)")}
                for column in ADDED_COLUMNS:  # an older queue's jobs are prepared when they run
                    if column not in columns:
                        conn.execute(f"ALTER TABLE jobs ADD COLUMN {column} TEXT")
                if version < SCHEMA_VERSION:
                    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return conn
        except sqlite3.Error as exc:
            if conn is not None:
                conn.close()
            if _is_lock_error(exc):
                raise _Locked(str(exc)) from exc
            if _is_damage_error(exc):
                raise _Corrupt(str(exc)) from exc
            if is_disk_full(exc, path.parent):  # SQLite could not grow the file, its log or its index
                raise DiskFull(path.parent, QUEUE_ROOM) from None
            raise
        except _Corrupt:
            conn.close()
            raise

    @staticmethod
    def _move_aside(path: Path) -> Path:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        kept = path.with_name(f"{path.name}.corrupt-{stamp}")
        n = 1
        while kept.exists():
            n += 1
            kept = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
        os.replace(path, kept)
        for suffix in ("-wal", "-shm"):
            side = path.with_name(path.name + suffix)
            if side.exists():
                os.replace(side, kept.with_name(kept.name + suffix))
        return kept


def open_database(path: Path, busy_timeout_s: float, fallback_on_lock: bool) -> OpenedDatabase:
    """The queue's database at `path`, opened (or recovered) as the module docstring says."""
    opener = _Opener(Path(path), busy_timeout_s)
    conn = opener._open_or_recover(fallback_on_lock)
    return OpenedDatabase(conn, opener.db_path, opener.warning)
