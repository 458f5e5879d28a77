"""Which process runs a job, and whether it is still alive: how a restart tells a job that was
running when its process died (kill -9, a crash) from one another live process is running."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import psutil


@dataclass(frozen=True)
class Runner:
    host: str
    pid: int
    started: float | None  # the process's start time: a reused pid belongs to a later process

    @classmethod
    def this_process(cls) -> "Runner":
        return cls(socket.gethostname(), os.getpid(), _start_time(os.getpid()))

    def is_alive(self) -> bool:
        if self.host != socket.gethostname():
            return True  # another machine sharing the folder: we cannot tell, so leave its job alone
        try:
            process = psutil.Process(self.pid)
            if process.status() == psutil.STATUS_ZOMBIE:
                return False
            return self.started is None or abs(process.create_time() - self.started) < 1.0
        except psutil.NoSuchProcess:
            return False
        except psutil.Error:
            return True  # exists but unreadable (another user): assume alive


def _start_time(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None
