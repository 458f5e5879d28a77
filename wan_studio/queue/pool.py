"""Several GPUs in one box: one worker process per GPU, all pulling from the output folder's one
persistent queue.

Each worker is `python -m wan_studio queue work --device D`, a process of its own (its own CUDA
context, swap manager and memory plan, chosen for its GPU, so mixed cards are fine) that sees
only its GPU (CUDA_VISIBLE_DEVICES; inside it the GPU is cuda:0). The queue gives each job to
exactly one worker (a claim is one SQLite transaction), so a job runs on one GPU and several run
at once; a job split over N GPUs runs on a group of N workers' GPUs (store._seat_claim). The pool
watches its workers: one that dies is started again, and the job it was running
goes back to the head of the queue once (the store's recovery of jobs whose process is gone; a
job that kills its worker twice is left interrupted, with the reason). The studio holds the
queue's serving lock while the pool serves, so a CLI `generate` queues its job here.

`cpu` devices (`--gpus cpu,cpu`) run workers on the CPU: how the tests run a pool without a GPU.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from wan_studio.backend import gpu_count
from wan_studio.errors import StudioError

log = logging.getLogger(__name__)

CPU = "cpu"
JOB_STOP_S = 60  # how long a worker gives its running job to stop (cli/queue.py `work`)
STOP_WAIT_S = JOB_STOP_S + 15  # how long the pool waits for its workers to end
MAX_STARTS = 20  # a worker started this often is left down (it dies at start: a broken install, a bad GPU)


def parse_gpus(text) -> tuple[str, ...]:
    """`0,1,3`, `all` or `cpu,cpu` (a list in config.json too) -> one device per worker; () for one
    in-process worker (the default)."""
    if text is None or text == "" or text == ():
        return ()
    items = [str(item).strip() for item in (text if isinstance(text, (list, tuple)) else str(text).split(","))]
    if items == ["all"]:
        count = gpu_count()
        if count == 0:
            raise StudioError("--gpus all: this machine has no NVIDIA GPU (NVML finds none).")
        return tuple(str(index) for index in range(count))
    for item in items:
        if item != CPU and not item.isdigit():
            raise StudioError(f"--gpus takes GPU indices (0,1,2), all, or cpu; got {item!r}.")
    return tuple(items)


def check_gpus(devices: tuple[str, ...]) -> None:
    """Every GPU index names a GPU of this machine, and none twice."""
    indices = [device for device in devices if device != CPU]
    if not indices:
        return
    count = gpu_count()
    for index in indices:
        if int(index) >= count:
            have = f"GPUs 0-{count - 1}" if count > 1 else ("GPU 0" if count == 1 else "no NVIDIA GPU")
            raise StudioError(f"--gpus names GPU {index}, but this machine has {have}.")
    twice = sorted({index for index in indices if indices.count(index) > 1})
    if twice:
        raise StudioError(f"--gpus names GPU {twice[0]} twice; each GPU runs one worker.")


def ready_file(output_dir, pid: int):
    """Where a worker process says it has loaded its libraries and waits for jobs."""
    return Path(output_dir) / ".queue" / "workers" / f"{pid}.ready"


def is_cpu(device: str) -> bool:
    """`cpu`, or a pool's CPU seat (`cpu:1`)."""
    return device.split(":")[0] == CPU


def seats(devices: tuple[str, ...]) -> tuple[str, ...]:
    """One name per worker, as the queue records where a job runs: a GPU by its index, the CPU
    workers (the tests' pool) as cpu:0, cpu:1..."""
    return tuple(f"{CPU}:{n}" if device == CPU else device for n, device in enumerate(devices))


def seat_label(devices) -> str:
    """How the Queue page names where a job runs: `GPU 1`, `GPUs 0, 1`, `CPU`, `CPU x2`, or the
    cluster machine's address."""
    if len(devices) == 1 and not devices[0].isdigit() and not is_cpu(devices[0]):
        return devices[0]
    gpus = [device for device in devices if not is_cpu(device)]
    cpus = len(devices) - len(gpus)
    parts = ([f"GPU{'s' if len(gpus) > 1 else ''} {', '.join(gpus)}"] if gpus else []) + \
        ([f"CPU x{cpus}" if cpus > 1 else "CPU"] if cpus else [])
    return " + ".join(parts)


def worker_environment(device: str) -> dict:
    """The environment that pins a worker to its device: its one GPU (numbered as NVML and nvidia-smi
    number them, not CUDA's fastest-first order), or none for a CPU seat."""
    return {"CUDA_DEVICE_ORDER": "PCI_BUS_ID", "CUDA_VISIBLE_DEVICES": "" if is_cpu(device) else device}


@dataclass
class PoolWorker:
    device: str  # its seat (seats())
    process: subprocess.Popen | None = None
    starts: int = 0
    log: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return seat_label([self.device])


class WorkerPool:
    """One worker process per device, started, watched and stopped together."""

    def __init__(self, settings, devices: tuple[str, ...], store, poll_s: float = 1.0):
        self.settings = settings
        self.store = store
        self.poll_s = poll_s
        self.seats = seats(devices)
        self.workers = [PoolWorker(seat) for seat in self.seats]
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            for worker in self.workers:
                self._spawn(worker)
        self._thread = threading.Thread(target=self._watch, name="wan-studio-worker-pool", daemon=True)
        self._thread.start()

    def _spawn(self, worker: PoolWorker) -> None:
        from wan_studio.settings import child_environment

        env = {**os.environ, **worker_environment(worker.device), **child_environment(self.settings)}
        worker.process = subprocess.Popen(
            [sys.executable, "-m", "wan_studio", "queue", "work", "--device", worker.device,
             "--pool", ",".join(self.seats), "--quiet"],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        worker.starts += 1
        log.info("worker for %s started (pid %d)", worker.label, worker.process.pid)

    def _watch(self) -> None:
        while not self._stopping.wait(self.poll_s):
            try:
                with self._lock:
                    for worker in self.workers:
                        self._restart_if_gone(worker)
            except Exception:  # the database was busy, a start failed: said, and tried again next time
                log.exception("worker pool: could not restart a worker; trying again")

    def _restart_if_gone(self, worker: PoolWorker) -> None:
        code = worker.process.poll() if worker.process is not None else None
        if code is None or self._stopping.is_set():
            return
        if worker.starts >= MAX_STARTS:  # it dies as soon as it starts: left down, with the reason
            if worker.process is not None:
                note = (f"The worker for {worker.label} stopped {worker.starts} times (last exit code {code}); "
                        f"it is left down: see the studio's log.")
                log.error(note)
                worker.log.append(note)
                worker.process = None
            return
        note = f"The worker for {worker.label} stopped (exit code {code}); it was started again."
        log.warning(note)
        worker.log.append(note)
        self.store.recover_interrupted()  # its job goes back to the head of the queue, once
        ready_file(self.settings.output_dir, worker.process.pid).unlink(missing_ok=True)
        self._spawn(worker)

    def stop(self, timeout: float = STOP_WAIT_S) -> None:
        """Ask every worker to stop (a running job goes back to the head of the queue), then wait for
        them all, together, a little longer than a worker gives its job to stop."""
        self._stopping.set()
        with self._lock:
            running = [worker.process for worker in self.workers if worker.process and worker.process.poll() is None]
            for process in running:
                process.terminate()
            deadline = time.monotonic() + timeout
            for process in running:
                try:
                    process.wait(max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        if self._thread is not None:
            self._thread.join(timeout)

    def unload(self) -> tuple[int, int]:
        """Free the models' memory: each idle worker ends (a process's end frees all it held) and starts
        afresh; one running a job keeps its models. (A job an idle worker takes in the moment before
        it ends goes back to the head of the queue, as at any stop.)
        -> (workers started afresh, workers left running a job)."""
        from wan_studio.queue.job import RUNNING

        with self._lock:
            busy = {device for job in self.store.list(states=[RUNNING]) for device in job.devices}
            idle = [worker for worker in self.workers if worker.device not in busy
                    and worker.process is not None and worker.process.poll() is None]
            for worker in idle:
                worker.process.terminate()
            for worker in idle:  # idle ones end at once; all waited for together
                try:
                    worker.process.wait(STOP_WAIT_S)
                except subprocess.TimeoutExpired:
                    worker.process.kill()
                    worker.process.wait()
                ready_file(self.settings.output_dir, worker.process.pid).unlink(missing_ok=True)
                self._spawn(worker)
                worker.starts -= 1  # asked for: not a crash that counts towards MAX_STARTS
        return len(idle), len(busy & set(self.seats))

    def ready(self) -> bool:
        """Every worker is up: its libraries loaded, waiting for jobs."""
        with self._lock:
            return all(worker.process is not None and worker.process.poll() is None
                       and ready_file(self.settings.output_dir, worker.process.pid).exists() for worker in self.workers)
