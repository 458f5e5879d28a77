"""The job store: a FIFO queue of generation jobs kept in SQLite, so nothing queued is lost.

Policy
- Every change is written at once, in one short `BEGIN IMMEDIATE` transaction, to a WAL-mode
  database with a busy timeout, so the studio, its worker thread and a CLI in another process
  can all use the same file. One re-entrant lock guards the store's single connection.
- A job keeps the full typed request (`request.to_dict()`), what preparing it found (file facts,
  LoRA hashes: `prepared`, so the worker reads none of it again) and copies of its input files
  in `inputs_dir/<job id>/`, so it can be retried or re-run exactly after the originals are gone.
- Queue order is `position` among queued jobs (unique among them); listings show running jobs
  first, then the queue, then finished jobs newest first, capped.
- A job left `running` by a process that died is put back at the head of the queue once
  (`requeued_after_interrupt`); if it dies again it stays `interrupted` and waits for a manual
  retry, so a job that kills its process cannot take the studio down in a loop.
- The database is never deleted: a damaged file is moved aside, and a file locked by another
  process is left alone for a separate one beside it (queue/database.py). Both set `warning`, and
  the studio still starts.
"""

from __future__ import annotations

import json
import logging
import secrets
import shutil
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

from wan_studio.disk import QUEUE_ROOM, DiskFull, is_disk_full, require_space, space_needed
from wan_studio.errors import RequestError
from wan_studio.queue.database import QueueError, open_database  # noqa: F401  (QueueError: the store's API)
from wan_studio.queue.job import (  # noqa: F401  (the states and the record are part of the store's API)
    CANCELLED,
    DONE,
    FAILED,
    FINAL_STATES,
    INTERRUPTED,
    QUEUED,
    RETRYABLE_STATES,
    RUNNING,
    STATES,
    Job,
)
from wan_studio.queue.runners import Runner
from wan_studio.queue.seats import Seat, Waiting, is_held, place, ranks_of
from wan_studio.requests import FinishingRequest, GenerationRequest
from wan_studio.requests.prepared import prepare_all

log = logging.getLogger(__name__)

HISTORY_LIMIT = 200
REQUEUED_MESSAGE = "Interrupted: the process running it stopped. Put back at the head of the queue (once)."
INTERRUPTED_AGAIN_MESSAGE = ("Interrupted again after being put back once; left out of the queue so it cannot "
                             "crash the studio in a loop. Retry it by hand.")


def _with_message(row: sqlite3.Row, text: str) -> str:
    """The row's messages with one more, as stored (JSON)."""
    return json.dumps([*json.loads(row["messages"] or "[]"), text])


class JobStore:
    """Jobs in SQLite. Safe for several threads (one lock) and several processes (WAL, busy timeout)."""

    def __init__(self, db_path: Path | str, inputs_dir: Path | str, busy_timeout_s: float = 5.0,
                 fallback_on_lock: bool = True, history_limit: int = HISTORY_LIMIT):
        self.requested_path = Path(db_path)
        self.inputs_dir = Path(inputs_dir)
        self.busy_timeout_s = busy_timeout_s
        self.history_limit = history_limit
        self.warning: str | None = None
        self._lock = threading.RLock()
        try:
            self.requested_path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            if is_disk_full(exc, self.folder):
                raise DiskFull(self.folder, QUEUE_ROOM) from None
            raise
        opened = open_database(self.requested_path, busy_timeout_s, fallback_on_lock)
        self._conn, self.db_path, self.warning = opened.conn, opened.path, opened.warning
        self.recover_interrupted()

    @property
    def folder(self) -> Path:
        """The output folder the queue lives in (its disk holds the jobs' copies and results too)."""
        return self.requested_path.parent

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- transactions -------------------------------------------------------------------------
    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self._conn
                    self._conn.execute("COMMIT")
                except BaseException:
                    if self._conn.in_transaction:  # SQLite may have rolled a failed write back itself
                        self._conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:  # nothing was changed: the queue is as it was
                if is_disk_full(exc, self.folder):
                    raise DiskFull(self.folder, QUEUE_ROOM) from None
                raise

    @contextmanager
    def _snapshot(self) -> Iterator[None]:
        """Several reads that see one consistent state of the queue."""
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                yield
            finally:
                self._conn.execute("COMMIT")

    def _read(self, sql: str, params: Iterable = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, tuple(params)).fetchall()

    @staticmethod
    def _row(conn: sqlite3.Connection, job_id: str) -> sqlite3.Row:
        row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise QueueError(f"There is no job {job_id} in the queue.")
        return row

    def _new_id(self, reserved: set[str]) -> str:
        """A short id no job has (the primary key still guards against a race with another process)."""
        while True:
            job_id = secrets.token_hex(3)
            if job_id not in reserved and not self._read("SELECT 1 FROM jobs WHERE id = ?", (job_id,)) \
                    and not (self.inputs_dir / job_id).exists():
                return job_id

    @staticmethod
    def _tail_position(conn: sqlite3.Connection) -> int:
        return conn.execute("SELECT COALESCE(MAX(position), 0) + 1 FROM jobs").fetchone()[0]

    @staticmethod
    def _head_position(conn: sqlite3.Connection) -> int:
        return conn.execute("SELECT COALESCE(MIN(position), 1) - 1 FROM jobs WHERE state = ?", (QUEUED,)).fetchone()[0]

    # -- adding -------------------------------------------------------------------------------
    def add(self, request: GenerationRequest | FinishingRequest, owner: str | None = None) -> Job:
        return self.add_many([request], owner)[0]

    def add_many(self, requests: Iterable[GenerationRequest | FinishingRequest], owner: str | None = None) -> list[Job]:
        """Queue every request or none: each is prepared (checked) first, then input files are copied,
        then the rows inserted in one transaction."""
        requests = prepare_all(requests)
        # the queue database grows once for the batch, not once per job
        require_space(self.folder,
                      sum(space_needed(request) for request in requests) - QUEUE_ROOM * (len(requests) - 1))
        planned: list[tuple[str, GenerationRequest]] = []
        reserved: set[str] = set()
        try:
            for request in requests:
                job_id = self._new_id(reserved)
                reserved.add(job_id)
                planned.append((job_id, self._with_copied_inputs(job_id, request)))  # slow part, outside the lock
            now = time.time()
            with self._write() as conn:
                position = self._tail_position(conn)
                for offset, (job_id, request) in enumerate(planned):
                    conn.execute(
                        "INSERT INTO jobs (id, state, position, mode, request, prepared, owner, created) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (job_id, QUEUED, position + offset, request.mode, json.dumps(request.to_dict()),
                         json.dumps(request.preparation.to_dict()), owner, now),
                    )
        except BaseException:
            for job_id in reserved:
                shutil.rmtree(self.inputs_dir / job_id, ignore_errors=True)
            raise
        return [self._require(job_id) for job_id, _ in planned]

    def _with_copied_inputs(self, job_id: str, request: GenerationRequest) -> GenerationRequest:
        """Copy the request's input files into the job's folder; files already there are kept as they are."""
        files = request.input_files()
        if not files:
            return request
        folder = self.inputs_dir / job_id
        folder.mkdir(parents=True, exist_ok=True)
        mapping: dict[str, list[str]] = {}
        for field_name, paths in files.items():
            for n, source in enumerate(paths):
                source_path = Path(source)
                if source_path.resolve().parent == folder.resolve():
                    mapping.setdefault(field_name, []).append(str(source_path.resolve()))
                    continue
                stem = f"{field_name}-{n + 1}" if len(paths) > 1 else field_name
                target = folder / f"{stem}{source_path.suffix.lower()}"
                k = 1
                while target.exists():
                    k += 1
                    target = folder / f"{stem}.{k}{source_path.suffix.lower()}"
                try:
                    shutil.copyfile(source_path, target)
                except OSError as exc:
                    if is_disk_full(exc, self.folder):
                        raise DiskFull(self.folder, space_needed(request)) from None
                    raise RequestError(field_name, f"Could not copy the input file {source} for the queue: {exc}") \
                        from exc
                mapping.setdefault(field_name, []).append(str(target))
        return request.with_input_files(mapping)

    # -- reading ------------------------------------------------------------------------------
    def get(self, job_id: str) -> Job | None:
        rows = self._read("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return Job._from_row(rows[0]) if rows else None

    def _require(self, job_id: str) -> Job:
        job = self.get(job_id)
        if job is None:
            raise QueueError(f"There is no job {job_id} in the queue.")
        return job

    def list(self, owner: str | None = None, states: Iterable[str] | None = None,
             history_limit: int | None = None) -> list[Job]:
        """Running jobs first, then queued ones in queue order, then finished ones newest first (capped)."""
        wanted = set(states) if states is not None else set(STATES)
        unknown = wanted - set(STATES)
        if unknown:
            raise QueueError(f"Unknown job state(s): {', '.join(sorted(unknown))}; known: {', '.join(STATES)}.")
        where, params = "", []
        if owner is not None:
            where, params = " AND owner = ?", [owner]
        limit = self.history_limit if history_limit is None else history_limit
        jobs: list[Job] = []
        finished = sorted(wanted & FINAL_STATES)
        with self._snapshot():
            if RUNNING in wanted:
                jobs += self._select(f"state = ?{where} ORDER BY started", [RUNNING, *params])
            if QUEUED in wanted:
                jobs += self._select(f"state = ?{where} ORDER BY position, created", [QUEUED, *params])
            if finished:
                marks = ", ".join("?" for _ in finished)
                jobs += self._select(f"state IN ({marks}){where} ORDER BY COALESCE(finished, created) DESC LIMIT ?",
                                     [*finished, *params, limit])
        return jobs

    def _select(self, clause: str, params: list) -> list[Job]:
        return [Job._from_row(row) for row in self._read(f"SELECT * FROM jobs WHERE {clause}", params)]

    def next_queued(self) -> Job | None:
        jobs = self._select("state = ? ORDER BY position, created LIMIT 1", [QUEUED])
        return jobs[0] if jobs else None

    def queue_position(self, job_id: str) -> int | None:
        """1 for the next job to run; None when the job is not waiting in the queue."""
        rows = self._read(
            "SELECT COUNT(*) FROM jobs AS mine JOIN jobs AS ahead ON ahead.state = mine.state "
            "AND ahead.position <= mine.position WHERE mine.id = ? AND mine.state = ?", (job_id, QUEUED))
        return rows[0][0] or None  # the job itself is counted: 1 when it is next

    # -- user actions -------------------------------------------------------------------------
    def cancel(self, job_id: str) -> Job:
        """A queued job will not run."""
        with self._write() as conn:
            row = self._row(conn, job_id)
            if row["state"] == RUNNING:
                raise QueueError(f"Job {job_id} is running; stop it instead of cancelling it.")
            if row["state"] != QUEUED:
                raise QueueError(f"Job {job_id} is {row['state']}, not queued; only a queued job can be cancelled.")
            conn.execute("UPDATE jobs SET state = ?, finished = ?, messages = ? WHERE id = ?",
                         (CANCELLED, time.time(), _with_message(row, "Cancelled before it ran."), job_id))
        return self._require(job_id)

    def request_stop(self, job_id: str) -> Job:
        """Ask whichever worker (in any process) runs this job to stop it; it checks about once a second."""
        with self._write() as conn:
            row = self._row(conn, job_id)
            if row["state"] != RUNNING:
                raise QueueError(f"Job {job_id} is {row['state']}, not running; there is nothing to stop.")
            conn.execute("UPDATE jobs SET stop_requested = 1 WHERE id = ?", (job_id,))
        return self._require(job_id)

    def remove(self, job_id: str) -> None:
        """Forget a job that is not running, and delete its input copies."""
        with self._write() as conn:
            row = self._row(conn, job_id)
            if row["state"] == RUNNING:
                raise QueueError(f"Job {job_id} is running; stop it instead of removing it.")
            conn.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
        shutil.rmtree(self.inputs_dir / job_id, ignore_errors=True)

    def move(self, job_id: str, direction: str) -> Job:
        """Move a queued job one place "up" or "down", or to the "top" of the queue."""
        if direction not in ("up", "down", "top"):
            raise QueueError(f"Unknown direction {direction!r}; use up, down or top.")
        with self._write() as conn:
            row = self._row(conn, job_id)
            if row["state"] != QUEUED:
                raise QueueError(f"Job {job_id} is {row['state']}; only queued jobs can be moved.")
            order = [r["id"] for r in conn.execute(
                "SELECT id FROM jobs WHERE state = ? ORDER BY position, created", (QUEUED,))]
            index = order.index(job_id)
            target = {"up": max(0, index - 1), "down": min(len(order) - 1, index + 1), "top": 0}[direction]
            if target != index:
                order.insert(target, order.pop(index))
                # renumber the queued jobs in their new order; finished jobs keep their positions
                base = conn.execute("SELECT MIN(position) FROM jobs WHERE state = ?", (QUEUED,)).fetchone()[0]
                for offset, queued_id in enumerate(order):
                    conn.execute("UPDATE jobs SET position = ? WHERE id = ?", (base + offset, queued_id))
        return self._require(job_id)

    def edit(self, job_id: str, request: GenerationRequest) -> Job:
        """Replace a queued job's request (already validated: it is a typed request)."""
        if not isinstance(request, GenerationRequest):
            raise TypeError(f"edit takes a typed request (GenerationRequest), got {type(request).__name__}")
        job = self._require(job_id)
        if job.state != QUEUED:
            raise QueueError(f"Job {job_id} is {job.state}; only a queued job can be edited.")
        request = self._with_copied_inputs(job_id, request.prepare())
        with self._write() as conn:
            row = self._row(conn, job_id)
            if row["state"] != QUEUED:
                raise QueueError(f"Job {job_id} is {row['state']}; only a queued job can be edited.")
            conn.execute("UPDATE jobs SET request = ?, prepared = ?, mode = ?, messages = ? WHERE id = ?",
                         (json.dumps(request.to_dict()), json.dumps(request.preparation.to_dict()), request.mode,
                          _with_message(row, "Edited while queued."), job_id))
        self._drop_unused_inputs(job_id, request)
        return self._require(job_id)

    def _drop_unused_inputs(self, job_id: str, request: GenerationRequest) -> None:
        folder = self.inputs_dir / job_id
        if not folder.is_dir():
            return
        used = {str(Path(p).resolve()) for paths in request.input_files().values() for p in paths}
        for path in folder.iterdir():
            if str(path.resolve()) not in used:
                path.unlink(missing_ok=True)

    def retry(self, job_id: str, note: str | None = None) -> Job:
        """Queue a failed, interrupted or cancelled job again, at the tail, with the same request and inputs
        (so a long job goes on after the windows it kept). `note` joins its messages instead of the usual one."""
        with self._write() as conn:
            row = self._row(conn, job_id)
            if row["state"] not in RETRYABLE_STATES:
                raise QueueError(
                    f"Job {job_id} is {row['state']}; only failed, interrupted or cancelled jobs can be retried.")
            ended = row["state"]
            if row["error_type"]:
                ended = f"failed: {row['error_type']}: {row['error_message']}"
            note = note or f"Retry {row['attempts'] + 1} (the previous attempt was {ended})."
            conn.execute(
                "UPDATE jobs SET state = ?, position = ?, attempts = attempts + 1, requeued_after_interrupt = 0, "
                "started = NULL, finished = NULL, result_id = NULL, result_path = NULL, error_type = NULL, "
                "error_message = NULL, traceback = NULL, stop_requested = 0, messages = ? WHERE id = ?",
                (QUEUED, self._tail_position(conn), _with_message(row, note), job_id),
            )
        return self._require(job_id)

    def resume(self, job_id: str) -> Job:
        """Queue a long job stopped after some windows again: the windows it kept are not made again
        (its result's recipe counts them as `resumed_windows`)."""
        job = self._require(job_id)
        if not job.resumable:
            raise QueueError(f"Job {job_id} is {job.state} and kept no finished windows to go on from; only a long "
                             f"job stopped after a window can be resumed. Retry it to run it again from the start.")
        kept, count = job.kept_windows, (job.progress or {}).get("clips")
        made = f"window 1 of {count} is" if kept == 1 else f"windows 1-{kept} of {count} are"
        return self.retry(job_id, note=f"Resumed: {made} kept; it goes on from window {kept + 1}.")

    # -- the worker's updates -----------------------------------------------------------------
    def claim(self, job_id: str | None = None, runner: Runner | None = None, seat: Seat | None = None,
              where: str | None = None) -> Job | None:
        """Atomically take a queued job (the given one, else the head of the queue) and mark it running.
        A pool's worker gives its `seat`: it then takes the first job it may run there (queue/seats.py).
        `where`: the machine a cluster's worker runs the given job on, for the Queue page."""
        runner = runner or Runner.this_process()
        with self._write() as conn:
            devices: tuple[str, ...] = (where,) if where else ()
            if job_id is not None:
                row = self._row(conn, job_id)
                if row["state"] != QUEUED:
                    raise QueueError(f"Job {job_id} is {row['state']}; only a queued job can be started.")
            elif seat is not None:
                row, devices = self._seat_claim(conn, seat)
            else:
                row = conn.execute("SELECT * FROM jobs WHERE state = ? ORDER BY position, created LIMIT 1",
                                   (QUEUED,)).fetchone()
            if row is None:
                return None
            conn.execute(
                "UPDATE jobs SET state = ?, started = ?, stop_requested = 0, progress = NULL, runner_host = ?, "
                "runner_pid = ?, runner_started = ?, devices = ? WHERE id = ?",
                (RUNNING, time.time(), runner.host, runner.pid, runner.started, ",".join(devices) or None, row["id"]),
            )
            job_id = row["id"]
        return self._require(job_id)

    def _seat_claim(self, conn: sqlite3.Connection, seat: Seat) -> tuple[sqlite3.Row | None, tuple[str, ...]]:
        """The first queued job this seat may run and the seats it runs on, as seats.place decides;
        what it decided for the jobs it passed (groups held, splits too big) is written here."""
        busy = {device for (devices,) in conn.execute("SELECT devices FROM jobs WHERE state = ?", (RUNNING,))
                for device in (devices or "").split(",") if device}
        rows = {row["id"]: row for row in conn.execute("SELECT * FROM jobs WHERE state = ? ORDER BY position, created",
                                                       (QUEUED,)).fetchall()}
        queued = (Waiting(job_id, ranks_of(json.loads(row["request"])),
                          tuple(filter(None, (row["devices"] or "").split(",")))) for job_id, row in rows.items())
        placement = place(seat, queued, busy)
        for job_id, message in placement.too_big.items():
            conn.execute("UPDATE jobs SET state = ?, finished = ?, error_type = ?, error_message = ?, messages = ? "
                         "WHERE id = ?", (FAILED, time.time(), "StudioError", message,
                                          _with_message(rows[job_id], message), job_id))
        for job_id, group in placement.groups.items():
            conn.execute("UPDATE jobs SET devices = ? WHERE id = ?", (",".join(group) or None, job_id))
        return (rows[placement.job_id], placement.devices) if placement.job_id is not None else (None, ())

    def seat_is_held(self, seat: Seat) -> bool:
        """The seat waits for a split job queued for it, or runs a share of one (queue/seats.py)."""
        return is_held(seat, self.list(states=[QUEUED, RUNNING], history_limit=0))

    def set_progress(self, job_id: str, status: dict) -> None:
        """Where a running job is (JobStatus.as_dict()), for waiters in other processes."""
        with self._write() as conn:
            conn.execute("UPDATE jobs SET progress = ? WHERE id = ? AND state = ?",
                         (json.dumps(status), job_id, RUNNING))

    def _finish(self, job_id: str, state: str, message: str | None = None, **columns) -> Job:
        with self._write() as conn:
            row = self._row(conn, job_id)
            if row["state"] != RUNNING and not (state == CANCELLED and row["state"] == QUEUED):
                raise QueueError(f"Job {job_id} is {row['state']}, not running; it cannot be marked {state}.")
            columns.update(state=state, finished=time.time(), stop_requested=0)
            if message:
                columns["messages"] = _with_message(row, message)
            names = ", ".join(f"{name} = ?" for name in columns)
            conn.execute(f"UPDATE jobs SET {names} WHERE id = ?", (*columns.values(), job_id))
        return self._require(job_id)

    def mark_done(self, job_id: str, result) -> Job:
        """Done; what the run reported (a memory step-down, a fallback) joins the job's messages."""
        notes = list((getattr(result, "recipe", None) or {}).get("messages") or [])
        with self._write() as conn:
            row = self._row(conn, job_id)
            messages = json.dumps([*json.loads(row["messages"] or "[]"), *notes])
        return self._finish(job_id, DONE, result_id=result.id, result_path=str(result.media), messages=messages)

    def mark_failed(self, job_id: str, exc: BaseException, traceback_text: str) -> Job:
        return self._finish(job_id, FAILED, error_type=type(exc).__name__, error_message=str(exc),
                            traceback=traceback_text)

    def mark_cancelled(self, job_id: str, message: str = "Stopped by the user; nothing was saved.",
                       kept_windows: int = 0, windows: int | None = None) -> Job:
        """Stopped; a long job stopped after some windows gives how many of its `windows` it kept
        (`Job.kept_windows`: the job can be resumed)."""
        if not kept_windows:
            return self._finish(job_id, CANCELLED, message)
        return self._finish(job_id, CANCELLED, message,
                            progress=json.dumps({"kept_windows": kept_windows, "clips": windows}))

    def mark_interrupted(self, job_id: str, message: str) -> Job:
        return self._finish(job_id, INTERRUPTED, message)

    def requeue_at_head(self, job_id: str, message: str) -> Job:
        """A running job put back first in line (the studio shut down mid-run); it is not counted as failed."""
        with self._write() as conn:
            row = self._row(conn, job_id)
            if row["state"] != RUNNING:
                raise QueueError(f"Job {job_id} is {row['state']}, not running; it cannot be put back.")
            conn.execute("UPDATE jobs SET state = ?, position = ?, started = NULL, stop_requested = 0, messages = ? "
                         "WHERE id = ?", (QUEUED, self._head_position(conn), _with_message(row, message),
                                          job_id))
        return self._require(job_id)

    def stop_requested(self, job_id: str) -> bool:
        rows = self._read("SELECT stop_requested FROM jobs WHERE id = ?", (job_id,))
        return bool(rows and rows[0]["stop_requested"])

    # -- restart recovery ---------------------------------------------------------------------
    def recover_interrupted(self) -> list[Job]:
        """Jobs left running by a process that is gone: back to the head of the queue once, else interrupted."""
        def dead_runners(rows: list[sqlite3.Row]) -> list[sqlite3.Row]:
            return [row for row in rows if row["runner_pid"] is None
                    or not Runner(row["runner_host"], row["runner_pid"], row["runner_started"]).is_alive()]

        running = "SELECT * FROM jobs WHERE state = ? ORDER BY position"
        if not dead_runners(self._read(running, (RUNNING,))):
            return []  # the usual case, checked without taking the write lock
        recovered = []
        with self._write() as conn:
            dead = dead_runners(conn.execute(running, (RUNNING,)).fetchall())
            head = self._head_position(conn)
            # keep their relative order at the head: the earliest claimed goes first
            for row in sorted(dead, key=lambda r: r["started"] or 0, reverse=True):
                if row["requeued_after_interrupt"]:
                    conn.execute("UPDATE jobs SET state = ?, finished = ?, messages = ? WHERE id = ?",
                                 (INTERRUPTED, time.time(), _with_message(row, INTERRUPTED_AGAIN_MESSAGE),
                                  row["id"]))
                else:
                    conn.execute(
                        "UPDATE jobs SET state = ?, position = ?, started = NULL, requeued_after_interrupt = 1, "
                        "attempts = attempts + 1, stop_requested = 0, messages = ? WHERE id = ?",
                        (QUEUED, head, _with_message(row, REQUEUED_MESSAGE), row["id"]),
                    )
                    head -= 1
                recovered.append(row["id"])
        jobs = [self._require(job_id) for job_id in recovered]
        for job in jobs:
            log.warning("job %s was interrupted (its process is gone); now %s", job.id, job.state)
        return jobs
