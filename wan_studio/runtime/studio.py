"""The studio runtime of one process: the engine, the persistent queue, its worker and the stats
sampler, shared by the page, the Gradio API and anything else that submits work.

Every generation goes through the queue: `submit(request)` records it (with copies of its input
files), the worker runs jobs one at a time, and `wait_for_result(job)` blocks the caller until its
job is finished, reporting queue position and progress on the way. On a Hugging Face ZeroGPU
Space the GPU work must happen inside the request that holds the GPU, so there the caller runs its
own job through `gpu_call` instead of waiting for the worker thread; the queue still records it.

Nothing starts on construction; `start()` opens the worker and the sampler.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from typing import Callable

from wan_studio.backend import import_ml, is_zerogpu
from wan_studio.errors import Cancelled, StudioError
from wan_studio.queue.serving import ServingLock
from wan_studio.queue.status import JobStatus, watch
from wan_studio.queue.store import CANCELLED, DONE, QUEUED, Job, JobStore
from wan_studio.queue.worker import QueueWorker
from wan_studio.requests import FinishingRequest, GenerationRequest, mode_info
from wan_studio.runtime.engine import Engine
from wan_studio.runtime.library import Result
from wan_studio.runtime.stats import get_sampler
from wan_studio.settings import Settings

log = logging.getLogger(__name__)


def compiles_at_start(record) -> bool:
    """ZeroGPU: whether a start can compile the checkpoint's blocks (its first mode runs from text alone,
    so a start's run reaches the first block: ModeInfo.compiles_at_start)."""
    return mode_info(record.modes[0]).compiles_at_start


class JobFailed(StudioError):
    """The job ran and failed; the message is the job's error message."""


class Studio:
    def __init__(self, settings: Settings, engine: Engine | None = None, gpu_call: Callable | None = None):
        self.settings = settings
        self.engine = engine or Engine(settings)
        db_dir = settings.output_dir
        db_dir.mkdir(parents=True, exist_ok=True)
        self.store = JobStore(db_dir / "queue.db", db_dir / ".queue" / "inputs")
        self.worker = QueueWorker(self.store, self.engine, self.engine.library, serving=ServingLock(db_dir))
        self.sampler = get_sampler()
        from wan_studio.models.downloads import Downloads

        self.downloads = Downloads()  # model downloads started from the Settings page
        # ZeroGPU: run the job in the caller, inside the GPU reservation; elsewhere the worker thread runs it
        self.gpu_call = gpu_call if gpu_call is not None else (
            zerogpu_runner(self.worker, self.engine) if is_zerogpu() else None)
        # several GPUs (--gpus): a worker process per GPU runs the jobs instead of the worker thread;
        # a Ray cluster (--ray): its workers do
        self.pool = _pool(settings, self.store) if self.gpu_call is None and not settings.ray_address else None
        self.cluster = None
        self._preload_warning: str | None = None

    @property
    def warning(self) -> str | None:
        """A problem the user should know about at start (a damaged or locked queue database)."""
        return self.store.warning or self._preload_warning

    def start(self, stats_interval_s: float = 1.0) -> None:
        self.engine.library.empty_trash()  # results deleted in the gallery over a day ago
        if self.pool is not None or self.settings.ray_address:
            if not self.worker.serving.acquire():
                raise StudioError("Another process serves this output folder's queue; stop it before starting "
                                  "workers on several GPUs or a cluster.")
        if self.settings.ray_address:
            from wan_studio.runtime.cluster import ClusterDispatcher, connect

            try:
                connect(self.settings.ray_address)
                self.cluster = ClusterDispatcher(self.store, self.engine.library)
                self.cluster.start()
            except BaseException:
                self.worker.serving.release()  # nobody serves the queue: a CLI may run its own jobs
                raise
        elif self.pool is not None:
            self.pool.start()
        elif self.gpu_call is None:
            self.worker.start()
        elif is_zerogpu():
            try:
                self.preload()
            except StudioError as exc:  # e.g. weights not downloadable now: the first job loads them instead
                self._preload_warning = f"Could not load weights at start: {exc}"
        self.sampler.start(stats_interval_s)
        # load torch and diffusers in the background so the first job starts sooner
        threading.Thread(target=import_ml, name="wan-studio-warm-up", daemon=True).start()

    def stop(self) -> None:
        self.downloads.stop_all()
        if self.cluster is not None:
            self.cluster.stop()
        if self.pool is not None:
            self.pool.stop()
        if self.pool is not None or self.cluster is not None:
            self.worker.serving.release()
        self.worker.stop()

    def unload_models(self, timeout: float = 60.0) -> str:
        """Free the memory models hold, wherever the studio's jobs run; what happened, in a line."""
        if self.pool is not None:
            restarted, busy = self.pool.unload()
            return _unloaded("worker", restarted, busy)
        if self.cluster is not None:
            replaced, busy = self.cluster.unload()
            return _unloaded("cluster worker", replaced, busy)
        done = self.worker.request_unload().wait(timeout=timeout)
        return "Models unloaded; memory freed." if done else "Unload requested: it runs when the current job ends."

    def preload(self) -> list[str]:
        """ZeroGPU: load weights in the main process at start, where `spaces` only marks them for the GPU
        (CUDA must never be initialised here); the GPU reservation then starts with them in place."""
        from wan_studio import catalog
        from wan_studio.catalog.defaults import default_model_id
        from wan_studio.memory.choose import choose
        from wan_studio.memory.estimate import shape_for

        loaded = []
        machine = self.engine.machine
        for model_id in self.settings.zerogpu_preload or (default_model_id("t2v", self.settings),):
            record = catalog.get(model_id)
            shape = shape_for(record)
            choice = choose(record, shape, machine)
            if machine.compiles:
                if choice.plan.compile == "aoti":  # the catalog's repo first; compiling only if it fails
                    self._fetch_blocks(record, choice)
                    choice = choose(record, shape, machine)
                if choice.plan.compile == "none" and compiles_at_start(record):
                    self._compile_blocks(record, shape, choice)
                    choice = choose(record, shape, machine)  # with the compiled blocks, if compiling worked
            self.engine.swap.activate(record, record.modes[0], choice.plan)
            loaded.append(record.id)
        return loaded

    def _warn_at_start(self, message: str) -> None:
        self._preload_warning = f"{self._preload_warning} {message}" if self._preload_warning else message

    def _fetch_blocks(self, record, choice) -> None:
        """ZeroGPU: the compiled blocks of the Hub repo the catalog names for the plan's weights, loaded on
        the weights at start (memory/aoti.py); if they could not be fetched, this process's plans stop
        counting on them (memory/plans.py `add_unfetched_blocks`; the reason in the start warning)."""
        from wan_studio.memory import aoti
        from wan_studio.memory.apply import transformers_of
        from wan_studio.memory.plans import add_unfetched_blocks, blocks_of

        plan = choice.plan
        source = aoti.repo_blocks(blocks_of(record), plan.quantization)
        if source is None:  # blocks compiled here at an earlier start of this process
            return
        pipe = self.engine.swap.activate(record, record.modes[0], dataclasses.replace(plan, compile="none"))
        try:
            aoti.load_from_repo(transformers_of(pipe), *source)
        except Exception as exc:
            reason = aoti.why_not_fetched(exc)
            log.warning("AOTI blocks from %s could not be fetched: %s", aoti.repo_name(*source), exc)
            instead = ("compiling on this Space instead" if compiles_at_start(record)
                       else "its jobs run uncompiled")
            self._warn_at_start(f"AOTI blocks from {aoti.repo_name(*source)} could not be fetched: {reason}; "
                                f"{instead}.")
            add_unfetched_blocks(record.id, plan.quantization, reason)
        finally:  # the plan's own activation puts them on (from the Hub cache now)
            aoti.detach(transformers_of(pipe))

    def _compile_blocks(self, record, shape, choice) -> None:
        """ZeroGPU: the checkpoint's blocks compiled ahead of time (memory/aoti.py) for the plan's weights:
        by an earlier start, else now, in a GPU reservation of their own; this process's plans count on
        them from then on (memory/plans.py `add_compiled_blocks`; not if compiling failed, now or at an
        earlier start)."""
        from wan_studio.memory import aoti
        from wan_studio.memory.plans import add_compiled_blocks

        plan = choice.plan
        folder = aoti.package_dir(self.settings.models_dir, record, plan)
        done, failure = aoti.made(folder), aoti.failed(folder)
        if failure is not None:
            self._warn_at_start(f"Compiling {record.name}'s blocks failed at an earlier start ({failure['error']}); "
                                f"jobs run uncompiled. Delete {folder} to try again.")
            return
        if done is None:
            pipe = self.engine.swap.activate(record, record.modes[0], plan)  # kept: the compiled plan reuses it
            try:
                done = aoti.compile_in_reservation(pipe, choice.machine.zerogpu_size or "large", shape.width,
                                                   shape.height, shape.frames, folder)
            except Exception as exc:  # a block that will not export or compile, or no reservation: eager
                log.warning("compiling %s's blocks at start failed: %s", record.id, exc)
                self._warn_at_start(f"Could not compile {record.name}'s blocks at start ({exc}); jobs run uncompiled.")
                return
        add_compiled_blocks(record.id, plan.quantization, str(folder), done["seconds"])

    def estimate_cost(self, request: GenerationRequest) -> str:
        """The line the interface shows under Generate: checkpoint, frames x size, time, memory, plan."""
        from wan_studio.memory.choose import attention_of, cost_line

        request = request.prepare()  # file facts come from the cache: moving a slider reads no file
        return cost_line(request, self.engine.machine, request.memory_plan if request.memory_plan != "auto"
                         else self.settings.memory_plan, attention_of(request, self.settings))

    # -- submitting and waiting ---------------------------------------------------------------
    def submit(self, request: GenerationRequest, owner: str | None = None) -> Job:
        return self.worker.add(request, owner)

    def status(self, job_id: str) -> JobStatus:
        """Where the job is now: its place in line, its step (with the latest preview), or its outcome."""
        for status in watch(self.store, job_id, self.worker):
            return status

    def watch(self, job_id: str, min_interval_s: float = 0.0):
        """Each change of the job's status until it ends (queue/status.py `watch`)."""
        return watch(self.store, job_id, self.worker, min_interval_s=min_interval_s)

    def wait_for_result(self, job: Job, on_update: Callable[[JobStatus], None] | None = None,
                        timeout_s: float | None = None) -> Result:
        """Block until the job is finished; return its result or raise its error."""
        if self.gpu_call is not None:
            self.gpu_call(job.id)
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        for status in self.watch(job.id):
            if status.is_final:
                break
            if on_update is not None:
                on_update(status)
            if deadline is not None and time.monotonic() > deadline:
                raise StudioError(f"Job {job.id} did not finish within {timeout_s:g} s; it is still {status.state}.")
        return self.result_of(self.store.get(job.id))

    def result_of(self, job: Job) -> Result:
        if job.state == DONE:
            result = self.engine.library.get(job.result_id)
            if result is None:
                raise StudioError(f"Job {job.id} finished but its result {job.result_id} is no longer in the library.")
            return result
        if job.state == CANCELLED:  # a long job stopped after some windows says how many it kept
            raise Cancelled(job.messages[-1] if job.resumable else "Stopped; nothing was saved.")
        raise JobFailed(job.error_message or f"Job {job.id} ended as {job.state}.")

    def resume(self, job_id: str) -> Job:
        """Queue a long job stopped after some windows again (`status(job_id).resumable`): the windows it
        kept are not made again, and its result's recipe counts them (`windows.resumed_windows`). Wait for
        it with `wait_for_result` like a submitted job (on ZeroGPU that is what runs it)."""
        job = self.store.resume(job_id)
        self.worker.notify()
        return job

    def run(self, request: GenerationRequest, owner: str | None = None,
            on_update: Callable[[JobStatus], None] | None = None) -> Result:
        """Submit and wait: what the page and the API do for one generation."""
        return self.wait_for_result(self.submit(request, owner), on_update)


def _pool(settings: Settings, store: JobStore):
    """The worker processes `settings.gpus` asks for (checked against this machine), or None."""
    from wan_studio.queue.pool import WorkerPool, check_gpus, parse_gpus

    devices = parse_gpus(settings.gpus)
    if not devices:
        return None
    check_gpus(devices)
    return WorkerPool(settings, devices, store)


def zerogpu_reservation(engine: Engine, job: Job) -> tuple[str, int]:
    """(size, seconds) to ask ZeroGPU for: the size the chosen plan needs (large before xlarge)
    and the estimated run time plus a margin; loading counts only when the checkpoint is not in place."""
    from wan_studio.memory.estimate import finishing_seconds, zerogpu_duration

    request = job.typed_request()
    if isinstance(request, FinishingRequest):  # a small model, frame by frame: the smaller size is plenty
        return "large", finishing_seconds(request)
    choice = engine.choose_plan(request)
    estimate = choice.estimate
    active = engine.swap.active_key
    windows = request.windows() if getattr(request, "long_video", False) else None
    parts = windows.count if windows is not None and engine.windows_per_run == 1 else 1
    seconds = zerogpu_duration(estimate, parts=parts)
    if active is None or active.model != request.model:
        seconds += int(estimate.seconds_breakdown.get("load", 0))
    return choice.machine.zerogpu_size or "large", seconds


def zerogpu_runner(worker: QueueWorker, engine: Engine) -> Callable[[str], object]:
    """The worker's job call wrapped in `spaces.GPU`, so it runs inside the GPU reservation.

    One wrapped function per ZeroGPU size, because `size` is fixed when decorating; `duration` is a
    function of the job, so each reservation is as long as that job's estimate (shown to the user).
    A long video takes one reservation a window, so none runs past the Space's limit: the job pauses
    after each window (kept) and goes back to the head of the queue, and the next reservation goes on.
    """
    import spaces

    engine.windows_per_run = 1

    def run(job_id: str):
        return worker.run_job_now(job_id)

    def duration(job_id: str) -> int:
        return zerogpu_reservation(engine, worker.store.get(job_id))[1]

    by_size = {size: spaces.GPU(duration=duration, size=size)(run) for size in ("large", "xlarge")}

    def run_on_gpu(job_id: str):
        while True:
            job = worker.store.get(job_id)
            if job is None or job.state != QUEUED:  # done, failed or stopped (a Stop while it waited, too)
                return job
            size, _ = zerogpu_reservation(engine, job)
            by_size[size](job_id)  # queued again after it: paused after a window, the next goes on

    return run_on_gpu


def _unloaded(what: str, freed: int, busy: int) -> str:
    """A worker process or actor frees its memory by ending: the idle ones were started afresh."""
    line = f"Models unloaded: {freed} idle {what}(s) started afresh, their memory freed."
    return line + (f" {busy} running a job keep theirs; unload again when it ends." if busy else "")
