"""A CLI job runs through the output folder's queue, so there is one GPU owner (generate, extend)."""

from __future__ import annotations

import os
import sys

from wan_studio.errors import Cancelled, StudioError


def run_through_queue(request, settings, quiet: bool = False, poll_s: float = 0.25):
    """One GPU owner: the job joins the output folder's queue. While a studio or `queue run` serves
    that queue, it runs there and this waits for it; with nobody serving, this process serves its
    own job (and only that one). Returns the finished job; a failed or stopped one raises."""
    from wan_studio.cli.queue import open_store
    from wan_studio.disk import require_space, space_needed
    from wan_studio.queue.serving import ServingLock
    from wan_studio.queue.status import status_of, watch
    from wan_studio.queue.store import CANCELLED, DONE, QUEUED

    require_space(settings.output_dir, space_needed(request))  # named with the job's needs, before the queue is opened
    store = open_store(settings)
    serving = ServingLock(settings.output_dir)
    job = store.add(request)
    final = said = None
    try:
        # every poll, changed or not: the process serving the queue may stop, and then this one serves
        for status in watch(store, job.id, poll_s=poll_s, repeat=True):
            if status.state == QUEUED and serving.acquire():
                _serve_own_job(store, serving, job.id, settings, quiet)
                served = store.get(job.id)
                if served is not None and served.is_final:  # its end is known now, not a poll later
                    final = status_of(served)
                    break
                continue
            line = (f"{job.id} queued at place {status.position}; another process serves this queue"
                    if status.state == QUEUED else f"{job.id} {status.describe()}")
            if not quiet and not status.is_final and line != said:
                print(line, file=sys.stderr)
                said = line
            final = status
    except KeyboardInterrupt:
        _stop_on_interrupt(store, job.id)
        raise
    finally:
        serving.release()
    if final.state == DONE:
        return store.get(job.id)
    if final.state == CANCELLED:
        stopped = store.get(job.id)
        if stopped is not None and stopped.resumable:  # a long job stopped after some windows: they are kept
            raise Cancelled(f"{stopped.messages[-1]} Resume it: python -m wan_studio queue resume {job.id}")
        raise Cancelled(final.message or "Stopped; nothing was saved.")
    raise StudioError(final.message or f"Job {job.id} ended as {final.state}.")


def _serve_own_job(store, serving, job_id: str, settings, quiet: bool) -> None:
    from wan_studio.queue.worker import QueueWorker
    from wan_studio.runtime.engine import Engine

    worker = QueueWorker(store, Engine(settings), serving=serving)

    def show(job, event):
        if event.kind == "progress" and not quiet:
            progress = event.progress
            print(f"\r{progress.describe():<60}", end="" if progress.stage in ("denoising", "finishing") else "\n",
                  file=sys.stderr)

    worker.add_listener(show)
    worker.run_job_now(job_id)


def _stop_on_interrupt(store, job_id: str) -> None:
    """Ctrl+C: a job still waiting leaves the queue; one running elsewhere is asked to stop."""
    from wan_studio.queue.store import QUEUED, RUNNING, QueueError

    current = store.get(job_id)
    try:
        if current is not None and current.state == QUEUED:
            store.cancel(job_id)
        elif current is not None and current.state == RUNNING:
            store.request_stop(job_id)
    except QueueError:
        pass  # it finished meanwhile


def run_and_print(request, settings, quiet: bool = False) -> int:
    """`generate`, `extend`, `interpolate` and `upscale`: the job through the queue, its notes on stderr, its
    path on stdout."""
    from wan_studio.cli.progress import library_progress_bars

    with library_progress_bars(shown=not quiet):
        job = run_through_queue(request, settings, quiet=quiet)
    for message in job.messages:
        print(f"note: {message}", file=sys.stderr)
    print(job.result_path)
    return 0


def run_as_rank(request, settings, quiet: bool = False, seed_given: bool = True) -> int:
    """`generate` as one rank of a job split across machines (torchrun, one command per machine):
    no queue (every rank runs the same call at once); rank 0 saves the result and prints its path."""
    from wan_studio.runtime.engine import Engine

    world = int(os.environ["WORLD_SIZE"])
    quiet = quiet or int(os.environ["RANK"]) != 0  # rank 0 speaks for the job
    if request.parallel != world:
        raise StudioError(f"Under torchrun, --parallel must be the number of ranks it starts ({world}: --nnodes x "
                          f"--nproc-per-node); got --parallel {request.parallel}.")
    if not seed_given:  # each machine would draw its own noise
        raise StudioError("Under torchrun, give --seed: every machine must start from the same noise.")

    def show(progress):
        if not quiet:
            print(f"\r{progress.describe():<60}", end="" if progress.stage == "denoising" else "\n", file=sys.stderr)

    result = Engine(settings, previews=False).generate(request, on_progress=show)
    if result is not None:
        print(result.media)
    return 0
