"""One job across several GPUs (`--parallel N`): the transformer's sequence split over N ranks with
diffusers' context parallelism (Ulysses: each rank holds every weight and attends over all tokens
for 1/N of the heads), over `torch.distributed`.

The engine starts N processes of `wan_studio.runtime.rank` on this machine (rank r on GPU r; NCCL
between GPUs, gloo on a machine without one), hands them the prepared request through a folder,
and waits. Every rank runs the same pipeline call on the same inputs; rank 0 reports each step on
its stdout and writes the frames, which the engine saves like any result. A rank that dies (or a
Stop) ends the others at once, and the job fails with which rank and why.
"""

from __future__ import annotations

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

    ranks = request.parallel
    folder = Path(tempfile.mkdtemp(prefix="parallel-", dir=scratch))
    (folder / REQUEST_FILE).write_text(json.dumps({"request": request.to_dict(),
                                                   "preparation": request.preparation.to_dict()}))
    port = free_port()
    pinned = {} if devices is None else group_environment(devices)
    processes = []
    for rank in range(ranks):
        env = {**os.environ, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(ranks),
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), **child_environment(settings), **pinned}
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "wan_studio.runtime.rank", str(folder)], env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if rank == 0 else subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
    errors = [[] for _ in processes]
    readers = [threading.Thread(target=_keep_tail, args=(p.stderr, errors[i]), daemon=True)
               for i, p in enumerate(processes)]
    for reader in readers:
        reader.start()
    progress = threading.Thread(target=_relay_progress, args=(processes[0].stdout, report), daemon=True)
    progress.start()
    started = time.perf_counter()
    try:
        while True:
            codes = [p.poll() for p in processes]
            failed = [rank for rank, code in enumerate(codes) if code not in (None, 0)]
            if failed:
                # a rank killed from outside is the cause; the others only lost their peer
                rank = next((r for r in failed if codes[r] < 0), failed[0])
                _end(processes)
                for reader in readers:
                    reader.join(5)
                why = (f"killed by signal {-codes[rank]}" if codes[rank] < 0
                       else errors[rank][-1] if errors[rank] else f"exit code {codes[rank]}")
                raise RankFailed(f"Rank {rank} of {ranks} stopped ({why}); the job was ended on every GPU.")
            if all(code == 0 for code in codes):
                break
            if cancel is not None and cancel.is_set():
                _end(processes)
                raise Cancelled("Stopped by the user; nothing was saved.")
            time.sleep(0.1)
        progress.join(5)
        frames = np.load(folder / FRAMES_FILE)
        account = json.loads((folder / "account.json").read_text())
    finally:
        _end(processes)
        shutil.rmtree(folder, ignore_errors=True)
    account["seconds"] = round(time.perf_counter() - started, 3)
    return frames, account


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


def _relay_progress(stream, report) -> None:
    for line in stream:
        if line.startswith(PROGRESS_PREFIX):
            report(JobStatus(**json.loads(line[len(PROGRESS_PREFIX):])))


def _end(processes) -> None:
    for process in processes:
        if process.poll() is None:
            process.kill()
    for process in processes:
        process.wait()
