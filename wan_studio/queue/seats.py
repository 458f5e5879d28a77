"""Seat placement: which of a pool's GPUs (its seats) a queued job runs on.

A pool (queue/pool.py) runs one worker per GPU; each asks the store for the first job it may run
on its seat (`JobStore.claim(seat=...)`), and the store asks `place` here, inside the claim's
transaction, then writes what it decided.

Policy
- Jobs are looked at in queue order. A one-GPU job runs on the first seat that asks and is
  neither busy nor held for a split job before it.
- A job split over N GPUs (`parallel`) is given a group of N seats not held for a split job
  before it (free ones first) and keeps it while it waits: the group's workers take nothing after
  it, so their jobs end and the group frees, while the other seats go on with the jobs behind it.
- A worker that finds N free seats, its own among them, takes the split job at once on those.
- A split the pool is too small for fails, with the reason, when a worker of the pool meets it
  (only the pool knows its size: a CLI in another process may have queued it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from wan_studio.queue.job import QUEUED, Job


@dataclass(frozen=True)
class Seat:
    """Where a worker of a pool (queue/pool.py) runs: its device, among all of the pool's."""
    device: str
    pool: tuple[str, ...]


@dataclass(frozen=True)
class Waiting:
    """A queued job as placement sees it."""
    job_id: str
    ranks: int  # the GPUs it is split over; 1: not split
    kept: tuple[str, ...] = ()  # the group of seats it holds while it waits


@dataclass
class Placement:
    """What one seat's look at the queue decided: the job it takes now (if any) and what changed
    for the split jobs it passed."""
    job_id: str | None = None  # the job the seat runs now; None: nothing for it yet
    devices: tuple[str, ...] = ()  # the seats that job runs on (its group, for a split job)
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)  # job id -> the group it holds now; (): none
    too_big: dict[str, str] = field(default_factory=dict)  # job id -> why the pool cannot run it


def ranks_of(request: dict) -> int:
    """The GPUs a stored request is split over."""
    return int(request.get("parallel") or 1)


def place(seat: Seat, queued: Iterable[Waiting], busy: set[str]) -> Placement:
    """The first of the `queued` jobs (in queue order) this seat may run, given the seats `busy`
    running jobs now, and the groups the split jobs before it hold."""
    placement = Placement()
    held: set[str] = set()
    for job in queued:
        if job.ranks <= 1:  # not on a seat held for a split job before it, or running one
            if seat.device not in held | busy:
                placement.job_id, placement.devices = job.job_id, (seat.device,)
            return placement
        if job.ranks > len(seat.pool):
            placement.too_big[job.job_id] = (
                f"This job is split over {job.ranks} GPUs (GPUs for this job: {job.ranks}), but the studio runs "
                f"{len(seat.pool)} worker(s) (--gpus). Retry it with {len(seat.pool)} or fewer.")
            continue
        available = [device for device in seat.pool if device not in held]
        if len(available) < job.ranks:  # the seats are held for split jobs before it: it comes after them
            if job.kept:  # it holds none meanwhile
                placement.groups[job.job_id] = ()
            continue
        group = _group_for(seat, job, available, busy)
        if group != job.kept:
            placement.groups[job.job_id] = group
        if seat.device in group and not busy & set(group):
            placement.job_id, placement.devices = job.job_id, group
            return placement
        held |= set(group)
    return placement


def _group_for(seat: Seat, job: Waiting, available: list[str], busy: set[str]) -> tuple[str, ...]:
    """The seats a split job runs on, or holds while it waits, in the pool's order."""
    free = [device for device in available if device not in busy]
    if seat.device in free and len(free) >= job.ranks:  # a free group with this seat: now
        group = (seat.device, *[device for device in free if device != seat.device][:job.ranks - 1])
    elif len(job.kept) == job.ranks and set(job.kept) <= set(available):
        group = job.kept
    else:  # the seats likely to free first: idle ones, this one (it is idle), then by number
        likely = sorted(available, key=lambda d: (d in busy, d != seat.device, seat.pool.index(d)))
        group = tuple(likely[:job.ranks])
    return tuple(sorted(group, key=seat.pool.index))


def is_held(seat: Seat, jobs: Iterable[Job]) -> bool:
    """The seat waits for a split job queued for it, or runs a share of one (`jobs`: the queued and
    running ones): its worker's own models should not hold the GPU meanwhile."""
    return any(seat.device in job.devices and (job.state == QUEUED or len(job.devices) > 1)
               and ranks_of(job.request) > 1 for job in jobs)
