"""The queue worker: the one place that runs jobs, so one job at a time owns the accelerator.

Policy
- `start()` runs the loop in a daemon thread; `run_until_empty()` runs the same loop in the
  calling thread (headless batches) and `run_job_now(id)` runs one job in the calling thread
  (ZeroGPU, where GPU work must happen inside the request that holds the GPU). Whichever runs,
  the accelerator is taken through one slot, so two jobs never run together in this process.
- The loop sleeps on a condition variable: `notify()` (or `add()`) wakes it at once, and it looks
  at the database about once a second anyway, for jobs another process queued, stop requests
  from another process, and jobs a dead process left running.
- Memory commands (`request_unload`, `request_free_memory`) are queued and run between jobs.
- Stopping a job sets its cancel event; the engine checks it after every denoising step and
  writes nothing; a long job stopped after some windows keeps them and is marked resumable.
  Stopping the worker (`stop()`) puts a running job back at the head of the queue instead of
  counting it as cancelled.
- A job that raises is recorded as failed (type, message, traceback) and the next one runs.
- A full disk fails no job: one the output folder has no room for stays queued (DiskFull says so),
  one that fills the disk goes back to the head of the queue, and the loop waits for the room.
- One condition (and its lock) guards all of the worker's in-memory state.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable

from wan_studio.disk import QUEUE_ROOM, DiskFull, free_space, is_disk_full, space_needed
from wan_studio.errors import Cancelled, Paused, StudioError, WindowsKept
from wan_studio.queue.seats import Seat
from wan_studio.queue.serving import ServingLock
from wan_studio.queue.status import JobStatus
from wan_studio.queue.store import QUEUED, RUNNING, Job, JobStore, QueueError
from wan_studio.requests import GenerationRequest

log = logging.getLogger(__name__)

SHUTDOWN_MESSAGE = "The studio shut down while this job ran; it was put back at the head of the queue."
MEMORY_ACTIONS = {"unload": "unload_all", "free": "release"}  # command -> swap manager method


@dataclass(frozen=True)
class JobEvent:
    """What listeners hear: kind is started | progress | finished; progress is the engine's event."""

    kind: str
    progress: JobStatus | None = None  # for kind == "progress": the engine's report, stamped with the job


Listener = Callable[[Job, JobEvent], None]


@dataclass
class MemoryCommand:
    kind: str  # unload | free
    done: threading.Event = field(default_factory=threading.Event)
    error: str | None = None

    def wait(self, timeout: float | None = None) -> bool:
        return self.done.wait(timeout)


@dataclass
class _RunningJob:
    job_id: str
    cancel: threading.Event
    started: float
    status: JobStatus
    thread: threading.Thread = field(default_factory=threading.current_thread)
    shutting_down: bool = False
    last_stop_check: float = 0.0
    saved: JobStatus | None = None  # the progress last written to the store
    saved_at: float = 0.0
    free_at_start: int = 0  # bytes free in the output folder when it started


class QueueWorker:
    def __init__(self, store: JobStore, engine, library=None, poll_interval_s: float = 1.0,
                 serving: ServingLock | None = None, seat: Seat | None = None):
        self.store = store
        self.seat = seat  # a pool's worker: the device it runs jobs on, among the pool's
        self.engine = engine
        self.library = library if library is not None else getattr(engine, "library", None)
        self.poll_interval_s = poll_interval_s
        # with a lock, the thread runs jobs only while it holds it: one process serves a queue folder
        self.serving = serving
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._wake = False
        self._accelerator_busy = False
        self._running: _RunningJob | None = None
        self._commands: deque[MemoryCommand] = deque()
        self._listeners: list[Listener] = []
        self._finished_count = 0
        self._changes = 0  # counts every start, step and finish: waiters wake on a change, not a timer
        self._swept = False
        self._disk_full: DiskFull | None = None  # the loop waits until the disk has this much room
        self.memory_log: list[str] = []  # the memory commands run, in order (for the UI and tests)

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        """Start the worker thread (a no-op when it already runs)."""
        with self._cond:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stopping = False
        self._sweep_partials_once()
        with self._cond:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(target=self._serve, kwargs={"until_empty": False},
                                            name="wan-studio-queue-worker", daemon=True)
            self._thread.start()

    def stop(self, timeout: float | None = 10.0) -> bool:
        """Stop the thread; a running job ends within one step and goes back to the head of the queue.

        Returns True when the thread has ended.
        """
        with self._cond:
            self._stopping = True
            thread = self._thread
            if self._running is not None and thread is not None and self._running.thread is thread:
                self._running.shutting_down = True
                self._running.cancel.set()
            self._cond.notify_all()
        if thread is None or thread is threading.current_thread():
            return True
        thread.join(timeout)
        return not thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def run_until_empty(self) -> None:
        """Run queued jobs in this thread until none is left (memory commands included)."""
        self._sweep_partials_once()
        self._serve(until_empty=True)

    def run_job_now(self, job_id: str) -> Job:
        """Run this queued job in the calling thread and return it finished."""
        self._run_memory_commands()
        return self._run_next(job_id)

    # -- adding and waking --------------------------------------------------------------------
    def notify(self) -> None:
        """Wake the worker: a job or a command is waiting."""
        with self._cond:
            self._wake = True
            self._cond.notify_all()

    def add(self, request: GenerationRequest, owner: str | None = None) -> Job:
        job = self.store.add(request, owner)
        self.notify()
        return job

    def add_many(self, requests: list[GenerationRequest], owner: str | None = None) -> list[Job]:
        jobs = self.store.add_many(requests, owner)
        self.notify()
        return jobs

    # -- stopping jobs ------------------------------------------------------------------------
    def stop_job(self, job_id: str) -> Job:
        """Stop a job wherever it is: running here, queued, or running in another process."""
        with self._cond:
            if self._running is not None and self._running.job_id == job_id:
                self._running.cancel.set()
                return self.store.get(job_id)
        job = self.store.get(job_id)
        if job is None:
            raise QueueError(f"There is no job {job_id} in the queue.")
        if job.state == QUEUED:
            try:
                return self.store.cancel(job_id)
            except QueueError:
                job = self.store.get(job_id)  # it started meanwhile
        if job.state == RUNNING:
            return self.store.request_stop(job_id)
        raise QueueError(f"Job {job_id} is {job.state}; there is nothing to stop.")

    # -- memory commands ----------------------------------------------------------------------
    def request_unload(self) -> MemoryCommand:
        """Unload every model (shared components too) between jobs."""
        return self._queue_command("unload")

    def request_free_memory(self) -> MemoryCommand:
        """Release the active pipeline between jobs; shared components stay cached."""
        return self._queue_command("free")

    @contextmanager
    def accelerator_between_jobs(self):
        """Hold the accelerator for work that is not a job (the prompt enhancer's local model): waits
        for the running job or memory command to end, and keeps the next one waiting until done."""
        with self._cond:
            self._take_accelerator()
        try:
            yield
        finally:
            with self._cond:
                self._give_back_accelerator()

    def _queue_command(self, kind: str) -> MemoryCommand:
        command = MemoryCommand(kind)
        with self._cond:
            self._commands.append(command)
            self._wake = True
            self._cond.notify_all()
        return command

    def _run_memory_commands(self) -> None:
        while True:
            with self._cond:
                if not self._commands:
                    return
                self._take_accelerator()
                command = self._commands.popleft()
            try:
                getattr(self.engine.swap, MEMORY_ACTIONS[command.kind])()
                self.memory_log.append(command.kind)
            except Exception as exc:  # reported to whoever waits on the command; the worker goes on
                command.error = f"{type(exc).__name__}: {exc}"
                log.exception("memory command %s failed", command.kind)
            finally:
                with self._cond:
                    self._give_back_accelerator()
                command.done.set()

    # -- listening ----------------------------------------------------------------------------
    def add_listener(self, listener: Listener) -> Listener:
        """Call `listener(job, event)` from the worker thread on every start, progress and finish."""
        with self._cond:
            self._listeners.append(listener)
        return listener

    def _emit(self, job: Job, event: JobEvent) -> None:
        with self._cond:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(job, event)
            except Exception:  # a broken listener must not stop the queue
                log.exception("queue listener %r failed on %s of job %s", listener, event.kind, job.id)

    def status(self, job_id: str) -> JobStatus | None:
        """The latest status of a job running in this process (None when it does not run here)."""
        with self._cond:
            if self._running is None or self._running.job_id != job_id:
                return None
            return self._running.status

    @property
    def changes(self) -> int:
        with self._cond:
            return self._changes

    def wait_for_change(self, seen: int, timeout: float) -> int:
        """Block until something changed since `changes` was `seen` (or `timeout`); the new count."""
        with self._cond:
            if self._changes == seen:
                self._cond.wait(timeout)
            return self._changes

    def _changed(self) -> None:
        """Call holding the condition."""
        self._changes += 1
        self._cond.notify_all()

    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        """Block until the job is done, failed, cancelled or interrupted; TimeoutError after `timeout`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._cond:
                seen = self._finished_count
            job = self.store.get(job_id)
            if job is None:
                raise QueueError(f"There is no job {job_id} in the queue.")
            if job.is_final:
                return job
            pause = self.poll_interval_s
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"Job {job_id} is still {job.state} after {timeout:g}s.")
                pause = min(pause, remaining)
            with self._cond:
                if self._finished_count == seen:
                    self._cond.wait(pause)

    # -- the loop -----------------------------------------------------------------------------
    def _serve(self, until_empty: bool) -> None:
        try:
            self._serve_loop(until_empty)
        finally:
            if self.serving is not None:
                self.serving.release()

    def _serve_loop(self, until_empty: bool) -> None:
        last_check = 0.0
        while True:
            with self._cond:
                if self._stopping and not until_empty:
                    return
                self._wake = False
            try:
                self._run_memory_commands()
                if time.monotonic() - last_check >= self.poll_interval_s:
                    last_check = time.monotonic()
                    self.store.recover_interrupted()  # a CLI run killed while we were up
                if self._may_serve() and self._run_next() is not None:
                    continue
                self._free_for_a_split_job()
            except DiskFull as exc:  # the job stays queued; the loop waits for the room
                if until_empty:
                    raise
                if self._disk_full is None or str(self._disk_full) != str(exc):
                    log.warning("%s", exc)
                self._disk_full = exc
            except Exception:  # the database or a listener broke; keep serving, say so in the log
                log.exception("queue worker error; carrying on")
                if until_empty:
                    raise
            if until_empty:
                self._run_memory_commands()
                return
            with self._cond:
                if not (self._stopping or self._wake or self._commands):
                    self._cond.wait(self.poll_interval_s)

    def _free_for_a_split_job(self) -> None:
        """A pool worker whose GPU is held for a job split over several GPUs (or runs a share of one,
        in the ranks another worker started) lets go of its own models, so the ranks have the GPU."""
        swap = getattr(self.engine, "swap", None)
        if self.seat is None or swap is None or getattr(swap, "active_pipeline", None) is None:
            return
        if self.store.seat_is_held(self.seat):
            with self.accelerator_between_jobs():
                swap.unload_all()
                self.memory_log.append("unload: a split job holds this GPU")

    def _may_serve(self) -> bool:
        """True when this worker may run jobs: it has no serving lock, or it holds it (taken here), and the
        disk that filled has the room asked for again."""
        if self._disk_full is not None:
            if free_space(self._disk_full.folder) < self._disk_full.needed:
                return False
            self._disk_full = None
        return self.serving is None or self.serving.acquire()

    def _take_accelerator(self) -> None:
        """Wait (holding the condition) until no job or command uses the accelerator, then take it."""
        while self._accelerator_busy:
            self._cond.wait()
        self._accelerator_busy = True

    def _give_back_accelerator(self) -> None:
        self._accelerator_busy = False
        self._running = None
        self._cond.notify_all()

    def _run_next(self, job_id: str | None = None) -> Job | None:
        """Claim a job (this one, else the head of the queue) and run it; None when nothing is queued."""
        with self._cond:
            self._take_accelerator()
        try:
            free = self._room_for_next(job_id)
            job = self.store.claim(job_id, seat=self.seat)
            if job is None:
                return None
            running = _RunningJob(job.id, threading.Event(), time.monotonic(), JobStatus("loading", job_id=job.id),
                                  free_at_start=free)
            with self._cond:
                self._running = running
                self._changed()
                if self._stopping and self._thread is threading.current_thread():
                    running.shutting_down = True
                    running.cancel.set()
            return self._execute(job, running)
        finally:
            with self._cond:
                self._give_back_accelerator()

    def _room_for_next(self, job_id: str | None) -> int:
        """The bytes free in the output folder; DiskFull, the job left queued, when the next job needs more."""
        folder = self.store.folder
        free = free_space(folder)
        job = self.store.get(job_id) if job_id is not None else self.store.next_queued()
        if job is None or job.state != QUEUED:
            return free
        try:
            needed = space_needed(job.typed_request(), inputs_copied=True)
        except StudioError:  # a record that does not rebuild fails when it runs, with its own message
            needed = QUEUE_ROOM
        if free < needed:
            raise DiskFull(folder, needed, free, job.id)
        return free

    def _put_back_for_room(self, job: Job, running: _RunningJob) -> DiskFull:
        """The disk filled while the job ran (nothing of it was kept): first in line again, and the room
        to wait for is more than it had."""
        try:
            needed = max(space_needed(job.typed_request(), inputs_copied=True), running.free_at_start + QUEUE_ROOM)
        except StudioError:
            needed = running.free_at_start + QUEUE_ROOM
        full = DiskFull(self.store.folder, needed, job_id=job.id)
        try:
            self.store.requeue_at_head(job.id, f"The disk filled while it ran; nothing was saved. {full}")
        except DiskFull:  # not even the queue can be written: a later start puts it back (recover_interrupted)
            pass
        return full

    def _execute(self, job: Job, running: _RunningJob) -> Job:
        self._emit(job, JobEvent("started"))

        def on_progress(event: JobStatus) -> None:
            # the latest preview stays with the status until a newer one comes (previews come every few steps)
            status = event.replace(job_id=job.id, elapsed_s=round(time.monotonic() - running.started, 3),
                                   preview=event.preview if event.preview is not None else running.status.preview,
                                   # the engine's "done" is the saved result; the job is done once the store says so
                                   state="saving" if event.is_final else event.state)
            with self._cond:
                running.status = status
                self._changed()
            self._save_progress(running, status)
            self._check_stop_request(running)
            self._emit(job, JobEvent("progress", status))

        try:
            if self.store.stop_requested(job.id):
                raise Cancelled("Stopped before it started; nothing was saved.")
            request = job.typed_request()  # prepared from what the job keeps: no input file is read
            # a split job in a pool runs its ranks on its group of the pool's GPUs
            self.engine.parallel_devices = job.devices if len(job.devices) > 1 else None
            result = self.engine.run(request, on_progress=on_progress, cancel=running.cancel)
        except Paused as exc:  # its window budget is spent: back first in line, its windows kept
            final = self.store.requeue_at_head(job.id, str(exc))
        except Cancelled as exc:
            if running.shutting_down:
                final = self.store.requeue_at_head(job.id, SHUTDOWN_MESSAGE)
            elif isinstance(exc, WindowsKept):  # a long job's finished windows stay: it can be resumed
                final = self.store.mark_cancelled(job.id, str(exc), kept_windows=exc.kept, windows=exc.count)
            else:
                final = self.store.mark_cancelled(job.id)
        except Exception as exc:  # recorded structurally; the queue goes on with the next job
            if is_disk_full(exc, self.store.folder):
                raise self._put_back_for_room(job, running) from None
            log.warning("job %s failed: %s: %s", job.id, type(exc).__name__, exc)
            final = self.store.mark_failed(job.id, exc, traceback.format_exc())
        except BaseException as exc:  # Ctrl+C or interpreter exit: record it, then let it through
            self.store.mark_interrupted(job.id, f"Interrupted by {type(exc).__name__}; retry it to run it again.")
            raise
        else:
            final = self.store.mark_done(job.id, result)
        with self._cond:
            self._finished_count += 1
            self._changed()
        self._emit(final, JobEvent("finished"))
        return final

    def _save_progress(self, running: _RunningJob, status: JobStatus) -> None:
        """For a CLI waiting in another process: each new state at once, steps about once a poll interval."""
        now = time.monotonic()
        if running.saved is not None and status.state == running.saved.state and \
                now - running.saved_at < self.poll_interval_s:
            return
        running.saved, running.saved_at = status, now
        self.store.set_progress(running.job_id, status.as_dict())

    def _check_stop_request(self, running: _RunningJob) -> None:
        """A stop asked for from another process (the CLI), read at most once per poll interval."""
        now = time.monotonic()
        if now - running.last_stop_check < self.poll_interval_s:
            return
        running.last_stop_check = now
        if self.store.stop_requested(running.job_id):
            running.cancel.set()

    def _sweep_partials_once(self) -> None:
        """Remove half-written files of a crash, unless a job runs in another process right now."""
        if self._swept or self.library is None:
            return
        self._swept = True
        if self.store.list(states=[RUNNING]):
            log.info("not sweeping partial files: a job is running in another process")
            return
        removed = self.library.sweep_partials()
        if removed:
            log.info("removed %d half-written file(s) left by an interrupted run", removed)
