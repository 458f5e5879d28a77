"""The header's queue tray, on every page: "1 running · 2 queued" and a small bar of the running job.
A click opens the Queue page (the sidebar's own entry is clicked, so the page opens as from there).

On a shared deployment it counts only this browser session's jobs, as the Queue page lists them.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import gradio as gr

from ui.queue_page import progress_bar
from ui.runtime import get_studio, owner_of
from wan_studio.errors import StudioError
from wan_studio.queue.job import QUEUED, RUNNING
from wan_studio.queue.status import JobStatus, status_of
from wan_studio.settings import Settings

REFRESH_S = 1.5  # while a job runs or waits
IDLE_REFRESH_S = 5.0  # while the queue is idle: a job queued elsewhere shows within this
# the template is drawn again as the counts change: the listener sits on the component's own element
OPEN_QUEUE_JS = """element.addEventListener('click', (event) => {
  if (event.target.closest('button')) document.getElementById('nav-queue').click();
});"""


@dataclass
class Tray:
    html: gr.HTML
    timer: gr.Timer


def build_tray() -> Tray:
    shown = gr.HTML(tray_html(0, 0, None), elem_id="queue-tray", js_on_load=OPEN_QUEUE_JS, preserved_by_key=None,
                    scale=0, min_width=0)
    return Tray(shown, gr.Timer(REFRESH_S))


def tray_counts(settings: Settings, owner: str | None) -> tuple[int, int, JobStatus | None]:
    """(running, queued, the status of the running job that started first) of the jobs `owner` sees."""
    studio = get_studio(settings)
    jobs = studio.store.list(owner=owner, states=(RUNNING, QUEUED))
    running = [job for job in jobs if job.state == RUNNING]
    status = None
    if running:
        try:
            status = studio.status(running[0].id)
        except StudioError:  # it ended and was removed meanwhile
            status = status_of(running[0])
    return len(running), len(jobs) - len(running), status


def tray_html(running: int, queued: int, status: JobStatus | None) -> str:
    parts = ([f"{running} running"] if running else []) + ([f"{queued} queued"] if queued else [])
    words = " · ".join(parts) or "Queue idle"
    bar = progress_bar(status) if status is not None and not status.is_final else ""
    # its name is the words it shows (a screen reader's user can say them to click it), then what it does
    return (f'<button type="button" class="queue-tray" data-running="{running}" data-queued="{queued}" '
            f'title="Open the Queue page"><span>{html.escape(words)}</span>'
            f'<span class="queue-tray-what">: open the Queue page</span>{bar}</button>')


def wire_tray(tray: Tray, settings: Settings) -> None:
    def refresh(request: gr.Request):
        # Each update costs the page a walk of its ~700 components, so an idle queue is asked after less
        # often: at 1.5 s an idle tab's renderer spent about a fifth of a core on the tray alone
        running, queued, status = tray_counts(settings, owner_of(settings, request))
        return tray_html(running, queued, status), gr.Timer(REFRESH_S if running + queued else IDLE_REFRESH_S)

    tray.timer.tick(refresh, None, [tray.html, tray.timer], queue=False, show_progress="hidden",
                    api_visibility="private")
