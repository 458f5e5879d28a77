"""Queue & Stats: the jobs running and waiting as cards, each with its own actions; the finished ones
folded below, newest first; a batch upload; CPU / RAM / GPU / VRAM plots.

A card shows the whole prompt, the mode and checkpoint, a picture (the live preview of a running job,
the thumbnail of a finished result or of the result a finishing job works on, else the mode's icon),
a progress bar and the time left. Its buttons act on its own job: Stop or Cancel, ↑ / ↓ in the line,
Retry or Resume, Remove.

The page keeps both lists in gr.State, built here from the store about once a second while the page is
shown; a @gr.render over each draws the cards. A State only changes (and its cards are drawn again)
when what they show changes, and every card and button is keyed by its job, so between refreshes a
card keeps its place on the page and a button being clicked is never swapped for another.
"""

from __future__ import annotations

import base64
import html
import threading
import time
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import gradio as gr
import numpy as np
import pandas as pd
from PIL import Image

from ui.availability import icon, mode_label
from ui.runtime import get_studio, owner_of
from wan_studio import catalog
from wan_studio.errors import StudioError
from wan_studio.queue.job import QUEUED, RETRYABLE_STATES, RUNNING, request_summary
from wan_studio.queue.pool import seat_label
from wan_studio.queue.status import JobStatus, status_of
from wan_studio.settings import Settings

QUEUE_HEADERS = ["job", "state", "position", "on", "progress", "mode", "model", "prompt", "result / message"]
FINISHED_SHOWN = 50  # finished jobs the page lists, newest first
STATS_EVERY_S = 2.0  # the plots are drawn again at most this often (the job cards every tick)
PICTURE_WIDTH = 160  # pixels: a card's picture is shown at most 96 px wide (twice that for a sharp screen)

# name -> (label, variant); the arrows carry their word too, for a screen reader and a newcomer
ACTIONS = {"stop": ("Stop", "stop"), "cancel": ("Cancel", "secondary"), "up": ("↑ Up", "secondary"),
           "down": ("↓ Down", "secondary"), "resume": ("Resume", "primary"), "retry": ("Retry", "primary"),
           "remove": ("Remove", "secondary")}
# what a running job is doing, in a word (queue/status.py names the states)
DOING = {"downloading": "Downloading the model", "extracting": "Making the control", "loading": "Loading the model",
         "running": "Running", "finishing": "Finishing", "saving": "Saving the video"}
ENDED = {"done": "Done", "failed": "Failed", "cancelled": "Stopped", "interrupted": "Interrupted"}
FINISHING_NAMES = {"upscale": "Upscale", "interpolate": "Smooth"}  # the jobs with no page of their own


@dataclass(frozen=True)
class Card:
    """One job as the page draws it: plain values, so a list of cards in a gr.State compares by value."""

    job_id: str
    state: str
    body: str  # the card's HTML: picture, prompt, mode and checkpoint, bar, time left or outcome
    actions: tuple[tuple[str, bool], ...]  # (ACTIONS name, enabled), in the order the buttons stand


@dataclass
class QueuePage:
    column: gr.Column
    action_status: gr.Markdown
    active: gr.State  # tuple[Card, ...]: running jobs, then queued ones in the order they will run
    finished: gr.State  # tuple[Card, ...]: newest first
    active_box: gr.Column  # where the active cards are drawn
    finished_box: gr.Accordion  # "Finished (N)", folded
    batch: gr.File
    batch_status: gr.Markdown
    stats_text: gr.Markdown
    percent_plot: gr.LinePlot
    memory_plot: gr.LinePlot
    stats_at: gr.State  # when this tab's plots were last drawn (time.monotonic())
    opened: gr.Number  # stamped when the page opens: it lists the jobs at once (see wire_queue_page)
    timer: gr.Timer
    opener: tuple | None = None  # (fn, inputs, outputs) the shell runs when the page opens


def build_queue_page(visible: bool) -> QueuePage:
    with gr.Column(visible=visible, elem_id="panel-queue") as column:
        gr.Markdown("### Queue & Stats")
        action_status = gr.Markdown(elem_id="queue-action-status")
        active = gr.State(None)  # None until the page first lists the jobs
        finished = gr.State(None)
        active_box = gr.Column(elem_id="queue-active")
        with gr.Accordion("Finished (0)", open=False, elem_id="queue-finished") as finished_box:
            pass
        batch = gr.File(label="Batch file (JSON or CSV: one request per row)", file_types=[".json", ".csv"],
                        type="filepath", height=160, elem_id="queue-batch")
        batch_status = gr.Markdown(elem_id="queue-batch-status")
        stats_text = gr.Markdown("Collecting system figures…", elem_id="stats-text")
        with gr.Row():
            percent_plot = gr.LinePlot(x="seconds", y="value", color="series", title="Utilisation (%)",
                                       y_lim=[0, 100], height=220, elem_id="stats-percent")
            memory_plot = gr.LinePlot(x="seconds", y="value", color="series", title="Memory (GB)", height=220,
                                      elem_id="stats-memory")
        stats_at = gr.State(0.0)
        opened = gr.Number(elem_classes="wan-hidden", container=False, show_label=False)
    # outside the page's column, so it is on the page from the start: gradio mounts a hidden column's
    # children only when it shows, and a timer mounted by the update that also switches it on gets the
    # switch from gradio's store for components not yet mounted (had it missed it, the lists would never
    # refresh)
    timer = gr.Timer(1.0, active=visible)
    return QueuePage(column, action_status, active, finished, active_box, finished_box, batch, batch_status,
                     stats_text, percent_plot, memory_plot, stats_at, opened, timer)


# -- what the cards say (no gradio here) -------------------------------------------------------------
def queue_rows(settings: Settings, owner: str | None) -> list[list]:
    """The facts the cards show, one row per job (QUEUE_HEADERS): what scripts and tests read."""
    store = get_studio(settings).store
    # a result by its name: the folder it is kept in is the server's business, not every visitor's
    return [[j.id, j.state, store.queue_position(j.id) if j.state == "queued" else "",
             seat_label(j.devices) if j.state == "running" else "",
             status_of(j).describe() if j.state == "running" and j.progress else "", j.mode, j.model,
             request_summary(j.request), Path(j.result_path).name if j.result_path
             else (j.error_message or (j.messages[-1] if j.resumable else ""))]
            for j in store.list(owner=owner, history_limit=FINISHED_SHOWN)]


def cards_of(settings: Settings, owner: str | None) -> tuple[tuple[Card, ...], tuple[Card, ...]]:
    """(active cards, finished cards) of the jobs `owner` sees (everyone's where owner is None)."""
    studio = get_studio(settings)
    jobs = studio.store.list(owner=owner, history_limit=FINISHED_SHOWN)
    # the place in the whole line: on a shared deployment others' jobs hold places too
    line = {job.id: place for place, job in enumerate(studio.store.list(states=(QUEUED,)))}
    active, finished = [], []
    for job in jobs:
        if job.state == QUEUED and job.id in line:  # (not yet in line: it started meanwhile)
            place = line[job.id]
            status = JobStatus(QUEUED, job.id, position=place + 1)
            active.append(Card(job.id, job.state, active_body(job, status, _picture(studio, job, None)),
                               (("up", place > 0), ("down", place < len(line) - 1), ("cancel", True))))
        elif job.state == RUNNING:
            status = _status(studio, job)
            active.append(Card(job.id, status.state, active_body(job, status, _picture(studio, job, status.preview)),
                               (("stop", not job.stop_requested),)))
        elif job.is_final:
            again = ("resume",) if job.resumable else ("retry",) if job.state in RETRYABLE_STATES else ()
            finished.append(Card(job.id, job.state, finished_body(job, _picture(studio, job, None)),
                                 tuple((name, True) for name in (*again, "remove"))))
    return tuple(active), tuple(finished)


def _status(studio, job) -> JobStatus:
    try:
        return studio.status(job.id)  # with the live preview where this process runs it
    except StudioError:  # removed meanwhile
        return status_of(job)


def what_of(job) -> str:
    """The whole prompt, or what a finishing job does to which result."""
    return job.prompt.strip() or request_summary(job.request, width=200) or mode_name(job.mode)


def mode_name(mode: str) -> str:
    try:
        return mode_label(mode)
    except StudioError:
        return FINISHING_NAMES.get(mode, mode.upper())


def checkpoint_of(job) -> str:
    model = job.model
    if not model:
        return ""
    try:
        return catalog.get(model).name
    except StudioError:  # a finishing job's helper model, or a checkpoint this catalog lacks
        return model


def active_body(job, status: JobStatus, picture: str) -> str:
    """A running or queued job's card: picture, whole prompt, mode and checkpoint, bar and time left."""
    if status.state == QUEUED:
        doing = "Queued: next in line" if status.position == 1 else f"Queued: {_ordinal(status.position)} in line"
    else:
        doing = DOING.get(status.state, status.state.capitalize())
        if job.devices:
            doing += f" on {seat_label(job.devices)}"
    return _body(job, status.state, picture, doing, progress_bar(status), html.escape(time_words(status)))


def finished_body(job, picture: str) -> str:
    """A finished job's card: how it ended, when, and its result's name or what went wrong."""
    state = "Cancelled" if job.state == "cancelled" and not job.started else ENDED.get(job.state, job.state)
    when = ""
    if job.finished:  # the hour alone for today's jobs
        today = time.strftime("%Y%m%d") == time.strftime("%Y%m%d", time.localtime(job.finished))
        when = f"ended {time.strftime('%H:%M' if today else '%d %b %H:%M', time.localtime(job.finished))}"
    if job.result_path:  # a result by its name: the folder it is kept in is the server's business
        outcome = f"Saved as {Path(job.result_path).name}"
    elif job.state == "failed":
        outcome = f"Failed: {job.error_message or 'no reason was recorded'}"
    else:
        outcome = job.error_message or (job.messages[-1] if job.messages else "")
    ended = f"{state} · {when}" if when else state
    return _body(job, job.state, picture, ended, "", html.escape(outcome))


def _body(job, state: str, picture: str, doing: str, bar: str, words: str) -> str:
    meta = " · ".join(html.escape(part) for part in (doing, mode_name(job.mode), checkpoint_of(job)) if part)
    words = f'<p class="queue-time">{words}</p>' if words else ""
    return (f'<div class="queue-job" data-job="{html.escape(job.id)}" data-state="{html.escape(state)}">'
            f'<div class="queue-thumb">{picture}</div><div class="queue-words">'
            f'<p class="queue-prompt">{html.escape(what_of(job))}</p><p class="queue-meta">{meta}</p>'
            f'{bar}{words}</div></div>')


def progress_bar(status: JobStatus) -> str:
    """A bar of the job's steps (or frames); one that moves on its own while the work cannot be counted."""
    if status.state == QUEUED or status.is_final:
        return ""
    if status.total:
        return (f'<progress value="{status.step}" max="{status.total}" '
                f'aria-label="{round(100 * status.step / status.total)}% done"></progress>')
    return '<progress aria-label="Under way"></progress>'


def time_words(status: JobStatus) -> str:
    """"Step 5/30 · clip 1/2 · about 40 s left", or the state's own words where nothing is counted."""
    if status.state == QUEUED:
        return ""
    if status.state == "downloading" or not status.total:
        return status.describe() if status.state == "downloading" else f"{duration_words(status.elapsed_s)} so far"
    unit = "Frame" if status.state in ("extracting", "finishing") else "Step"
    parts = [f"{unit} {status.step}/{status.total}"]
    if status.clip:
        parts.append(f"clip {status.clip}/{status.clips}")
    parts.append(f"about {duration_words(status.remaining_s)} left" if status.remaining_s is not None
                 else f"{duration_words(status.elapsed_s)} so far")
    return " · ".join(parts)


def duration_words(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def _ordinal(n: int | None) -> str:
    n = n or 0
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


# -- pictures: the live preview, a result's thumbnail, or the mode's icon ----------------------------
_pictures_lock = threading.Lock()
_thumbnails: dict[str, str] = {}  # result id -> its thumbnail as a data URI (a result's thumbnail never changes)
_previews: dict[str, tuple[object, str]] = {}  # job id -> (the preview array, its data URI): encoded once
_icons: dict[str, str] = {}


def _picture(studio, job, preview) -> str:
    if preview is not None:
        return f'<img alt="Live preview of the job" src="{_preview_uri(job.id, preview)}">'
    result_id = job.result_id or (job.request or {}).get("parent")  # a finishing job: the result it works on
    uri = _thumbnail_uri(studio, result_id) if result_id else None
    if uri:
        return f'<img alt="Thumbnail of the result" src="{uri}">'
    return _icon_svg(job.mode)


def _preview_uri(job_id: str, preview) -> str:
    with _pictures_lock:
        seen = _previews.get(job_id)
        if seen is not None and seen[0] is preview:
            return seen[1]
    uri = _jpeg_uri(Image.fromarray(np.asarray(preview, dtype=np.uint8)))
    with _pictures_lock:
        _previews[job_id] = (preview, uri)
        for old in list(_previews)[:-8]:  # the jobs running now, and a few that just ended
            del _previews[old]
    return uri


def _thumbnail_uri(studio, result_id: str) -> str | None:
    with _pictures_lock:
        if result_id in _thumbnails:
            return _thumbnails[result_id]
    result = studio.engine.library.get(result_id)
    if result is None or not result.thumbnail.is_file():
        return None
    try:
        with Image.open(result.thumbnail) as image:
            uri = _jpeg_uri(image.convert("RGB"))
    except OSError:  # a thumbnail being written, or damaged: the icon stands in
        return None
    with _pictures_lock:
        _thumbnails[result_id] = uri
        for old in list(_thumbnails)[:-4 * FINISHED_SHOWN]:
            del _thumbnails[old]
    return uri


def _jpeg_uri(image: Image.Image) -> str:
    if image.width > PICTURE_WIDTH:
        image = image.resize((PICTURE_WIDTH, max(2, round(image.height * PICTURE_WIDTH / image.width))))
    buffer = BytesIO()
    image.save(buffer, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _icon_svg(mode: str) -> str:
    """The mode's icon drawn in the text's colour (the files are drawn light, for the dark sidebar)."""
    if mode not in _icons:
        path = icon(mode) or icon("gallery")  # a finishing job (upscale, smooth) has no icon of its own
        svg = Path(path).read_text(encoding="utf-8") if path else ""
        svg = svg.replace('stroke="#e5e7eb"', 'stroke="currentColor"').replace("<svg ", '<svg aria-hidden="true" ', 1)
        _icons[mode] = svg.replace('width="20" height="20"', 'width="28" height="28"')
    return _icons[mode]


# -- the job's actions -------------------------------------------------------------------------------
def act(studio, name: str, job_id: str, owner: str | None) -> str:
    """Do one card's action on its job; the words the page shows. Raises StudioError when it cannot be done."""
    job = studio.store.get(job_id)
    if job is None or (owner is not None and job.owner != owner):
        raise StudioError("That job is no longer in the queue (it was removed); the list is now up to date.")
    what = what_of(job)
    what = f"“{what if len(what) <= 60 else what[:59] + '…'}”"
    if name in ("stop", "cancel"):  # a queued job is cancelled, a running one stopped at its next step
        studio.worker.stop_job(job.id)
        return f"Stopping {what}." if job.state == RUNNING else f"Cancelled {what}."
    if name in ("up", "down"):
        studio.store.move(job.id, name)
        return f"Moved {what} {name}."
    if name == "resume":  # goes on after the windows it kept
        studio.resume(job.id)
        return f"Resumed {what}: it goes on after the windows it kept."
    if name == "retry":
        studio.store.retry(job.id)
        studio.worker.notify()
        return f"Queued {what} again."
    if name == "remove":
        studio.store.remove(job.id)
        return f"Removed {what} from the list."
    raise StudioError(f"Unknown action {name!r}; the page offers {', '.join(ACTIONS)}.")


# -- the page's wiring ---------------------------------------------------------------------------------
def stats_frames(settings: Settings):
    """Two long-format tables (seconds ago, value, series) for the plots."""
    from wan_studio.runtime.stats import format_sample

    sampler = get_studio(settings).sampler
    samples = sampler.history(300)
    percent, memory = [], []
    now = samples[-1].time if samples else 0
    for s in samples:
        t = round(s.time - now, 1)
        if s.cpu_percent is not None:
            percent.append((t, s.cpu_percent, "CPU"))
        if s.ram_used_gb is not None:
            memory.append((t, s.ram_used_gb, "RAM"))
        for gpu in s.gpus:
            if gpu.util_percent is not None:
                percent.append((t, gpu.util_percent, f"GPU {gpu.index}"))
            if gpu.memory_used_gb is not None:
                memory.append((t, gpu.memory_used_gb, f"VRAM {gpu.index}"))
    columns = ["seconds", "value", "series"]
    figures = format_sample(sampler.latest())
    text = " · ".join(f"**{name}** {value}" for name, value in figures.items() if value != "n/a" or name == "GPU")
    return text, pd.DataFrame(percent, columns=columns), pd.DataFrame(memory, columns=columns)


def wire_queue_page(q: QueuePage, settings: Settings) -> None:
    # Every event that sets the lists is queued: Gradio 6.31 draws a @gr.render again when a queued
    # event changes its State, but not when an unqueued one does (the State would change unseen, and
    # later refreshes, finding it equal, would never draw it). The shell runs the opener unqueued, so
    # it draws the plots and stamps `opened`, whose change lists the jobs.
    private = dict(api_visibility="private", concurrency_limit=None)
    quiet = dict(private, show_progress="hidden")
    lists = [q.active, q.finished, q.finished_box]
    stats = [q.stats_text, q.percent_plot, q.memory_plot, q.stats_at]

    def listed(request: gr.Request) -> list:
        active, finished = cards_of(settings, owner_of(settings, request))
        return [active, finished, gr.update(label=f"Finished ({len(finished)})")]

    def plotted() -> list:
        return [*stats_frames(settings), time.monotonic()]

    def tick(stats_at: float, request: gr.Request):
        return listed(request) + (plotted() if time.monotonic() - stats_at >= STATS_EVERY_S else [gr.skip()] * 4)

    q.opener = (lambda: plotted() + [time.time()], None, stats + [q.opened])
    q.opened.change(listed, None, lists, **quiet)
    q.timer.tick(tick, q.stats_at, lists + stats, **quiet)

    def action(name: str, job_id: str):
        def run(request: gr.Request):
            try:
                said = act(get_studio(settings), name, job_id, owner_of(settings, request))
            except StudioError as exc:
                said = f"⚠ {exc}"
            return listed(request) + [said]

        return run

    def draw(cards: tuple[Card, ...], where: str) -> None:
        for card in cards:
            with gr.Row(key=f"{where}-{card.job_id}", elem_id=f"queue-{where}-{card.job_id}",
                        elem_classes=["queue-card"], equal_height=False):
                gr.HTML(card.body, key=f"{where}-{card.job_id}-body", preserved_by_key=None, js_on_load=None,
                        elem_classes=["queue-card-body"], scale=1, min_width=260)
                with gr.Row(key=f"{where}-{card.job_id}-actions", elem_classes=["queue-card-actions"]):
                    for name, enabled in card.actions:
                        label, variant = ACTIONS[name]
                        button = gr.Button(label, variant=variant, size="sm", interactive=enabled, scale=0,
                                           min_width=72, key=f"{where}-{card.job_id}-{name}",
                                           elem_id=f"queue-{name}-{card.job_id}")
                        button.click(action(name, card.job_id), None, [*lists, q.action_status], **quiet)

    # the two lists are drawn one at a time: gradio 6.31 runs renders unlimited by default, and two of one
    # session at once race on its blocks ("dictionary changed size during iteration" in attach_load_events)
    one_at_a_time = dict(concurrency_limit=1, concurrency_id="queue-cards", show_progress="hidden")
    with q.active_box:
        @gr.render(inputs=q.active, **one_at_a_time)  # on load, and each time the list changes
        def draw_active(cards):
            if cards is None:
                gr.Markdown("Reading the queue…", key="active-reading")
            elif not cards:
                gr.Markdown("Nothing is running or waiting. Generate in a mode, or queue a batch file below.",
                            key="active-none", elem_id="queue-none")
            draw(cards or (), "card")

    with q.finished_box:
        @gr.render(inputs=q.finished, **one_at_a_time)
        def draw_finished(cards):
            if cards == ():
                gr.Markdown("No job has ended yet.", key="finished-none")
            draw(cards or (), "finished")

    def upload_batch(path, request: gr.Request):
        from wan_studio.queue.batch import load_batch

        # the file box empties after each upload, ready for the next batch
        if not path:
            return [gr.update()] * 4 + [None]
        try:
            requests = load_batch(path, settings)
            jobs = get_studio(settings).worker.add_many(requests, owner=owner_of(settings, request))
        except StudioError as exc:
            return [f"⚠ Nothing was queued: {exc}"] + [gr.update()] * 3 + [None]
        return [f"Queued {len(jobs)} job(s) from the batch file."] + listed(request) + [None]

    q.batch.upload(upload_batch, q.batch, [q.batch_status, *lists, q.batch], **private)
