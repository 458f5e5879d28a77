"""One type for where a job is: the engine reports it, the worker stamps it with the job, and the
studio, the CLI, the API's `/queue` and the page all show it.

    queued (with its place in line) -> [extracting (a control, frame i/n)] -> loading -> running
        (step i/n, clip i/n) -> saving
        -> done | failed | cancelled | interrupted (with the job's message)

A finishing job (upscale, interpolate) goes queued -> loading -> finishing (frame i/n) -> done.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

from wan_studio.errors import StudioError
from wan_studio.queue.job import RETRYABLE_STATES

FINAL = frozenset({"done", "failed", "cancelled", "interrupted"})


@dataclass(frozen=True)
class JobStatus:
    # queued | downloading | extracting | loading | running | finishing | saving | done | failed | cancelled |
    # interrupted
    state: str
    job_id: str = ""
    position: int | None = None  # 1-based place in line while queued
    step: int = 0
    total: int = 0
    clip: int | None = None  # 1-based clip (S2V) or window being made, of `clips`
    clips: int | None = None
    task: str | None = None  # what "extracting" makes (depth, ...) or "finishing" does; step/total are then frames
    elapsed_s: float = 0.0
    remaining_s: float | None = None
    preview: Any = field(default=None, compare=False)  # uint8 (H, W, 3) picture of the latents, every few steps
    message: str | None = None  # why it failed or stopped; what a finished job reported
    result_path: str | None = None
    # a long job stopped after some windows: its first `kept_windows` of `clips` are kept, and Resume goes on after them
    kept_windows: int = 0

    @property
    def resumable(self) -> bool:
        """Stopped with finished windows kept: Resume (`Studio.resume`, `queue resume ID`) goes on after them."""
        return self.state in RETRYABLE_STATES and self.kept_windows > 0

    @property
    def is_final(self) -> bool:
        return self.state in FINAL

    @property
    def stage(self) -> str:
        """The engine's word for the running states (denoising for running)."""
        return "denoising" if self.state == "running" else self.state

    def describe(self) -> str:
        """One line for a terminal or a log."""
        if self.state == "queued":
            return f"Queued: position {self.position}" if self.position else "Queued"
        if self.state == "downloading":  # the download's own words: bytes, speed, time left
            return self.message or "Downloading the model"
        if self.state == "extracting":
            return f"Extracting {self.task}: {self.step}/{self.total} frames"
        if self.state == "finishing":
            eta = f", about {self.remaining_s:.0f}s left" if self.remaining_s is not None else ""
            return f"{str(self.task).capitalize()}: frame {self.step}/{self.total} ({self.elapsed_s:.0f}s{eta})"
        if self.state == "running" and not self.total:
            return "Running in the process that serves the queue"
        if self.state == "running":
            eta = f", about {self.remaining_s:.0f}s left" if self.remaining_s is not None else ""
            clip = f", clip {self.clip}/{self.clips}" if self.clip else ""
            return f"Step {self.step}/{self.total}{clip} ({self.elapsed_s:.0f}s{eta})"
        words = {"loading": "Loading model", "saving": "Encoding video", "done": "Done", "failed": "Failed",
                 "cancelled": "Stopped", "interrupted": "Interrupted"}
        text = words.get(self.state, self.state)
        return f"{text}: {self.message}" if self.message and self.state != "done" else text

    def as_dict(self) -> dict:
        """JSON-ready (the preview picture left out)."""
        data = dataclasses.asdict(dataclasses.replace(self, preview=None))
        data.pop("preview")
        return data

    def replace(self, **changes) -> "JobStatus":
        return dataclasses.replace(self, **changes)


_FIELDS = {f.name for f in dataclasses.fields(JobStatus)}


def status_of(job, position: int | None = None) -> JobStatus:
    """What the store knows of a job (a `queue.store.Job`): its state, place in line or outcome."""
    if job.state == "queued":
        return JobStatus("queued", job_id=job.id, position=position)
    if job.state == "running":  # run by another process: its last saved progress (about once a second)
        saved = {k: v for k, v in (job.progress or {}).items() if k in _FIELDS and k not in ("job_id", "preview")}
        return JobStatus(**{"state": "running", **saved, "job_id": job.id})
    message = job.error_message or ("; ".join(job.messages) if job.messages else None)
    kept = job.kept_windows
    return JobStatus(job.state, job_id=job.id, message=message, result_path=job.result_path, kept_windows=kept,
                     clips=(job.progress or {}).get("clips") if kept else None)


def watch(store, job_id: str, worker=None, poll_s: float = 0.5, min_interval_s: float = 0.0, repeat: bool = False):
    """Yield the job's status whenever it changes, ending with its final status.

    The one way to wait for a job. A job this process's `worker` runs is followed through the
    worker's events (each step wakes the waiter at once; the store is read only when the job
    starts or ends); a job queued here or run by another process is read from the store every
    `poll_s`. `min_interval_s` drops intermediate steps that come faster than a page can show;
    `repeat` yields after every wait even when nothing changed (for a caller that acts on time).
    """
    last, last_time = None, 0.0
    while True:
        seen = worker.changes if worker is not None else 0
        status = worker.status(job_id) if worker is not None else None
        if status is None:
            # the place in line first: read after the job, it could miss a job the worker took meanwhile
            # and show "queued" without a place
            position = store.queue_position(job_id)
            job = store.get(job_id)
            if job is None:
                raise StudioError(f"There is no job {job_id} in the queue (it was removed).")
            status = status_of(job, position if job.state == "queued" else None)
        now = time.monotonic()
        if (repeat or status != last) and (status.is_final or status.state != getattr(last, "state", None)
                               or now - last_time >= min_interval_s):
            yield status
            last, last_time = status, now
        if status.is_final:
            return
        if worker is not None:
            worker.wait_for_change(seen, poll_s)
        else:
            time.sleep(poll_s)
