"""`python -m wan_studio queue ...`: the studio's job queue from the command line.

    queue list [--all] [--json]      running, queued, then the latest finished jobs
    queue add FILE                   a batch file (.json or .csv); all rows or none are queued
    queue cancel ID                  a queued job will not run (a running one is asked to stop)
    queue retry ID                   a failed, interrupted or cancelled job goes back in the queue
    queue resume ID                  a long job stopped after some windows goes on from the next
    queue remove ID                  forget a job that is not running
    queue run [--quiet]              work through the queue here until it is empty
    queue work --device D            one worker of a studio's pool (--gpus): run jobs on device D
                                     until stopped (SIGTERM) or its studio is gone

The queue lives in the output folder (queue.db), so jobs added here appear in a running studio
and the other way round. `run` prints one line per job on stdout: id, state, output path (or the
error); progress goes to stderr.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sys
import threading
from pathlib import Path

from wan_studio.queue.batch import load_batch
from wan_studio.queue.job import FINAL_STATES, RUNNING, Job, request_summary
from wan_studio.queue.store import JobStore, Seat

LIST_HISTORY = 20


def queue_paths(settings) -> tuple[Path, Path]:
    """Where the queue database and the queued jobs' input copies live."""
    return settings.output_dir / "queue.db", settings.output_dir / ".queue" / "inputs"


def open_store(settings, fallback_on_lock: bool = False) -> JobStore:
    """The output folder's queue. The CLI refuses a locked one: a private fallback would lose its jobs."""
    db_path, inputs_dir = queue_paths(settings)
    store = JobStore(db_path, inputs_dir, fallback_on_lock=fallback_on_lock)
    if store.warning:
        print(f"warning: {store.warning}", file=sys.stderr)
    return store


def add_queue_parser(subparsers):
    queue = subparsers.add_parser("queue", help="the job queue: list, add a batch file, cancel, retry, resume, "
                                                "remove, run")
    actions = queue.add_subparsers(dest="queue_command", required=True)
    listing = actions.add_parser("list", help="running, queued and recent jobs")
    listing.add_argument("--all", action="store_true", help="every finished job, not only the latest")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    add = actions.add_parser("add", help="queue every request of a batch file (.json or .csv)")
    add.add_argument("file", type=Path)
    for name, text in (("cancel", "cancel a queued job (or ask a running one to stop)"),
                       ("retry", "queue a failed, interrupted or cancelled job again"),
                       ("resume", "queue a long job stopped after some windows again: it goes on from the next"),
                       ("remove", "forget a job that is not running, with its input copies")):
        action = actions.add_parser(name, help=text)
        action.add_argument("id")
    run = actions.add_parser("run", help="run queued jobs here until the queue is empty")
    run.add_argument("--quiet", action="store_true", help="no progress on stderr")
    work = actions.add_parser("work", help="a worker of a studio started with --gpus (the studio starts these)")
    work.add_argument("--device", required=True, help="a GPU index, or cpu (cpu:N as one of the pool's CPU workers)")
    work.add_argument("--pool", default=None, help="every worker's device in the pool, comma-separated: a job split "
                                                   "over several GPUs runs on a group of them")
    work.add_argument("--quiet", action="store_true", help="no progress on stderr")
    return queue


def cmd_queue(args, settings) -> int:
    if args.queue_command == "work":  # before torch loads: the worker sees only its own GPU
        from wan_studio.queue.pool import worker_environment

        os.environ.update(worker_environment(args.device))
    store = open_store(settings)
    try:
        return {
            "list": _list, "add": _add, "cancel": _cancel, "retry": _retry, "resume": _resume, "remove": _remove,
            "run": _run, "work": _work,
        }[args.queue_command](args, settings, store)
    finally:
        store.close()


def _outcome(job: Job) -> str:
    if job.result_path:
        return job.result_path
    if job.error_type:
        return f"{job.error_type}: {job.error_message}"
    return job.messages[-1] if job.messages else ""


def _list(args, settings, store: JobStore) -> int:
    jobs = store.list(history_limit=-1 if args.all else LIST_HISTORY)  # SQLite: a negative LIMIT is no limit
    if args.json:
        print(json.dumps([dataclasses.asdict(job) for job in jobs], indent=2, default=str))
        return 0
    if not jobs:
        print("The queue is empty.")
        return 0
    queued = 0
    print(f"{'id':<8} {'state':<12} {'#':>3}  {'mode':<8} {'model':<20} {'prompt':<40}  result")
    for job in jobs:
        place = ""
        if job.state == "queued":
            queued += 1
            place = str(queued)
        print(f"{job.id:<8} {job.state:<12} {place:>3}  {job.mode:<8} {job.model:<20} "
              f"{request_summary(job.request, 40):<40}  {_outcome(job)}")
    return 0


def _add(args, settings, store: JobStore) -> int:
    requests = load_batch(args.file, settings)
    jobs = store.add_many(requests)
    for job in jobs:
        print(f"{job.id} queued {job.mode} {job.model} {request_summary(job.request)}")
    print(f"Queued {len(jobs)} job(s) from {args.file}.", file=sys.stderr)
    return 0


def _cancel(args, settings, store: JobStore) -> int:
    job = store.get(args.id)
    if job is not None and job.state == RUNNING:
        store.request_stop(args.id)
        print(f"{args.id} stopping (the worker running it stops within a second or so)")
        return 0
    job = store.cancel(args.id)
    print(f"{job.id} {job.state}")
    return 0


def _retry(args, settings, store: JobStore) -> int:
    job = store.get(args.id)
    job = store.resume(args.id) if job is not None and job.resumable else store.retry(args.id)
    print(f"{job.id} {job.state} (attempt {job.attempts}, place {store.queue_position(job.id)}): {job.messages[-1]}")
    return 0


def _resume(args, settings, store: JobStore) -> int:
    job = store.resume(args.id)
    print(f"{job.id} {job.state} (attempt {job.attempts}, place {store.queue_position(job.id)}): {job.messages[-1]}")
    return 0


def _remove(args, settings, store: JobStore) -> int:
    store.remove(args.id)
    print(f"{args.id} removed")
    return 0


def _run(args, settings, store: JobStore) -> int:
    from wan_studio.queue.serving import ServingLock
    from wan_studio.queue.worker import QueueWorker
    from wan_studio.runtime.engine import Engine

    if store.next_queued() is None:
        print("The queue is empty.", file=sys.stderr)
        return 0
    serving = ServingLock(settings.output_dir)
    if not serving.acquire():
        print("Another process (a studio or `queue run`) is serving this queue; its jobs run there.", file=sys.stderr)
        return 0
    worker = QueueWorker(store, Engine(settings), serving=serving)
    outcomes: list[str] = []

    def report(job: Job, event) -> None:
        if event.kind == "started" and not args.quiet:
            print(f"{job.id} running {job.mode} {job.model} {request_summary(job.request)}", file=sys.stderr)
        elif event.kind == "progress" and not args.quiet:
            end = "" if event.progress.stage == "denoising" else "\n"
            print(f"\r  {event.progress.describe():<60}", end=end, file=sys.stderr, flush=True)
        elif event.kind == "finished":
            outcomes.append(job.state)
            print(f"{job.id} {job.state} {_outcome(job)}", flush=True)

    worker.add_listener(report)
    worker.run_until_empty()
    failed = [state for state in outcomes if state in FINAL_STATES and state != "done"]
    print(f"Ran {len(outcomes)} job(s): {len(outcomes) - len(failed)} done, {len(failed)} not.", file=sys.stderr)
    return 1 if failed else 0


def _work(args, settings, store: JobStore) -> int:
    """Run queued jobs on this device until SIGTERM (the pool stopping: a running job goes back to
    the head of the queue) or until the studio that started this worker is gone."""
    from wan_studio.backend import import_ml
    from wan_studio.queue.pool import JOB_STOP_S, ready_file
    from wan_studio.queue.worker import QueueWorker
    from wan_studio.runtime.engine import Engine

    parent, stop = os.getppid(), threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    pool = tuple(args.pool.split(",")) if args.pool else (args.device,)
    worker = QueueWorker(store, Engine(settings, previews=False), seat=Seat(args.device, pool))
    import_ml()  # torch and diffusers before the first job, then say so
    ready = ready_file(settings.output_dir, os.getpid())
    ready.parent.mkdir(parents=True, exist_ok=True)
    ready.write_text(args.device)
    worker.start()
    try:
        while not stop.wait(1.0):
            if os.getppid() != parent:
                print(f"worker on {args.device}: the studio is gone; stopping", file=sys.stderr)
                break
        worker.stop(timeout=JOB_STOP_S)
    finally:
        ready.unlink(missing_ok=True)
    return 0
