"""A job of the queue as the store records it: its state, place, request, outcome and messages."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from wan_studio.requests import FinishingRequest, GenerationRequest, job_types, request_from_dict

if TYPE_CHECKING:  # (the page lists jobs without opening the database: sqlite3 waits for the studio)
    import sqlite3

QUEUED, RUNNING, DONE = "queued", "running", "done"
FAILED, CANCELLED, INTERRUPTED = "failed", "cancelled", "interrupted"
STATES = (QUEUED, RUNNING, DONE, FAILED, CANCELLED, INTERRUPTED)
FINAL_STATES = frozenset({DONE, FAILED, CANCELLED, INTERRUPTED})
RETRYABLE_STATES = frozenset({FAILED, INTERRUPTED, CANCELLED})


@dataclass
class Job:
    id: str
    state: str
    position: int
    mode: str
    request: dict
    prepared: dict | None = None  # what preparing the request found (Preparation.to_dict()): no file is read again
    progress: dict | None = None  # a running job's last JobStatus.as_dict(), written about once a second
    owner: str | None = None
    created: float = 0.0
    started: float | None = None
    finished: float | None = None
    result_id: str | None = None
    result_path: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    traceback: str | None = None
    messages: list[str] = field(default_factory=list)
    attempts: int = 1
    requeued_after_interrupt: bool = False
    stop_requested: bool = False
    runner_pid: int | None = None  # the process running it
    # a pool's seats: the one a job runs on, the group a split job runs on, or holds while it waits
    devices: tuple[str, ...] = ()

    @property
    def is_final(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def kept_windows(self) -> int:
        """A long job stopped after some windows: how many of its first windows are kept (its final
        progress says), so a retry goes on after them; 0 for any other job."""
        if self.state not in RETRYABLE_STATES:
            return 0
        return int((self.progress or {}).get("kept_windows") or 0)

    @property
    def resumable(self) -> bool:
        """Resume (`JobStore.resume`) goes on from the windows it kept."""
        return self.kept_windows > 0

    @property
    def prompt(self) -> str:
        return str(self.request.get("prompt") or "")

    @property
    def model(self) -> str:
        return str(self.request.get("model") or "")

    def typed_request(self) -> GenerationRequest | FinishingRequest:
        """The request rebuilt from the stored record, prepared from the stored preparation."""
        return request_from_dict(self.request, self.prepared)

    @classmethod
    def _from_row(cls, row: sqlite3.Row) -> "Job":
        return cls(
            id=row["id"], state=row["state"], position=row["position"], mode=row["mode"],
            request=json.loads(row["request"]), prepared=json.loads(row["prepared"] or "null"),
            progress=json.loads(row["progress"] or "null"), owner=row["owner"],
            created=row["created"], started=row["started"], finished=row["finished"], result_id=row["result_id"],
            result_path=row["result_path"], error_type=row["error_type"], error_message=row["error_message"],
            traceback=row["traceback"], messages=json.loads(row["messages"] or "[]"), attempts=row["attempts"],
            requeued_after_interrupt=bool(row["requeued_after_interrupt"]), stop_requested=bool(row["stop_requested"]),
            runner_pid=row["runner_pid"], devices=tuple(filter(None, (row["devices"] or "").split(","))),
        )


def request_summary(request: dict, width: int = 48) -> str:
    """A generation's prompt, or what a finishing job does to which result, cut to `width`."""
    cls = job_types().get(request.get("mode"))
    if cls is not None and issubclass(cls, FinishingRequest):
        prompt = cls.summary_of(request)
    else:
        prompt = str(request.get("prompt") or "").replace("\n", " ")
    return prompt if len(prompt) <= width else prompt[: width - 1] + "…"
