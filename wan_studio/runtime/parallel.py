"""One job across several GPUs (`--parallel N`): the transformer's sequence split over N ranks with
diffusers' context parallelism (Ulysses: each rank holds every weight and attends over all tokens
for 1/N of the heads), over `torch.distributed`.

The engine starts N processes of `wan_studio.runtime.rank` on this machine (rank r on GPU r; NCCL
between GPUs, gloo on a machine without one), hands them the prepared request through a folder,
and waits. Every rank runs the same pipeline call on the same inputs; rank 0 reports each step on
its stdout and writes the frames, which the engine saves like any result. A rank that dies (or a
Stop) ends the others at once, and the job fails with which rank and why.

The ranks stay for the next split job of the same shape (`RankGroup`): a batch of split jobs starts
its processes once, not each job (about 5 s of imports a rank). A group ends when a job fails or is
stopped, when it has waited WARM_IDLE_S for a job, when this process ends, and before this
process runs a one-GPU job on a GPU (an idle rank's CUDA context holds memory that job needs).
A pool's group of seats (`devices`) starts its ranks per job, as the seats go back after it.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from wan_studio.errors import Cancelled, StudioError
from wan_studio.queue.status import JobStatus

FRAMES_FILE = "frames.npy"
REQUEST_FILE = "request.json"
PROGRESS_PREFIX = "wan-studio-step "  # rank 0's progress lines on its stdout
DONE_LINE = "wan-studio-rank-done"  # each rank's last line of a job on its stdout
WARM_IDLE_S = 120.0  # a warm group's ranks end by themselves after this long without a job
# what a rank reads only when it starts: its interpreter's path and the GPUs it sees. A group serves
# jobs whose environment agrees on these; the rest of the environment comes with each job
START_ONLY = ("PYTHONPATH", "CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER")


class RankFailed(StudioError):
    """A rank of a parallel job stopped; the others were ended."""


def torchrun_rank() -> int | None:
    """This process's rank when torchrun started it (a job split across machines: `generate` is then
    one rank of it, and rank 0 keeps the result); None otherwise."""
    return int(os.environ["RANK"]) if os.environ.get("TORCHELASTIC_RUN_ID") and "RANK" in os.environ else None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run(request, settings, scratch: Path, report, cancel=None, devices=None) -> tuple[object, dict]:
    """The frames of a prepared request made by `request.parallel` ranks, and what the recipe says.
    The ranks read the same folders as this process (`settings`, flags included). `devices`: the
    GPUs of a pool's group (queue/pool.py seats) the ranks run on; None: this process's GPUs."""
    from wan_studio.settings import child_environment

    folder = Path(tempfile.mkdtemp(prefix="parallel-", dir=scratch))
    (folder / REQUEST_FILE).write_text(json.dumps({"request": request.to_dict(),
                                                   "preparation": request.preparation.to_dict()}))
    env = {**os.environ, **child_environment(settings), **({} if devices is None else group_environment(devices))}
    keep = devices is None
    group = _take_warm(request.parallel, env) if keep else None
    group = group or RankGroup(request.parallel, env)
    kept = False
    try:
        started = time.perf_counter()
        group.start_job(folder, {**env, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port())}, report)
        group.wait(cancel)
        frames = np.load(folder / FRAMES_FILE)
        account = json.loads((folder / "account.json").read_text())
        kept = keep and _keep_warm(group)
    finally:
        if not kept:
            group.end()
        shutil.rmtree(folder, ignore_errors=True)
    account["seconds"] = round(time.perf_counter() - started, 3)
    return frames, account


class RankGroup:
    """The processes of one split job's ranks, each serving jobs read from its stdin
    (`python -m wan_studio.runtime.rank --serve`), one job at a time."""

    def __init__(self, ranks: int, env: dict):
        self.ranks, self.key = ranks, _group_key(ranks, env)
        self.errors = [[] for _ in range(ranks)]
        self.finished = [threading.Event() for _ in range(ranks)]
        self.report = None
        self.last_job_end = time.monotonic()
        self.processes = [subprocess.Popen(
            [sys.executable, "-m", "wan_studio.runtime.rank", "--serve", str(WARM_IDLE_S)],
            env={**env, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(ranks)},
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for rank in range(ranks)]
        self.readers = [threading.Thread(target=_keep_tail, args=(p.stderr, self.errors[rank]), daemon=True)
                        for rank, p in enumerate(self.processes)]
        for rank, process in enumerate(self.processes):
            self.readers[rank].start()
            threading.Thread(target=self._read_stdout, args=(rank, process.stdout), daemon=True).start()

    def start_job(self, folder: Path, env: dict, report) -> None:
        self.report = report
        for rank, process in enumerate(self.processes):
            self.errors[rank].clear()
            self.finished[rank].clear()
            try:
                process.stdin.write(json.dumps({"folder": str(folder), "env": env}) + "\n")
                process.stdin.flush()
            except OSError:  # it has just stopped: wait() names it
                pass

    def wait(self, cancel=None) -> None:
        """Until every rank has finished the job; a rank that stops first ends them all."""
        while not all(done.is_set() for done in self.finished):
            codes = [p.poll() for p in self.processes]
            failed = [rank for rank, code in enumerate(codes) if code is not None]
            if failed:
                # a rank killed from outside is the cause; the others only lost their peer
                rank = next((r for r in failed if codes[r] < 0), failed[0])
                self.end()
                self.readers[rank].join(5)  # (its last words)
                code = codes[rank]
                why = (f"killed by signal {-code}" if code < 0
                       else self.errors[rank][-1] if self.errors[rank] else f"exit code {code}")
                raise RankFailed(f"Rank {rank} of {self.ranks} stopped ({why}); the job was ended on every GPU.")
            if cancel is not None and cancel.is_set():
                self.end()
                raise Cancelled("Stopped by the user; nothing was saved.")
            time.sleep(0.1)
        self.last_job_end = time.monotonic()

    def ready(self) -> bool:
        """Every rank still there and well within its idle time (so none ends as a job arrives)."""
        return (all(p.poll() is None for p in self.processes)
                and time.monotonic() - self.last_job_end < WARM_IDLE_S / 2)

    def end(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
        for process in self.processes:
            process.wait()
            try:
                process.stdin.close()  # (its stdout and stderr close as their readers reach the end)
            except OSError:
                pass

    def _read_stdout(self, rank: int, stream) -> None:
        for line in stream:
            if line.startswith(DONE_LINE):
                self.finished[rank].set()
            elif rank == 0 and line.startswith(PROGRESS_PREFIX) and self.report is not None:
                self.report(JobStatus(**json.loads(line[len(PROGRESS_PREFIX):])))


_warm: dict[tuple, RankGroup] = {}
_warm_lock = threading.Lock()


def _group_key(ranks: int, env: dict) -> tuple:
    return (ranks, sys.executable, *(env.get(name) for name in START_ONLY))


def _take_warm(ranks: int, env: dict) -> RankGroup | None:
    """The warm group for a job of this shape, taken out of the shelf while it runs; None if none."""
    with _warm_lock:
        group = _warm.pop(_group_key(ranks, env), None)
    if group is not None and not group.ready():
        group.end()
        return None
    return group


def _keep_warm(group: RankGroup) -> bool:
    with _warm_lock:
        if group.key in _warm:  # (two engines in one process: one warm group a shape is enough)
            return False
        _warm[group.key] = group
    return True


def end_warm_groups() -> None:
    """End every warm group's ranks (before this process uses a GPU itself, and at exit)."""
    with _warm_lock:
        groups = list(_warm.values())
        _warm.clear()
    for group in groups:
        group.end()


atexit.register(end_warm_groups)


def group_environment(devices) -> dict:
    """The ranks see exactly the group's GPUs (rank r on the r-th), numbered as nvidia-smi numbers
    them; a group of the pool's CPU seats sees none."""
    from wan_studio.queue.pool import is_cpu

    return {"CUDA_DEVICE_ORDER": "PCI_BUS_ID",
            "CUDA_VISIBLE_DEVICES": ",".join(device for device in devices if not is_cpu(device))}


def _keep_tail(stream, tail: list, keep: int = 20) -> None:
    for line in stream:
        line = line.rstrip()
        if line:
            tail.append(line)
            del tail[:-keep]
