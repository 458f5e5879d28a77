"""Model downloads the studio runs in the background (the Settings page): bytes, speed and time
left while one runs, a Stop that keeps what is finished, and a Download again that goes on from
there.

Each download is `python -m wan_studio download ID` in a process of its own, so a Stop ends it at
once, even in the middle of a file of many gigabytes. The files it finished stay in the Hugging
Face cache and are not fetched again. Of the file it was in the middle of: huggingface_hub writes
it to a file of that process's own (`<blob>.<random>.incomplete`) and never continues one, so the
Stop removes it; on the Hub's Xet storage (its large repositories) hf_xet's own chunk cache keeps
what came of it for the next try (not checked here: no Hub). The bytes so far are read from the
cache folder, against the repository's sizes of the files the model needs.
"""

from __future__ import annotations

import fnmatch
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock, Timeout

from wan_studio.errors import Cancelled, ModelNotAvailable

RUNNING, DONE, STOPPED, FAILED = "running", "done", "stopped", "failed"


def _size(value: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if value >= scale:
            return f"{value / scale:.1f} {unit}"
    return f"{value:.0f} B"


@dataclass
class Download:
    model_id: str
    name: str
    repo_id: str
    total_bytes: int
    state: str = RUNNING
    done_bytes: int = 0
    message: str = ""
    samples: deque = field(default_factory=lambda: deque(maxlen=10), repr=False)  # (time, bytes)

    @property
    def speed(self) -> float | None:
        """Bytes a second over the last few readings."""
        if len(self.samples) < 2:
            return None
        (t0, b0), (t1, b1) = self.samples[0], self.samples[-1]
        return (b1 - b0) / (t1 - t0) if t1 > t0 else None

    def describe(self) -> str:
        got = f"{_size(self.done_bytes)} of {_size(self.total_bytes)}"
        if self.state == RUNNING:
            speed = self.speed
            pace = f" at {_size(speed)}/s" if speed else ""
            left = (f", about {_duration((self.total_bytes - self.done_bytes) / speed)} left"
                    if speed and self.total_bytes > self.done_bytes else "")
            return f"Downloading {self.name}: {got}{pace}{left}."
        if self.state == DONE:
            return f"Downloaded {self.name} ({_size(self.total_bytes)})."
        if self.state == STOPPED:
            return f"Stopped {self.name} at {got}; Download again keeps the files already finished."
        return f"Download of {self.name} failed: {self.message}"


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def repo_cache_folder(repo_id: str) -> Path:
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE) / f"models--{repo_id.replace('/', '--')}"


def download_lock(repo_id: str):
    """Held by the one process downloading a repository: a Stop removes that process's unfinished
    files, so two must never write the same repository's at once (two pool workers' jobs, a job and
    the Settings page)."""
    from huggingface_hub import constants

    Path(constants.HF_HUB_CACHE).mkdir(parents=True, exist_ok=True)
    return FileLock(str(Path(constants.HF_HUB_CACHE) / f".wan-studio-{repo_id.replace('/', '--')}.lock"))


def needed_bytes(record) -> int:
    """The sizes of the files the model needs, as its repository lists them."""
    from huggingface_hub import HfApi

    from wan_studio.models.hub import needed_files, unreachable_reason

    patterns = needed_files(record)
    reason = unreachable_reason()
    if reason:
        raise ModelNotAvailable(f"Could not list {record.repo_id} on the Hugging Face Hub ({reason}).")
    try:
        entries = HfApi().list_repo_tree(record.repo_id, revision=record.revision, recursive=True)
        return sum(entry.size or 0 for entry in entries if getattr(entry, "size", None) is not None
                   and any(fnmatch.fnmatch(entry.path, pattern) for pattern in patterns))
    except Exception as exc:  # offline, unknown repo, gated: said as the Hub said it
        raise ModelNotAvailable(f"Could not list {record.repo_id} on the Hugging Face Hub "
                                f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}).") from None


def bytes_in_cache(repo_id: str) -> int:
    """What the cache holds of the repository: finished blobs and the unfinished ones."""
    blobs = repo_cache_folder(repo_id) / "blobs"
    total = 0
    for path in blobs.iterdir() if blobs.is_dir() else ():
        try:
            total += path.stat().st_size
        except OSError:  # an unfinished file renamed to its blob meanwhile: counted next time
            pass
    return total


class Downloads:
    """The studio's downloads, one process each, watched about twice a second."""

    def __init__(self, poll_s: float = 0.5):
        self.poll_s = poll_s
        self._downloads: dict[str, Download] = {}
        self._processes: dict[str, subprocess.Popen] = {}
        self._lock = threading.Lock()

    def start(self, record) -> Download:
        with self._lock:  # one at a time per model: a second click shows the running one
            current = self._downloads.get(record.id)
            if current is not None and current.state == RUNNING:
                return current
            download = Download(record.id, record.name, record.repo_id, needed_bytes(record))
            errors = tempfile.TemporaryFile("w+")  # read when it ends; a pipe nobody reads would fill and block it
            process = subprocess.Popen([sys.executable, "-m", "wan_studio", "download", record.id],
                                       env={**os.environ, "HF_HUB_DISABLE_PROGRESS_BARS": "1"},
                                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errors, text=True)
            self._downloads[record.id], self._processes[record.id] = download, process
        threading.Thread(target=self._watch, args=(download, process, errors), daemon=True).start()
        return download

    def _watch(self, download: Download, process: subprocess.Popen, errors) -> None:
        while process.poll() is None:
            self._measure_bytes(download)
            time.sleep(self.poll_s)
        self._measure_bytes(download)
        errors.seek(0)
        error = errors.read().strip().splitlines()
        errors.close()
        with self._lock:
            if download.state == STOPPED:
                return
            if process.returncode == 0:
                download.state, download.done_bytes = DONE, download.total_bytes
            else:
                download.state = FAILED
                download.message = error[-1].removeprefix("error: ") if error else f"exit code {process.returncode}"

    def _measure_bytes(self, download: Download) -> None:
        got = bytes_in_cache(download.repo_id)
        got = min(got, download.total_bytes) if download.total_bytes else got
        download.done_bytes = got
        download.samples.append((time.monotonic(), got))

    def stop(self, model_id: str) -> Download | None:
        """End a running download at once; the files it finished stay in the cache for the next one."""
        with self._lock:
            download, process = self._downloads.get(model_id), self._processes.get(model_id)
            if download is None or download.state != RUNNING:
                return download
            download.state = STOPPED
        process.terminate()
        process.wait()
        try:  # its own half of a file (huggingface_hub never continues one), unless another now downloads
            with download_lock(download.repo_id).acquire(timeout=0):
                blobs = repo_cache_folder(download.repo_id) / "blobs"
                for partial in blobs.glob("*.incomplete") if blobs.is_dir() else ():
                    partial.unlink(missing_ok=True)
        except Timeout:
            pass
        self._measure_bytes(download)
        return download

    def stop_all(self) -> None:
        for model_id in list(self._downloads):
            self.stop(model_id)

    def status(self, model_id: str) -> Download | None:
        with self._lock:
            return self._downloads.get(model_id)


def fetch_for_job(record, settings, on_change, cancel=None, poll_s: float = 0.5) -> None:
    """Download a model this machine lacks before a job loads it (its first job here, or a cluster
    node without it), telling `on_change` where it is (a Download) about every `poll_s`; a set
    `cancel` stops it, keeping the files already finished. Nothing to do for a model already here,
    a Tiny one, or with automatic download off; where the Hub cannot be reached, loading the model
    then says so, with the command that downloads it."""
    from wan_studio import models

    if record.is_tiny or not settings.auto_download or models.find_local(record, settings) is not None:
        return
    downloads = Downloads(poll_s)
    try:
        download = downloads.start(record)
    except ModelNotAvailable:
        return
    while download.state == RUNNING:
        on_change(download)
        if cancel is not None and cancel.wait(poll_s):
            downloads.stop(record.id)
            raise Cancelled(f"Stopped by the user while {record.name} downloaded; nothing was saved, and the "
                            f"files already finished are kept for the next try.")
        if cancel is None:
            time.sleep(poll_s)
    on_change(download)
