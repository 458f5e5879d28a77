"""Queue & Stats: the queue as a table with its actions and batch upload; CPU / RAM / GPU / VRAM plots."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import pandas as pd

from ui.runtime import get_studio, owner_of
from wan_studio.errors import StudioError
from wan_studio.settings import Settings

QUEUE_HEADERS = ["job", "state", "position", "on", "progress", "mode", "model", "prompt", "result / message"]


@dataclass
class QueuePage:
    column: gr.Column
    table: gr.Dataframe
    job: gr.Textbox
    actions: dict
    action_status: gr.Markdown
    batch: gr.File
    batch_status: gr.Markdown
    stats_text: gr.Markdown
    percent_plot: gr.LinePlot
    memory_plot: gr.LinePlot
    timer: gr.Timer
    opener: tuple | None = None  # (fn, inputs, outputs) the shell runs when the page opens


def build_queue_page(visible: bool) -> QueuePage:
    with gr.Column(visible=visible, elem_id="panel-queue") as column:
        gr.Markdown("### Queue & Stats")
        table = gr.Dataframe(headers=QUEUE_HEADERS, interactive=False, elem_id="queue-table")
        with gr.Row():
            job = gr.Textbox(label="Job id (click a row)", scale=2, elem_id="queue-job")
            actions = {name: gr.Button(label, size="sm", elem_id=f"queue-{name}")
                       for name, label in (("cancel", "Cancel"), ("stop", "Stop"), ("remove", "Remove"),
                                           ("up", "Move up"), ("down", "Move down"), ("retry", "Retry"))}
        action_status = gr.Markdown(elem_id="queue-action-status")
        batch = gr.File(label="Batch file (JSON or CSV: one request per row)", file_types=[".json", ".csv"],
                        type="filepath", height=160, elem_id="queue-batch")
        batch_status = gr.Markdown(elem_id="queue-batch-status")
        stats_text = gr.Markdown("Collecting system figures…", elem_id="stats-text")
        with gr.Row():
            percent_plot = gr.LinePlot(x="seconds", y="value", color="series", title="Utilisation (%)",
                                       y_lim=[0, 100], height=220, elem_id="stats-percent")
            memory_plot = gr.LinePlot(x="seconds", y="value", color="series", title="Memory (GB)", height=220,
                                      elem_id="stats-memory")
        timer = gr.Timer(2.0, active=visible)
    return QueuePage(column, table, job, actions, action_status, batch, batch_status, stats_text, percent_plot,
                     memory_plot, timer)


def queue_rows(settings: Settings, owner: str | None) -> list[list]:
    from wan_studio.queue.job import request_summary
    from wan_studio.queue.pool import seat_label
    from wan_studio.queue.status import status_of

    store = get_studio(settings).store
    # a result by its name: the folder it is kept in is the server's business, not every visitor's
    return [[j.id, j.state, store.queue_position(j.id) if j.state == "queued" else "",
             seat_label(j.devices) if j.state == "running" else "",
             status_of(j).describe() if j.state == "running" and j.progress else "", j.mode, j.model,
             request_summary(j.request), Path(j.result_path).name if j.result_path else (j.error_message or "")]
            for j in store.list(owner=owner, history_limit=50)]


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
    private = dict(api_visibility="private")

    def refresh(request: gr.Request):
        text, percent, memory = stats_frames(settings)
        return queue_rows(settings, owner_of(settings, request)), text, percent, memory

    outputs = [q.table, q.stats_text, q.percent_plot, q.memory_plot]
    q.opener = (refresh, None, outputs)
    q.timer.tick(refresh, None, outputs, show_progress="hidden", **private)
    def pick(evt: gr.SelectData):
        return evt.row_value[0] if evt.row_value else ""

    q.table.select(pick, None, q.job, queue=False, **private)

    def act(name):
        def run(job_id, request: gr.Request):
            studio = get_studio(settings)
            job = studio.store.get(str(job_id or "").strip())
            owner = owner_of(settings, request)
            if job is None or (owner is not None and job.owner != owner):
                return f"⚠ There is no job {job_id!r} of yours in the queue.", queue_rows(settings, owner)
            try:
                if name == "cancel":
                    studio.store.cancel(job.id)
                elif name == "stop":
                    studio.worker.stop_job(job.id)
                elif name == "remove":
                    studio.store.remove(job.id)
                elif name in ("up", "down"):
                    studio.store.move(job.id, name)
                elif name == "retry":
                    studio.store.retry(job.id)
                    studio.worker.notify()
            except StudioError as exc:
                return f"⚠ {exc}", queue_rows(settings, owner)
            return f"{name.capitalize()}: applied to job {job.id}.", queue_rows(settings, owner)

        return run

    for name, button in q.actions.items():
        button.click(act(name), q.job, [q.action_status, q.table], concurrency_limit=None, **private)

    def upload_batch(path, request: gr.Request):
        from wan_studio.queue.batch import load_batch

        # the file box empties after each upload, ready for the next batch
        if not path:
            return gr.update(), gr.update(), None
        try:
            requests = load_batch(path, settings)
            jobs = get_studio(settings).worker.add_many(requests, owner=owner_of(settings, request))
        except StudioError as exc:
            return f"⚠ Nothing was queued: {exc}", gr.update(), None
        owner = owner_of(settings, request)
        return f"Queued {len(jobs)} job(s) from the batch file.", queue_rows(settings, owner), None

    q.batch.upload(upload_batch, q.batch, [q.batch_status, q.table, q.batch], concurrency_limit=None, **private)
