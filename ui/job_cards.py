"""A mode panel's job list: one card per job this browser tab started from the panel ("running 1 ·
queued 2"), so quick Generates never share a card.

Each Generate (and Extend, Smooth, Upscale, Resume) follows its own job in its own event; whichever
event updates the panel draws the whole list from the queue as it is now, so every card always
shows its own job. The list is kept here, per browser session and mode, not in a gr.State: two
events started a moment apart would each hold a copy and overwrite the other's.
"""

from __future__ import annotations

import html
import threading

from ui.progress_cards import final_card, progress_card
from wan_studio.errors import StudioError
from wan_studio.runtime.gallery import made_by

ACTIVE_STATES = ("queued", "downloading", "extracting", "loading", "running", "finishing", "saving")
KEPT = 12  # jobs a list remembers: the active ones and the few finished last

_lock = threading.Lock()
_jobs: dict[tuple[str, str], list[str]] = {}  # (session, mode) -> job ids, oldest first
_finished: dict[tuple[str, str], list[str]] = {}  # (session, mode) -> job ids in the order they ended
_follow_ons: set[str] = set()  # jobs made from the result shown (Extend, Smooth, ...), while they run


def add(session: str, mode: str, job_id: str, follow_on: bool = False) -> None:
    """`follow_on`: made from the result shown; its card tells the page to keep the result's toolbar
    out of sight until its own result comes."""
    with _lock:
        jobs = _jobs.setdefault((session, mode), [])
        jobs.append(job_id)
        del jobs[:-KEPT]
        if follow_on:
            _follow_ons.add(job_id)


def ended(session: str, mode: str, job_id: str) -> None:
    with _lock:
        _follow_ons.discard(job_id)
        finished = _finished.setdefault((session, mode), [])
        if job_id in finished:
            finished.remove(job_id)
        finished.append(job_id)
        del finished[:-KEPT]


def jobs_of(session: str, mode: str) -> list[str]:
    with _lock:
        return list(_jobs.get((session, mode), ()))


def to_stop(studio, session: str, mode: str) -> str | None:
    """The job Stop (or Esc) is for: the panel's running job, else its newest queued one."""
    active = []
    for job_id in jobs_of(session, mode):
        job = studio.store.get(job_id)
        if job is not None and not job.is_final:
            active.append(job)
    running = [job for job in active if job.state != "queued"]
    chosen = running[0] if running else (active[-1] if active else None)
    return chosen.id if chosen else None


def what(job) -> str:
    """The words a card starts with: the prompt, or what a finishing job does."""
    request = job.request or {}
    if request.get("prompt"):
        text = " ".join(str(request["prompt"]).split())
        return text if len(text) <= 90 else text[:89] + "…"
    return {"upscale": "Upscale", "interpolate": "Smooth"}.get(job.mode, job.mode.upper())


def render(studio, session: str, mode: str) -> str:
    """The list: active jobs in the order they run, then the one that ended last."""
    active, cards = 0, []
    queued = 0
    for job_id in jobs_of(session, mode):
        job = studio.store.get(job_id)
        if job is None or job.is_final:
            continue
        try:
            status = studio.status(job_id)
        except StudioError:
            continue
        if status.is_final:
            continue
        active += status.state != "queued"
        queued += status.state == "queued"
        cards.append(_labelled(progress_card(status), job, follow_on=job_id in _follow_ons))
    with _lock:
        last = (_finished.get((session, mode)) or [None])[-1]
    job = studio.store.get(last) if last else None
    if job is not None:
        cards.append(_labelled(final_for(studio, job), job, resumable=job.resumable))
    if not cards:
        return '<div class="progress-card idle">Generate to preview here.</div>'
    head = (f'<div class="job-list-head">running {active} · queued {queued}</div>'
            if active + queued > 1 else "")
    return f'<div class="job-list">{head}{"".join(cards)}</div>'


def final_for(studio, job) -> str:
    """A finished job's card: done (how it was made), stopped (and what was kept), failed."""
    try:
        result = studio.result_of(job)
    except StudioError as exc:
        state = "stopped" if job.state == "cancelled" else "failed"
        return final_card(state, str(exc) if state == "stopped" else f"Failed: {exc}")
    return final_card("done", done_text(studio.engine.library, result))


def done_text(library, result) -> str:
    """"Done: generated in 12.5 s", or what was done to which result, by its prompt (never a raw id)."""
    recipe = result.recipe or {}
    if recipe.get("parent"):
        return f"Done: {made_by(library, result)}"
    return f"Done: generated in {recipe.get('timings', {}).get('generate_s', '?')} s"


def _labelled(card: str, job, follow_on: bool = False, resumable: bool = False) -> str:
    """The card with its job's words first and its id on it (the page's tests and scripts find it so).
    The page's stylesheet reads the marks: a running follow-on hides the result's toolbar, a stopped
    job with windows kept shows Resume (updates never show or hide them: see ui/panels.py build_panel)."""
    words = f'<span class="job-what">{html.escape(what(job))}</span>'
    opening = card.index(">") + 1
    marks = f'data-job="{html.escape(job.id)}"' + (" data-follow-on" if follow_on else "") + (
        " data-resumable" if resumable else "")
    tag = card[:opening].replace('class="progress-card', f'{marks} class="progress-card', 1)
    return tag + words + card[opening:]
