"""A first page: text to video through the engine, with a progress bar.

Layout first, wiring after. Torch and diffusers load on the first Generate, not before, so the
page opens about as fast as a bare Gradio app. (The full studio shell is its own piece of work.)
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import gradio as gr

from wan_studio import catalog
from wan_studio.backend import probe_light
from wan_studio.defaults import default_model_id
from wan_studio.errors import StudioError
from wan_studio.settings import Settings

_studio = None
_studio_lock = threading.Lock()


def get_studio(settings: Settings):
    """The process's studio runtime (engine, queue, worker, stats). Torch loads with the first job."""
    global _studio
    with _studio_lock:
        if _studio is None:
            from wan_studio.studio import Studio

            _studio = Studio(settings)
        return _studio


def owner_of(settings: Settings, request: gr.Request | None) -> str | None:
    """On a shared deployment each browser session sees only its own jobs; locally, everything."""
    return request.session_hash if settings.multi_user and request is not None else None


def banner_text() -> str:
    backend = probe_light()
    if not backend.has_gpu:
        return (
            f"**Backend: {backend.describe()}.** No GPU found, so the studio runs the built-in *Tiny* models: "
            "random weights at toy size. Every setting works end to end, **but the output is noise**, not a real video."
        )
    return f"**Backend: {backend.describe()}.** Real checkpoints download on first use."


def model_choices() -> list[tuple[str, str]]:
    return [(f"{c.name}  [{c.generation}]", c.id) for c in catalog.for_mode("t2v")]


def size_choices(record) -> list[str]:
    return [f"{w}x{h}" for w, h in record.sizes]


def duration_text(frames: int, record) -> str:
    return f"{frames} frames = {frames / record.fps:.2f} s at {record.fps} fps"


@dataclass
class T2VControls:
    model: gr.Dropdown
    prompt: gr.Textbox
    size: gr.Dropdown
    frames: gr.Slider
    duration: gr.Markdown
    negative_prompt: gr.Textbox
    steps: gr.Slider
    guidance: gr.Slider
    guidance_2: gr.Slider
    flow_shift: gr.Slider
    seed: gr.Number
    randomize: gr.Checkbox
    generate: gr.Button
    stop: gr.Button
    job_id: gr.State
    video: gr.Video
    preview: gr.Image
    status: gr.Markdown
    recipe: gr.JSON
    stats: gr.Markdown
    queue: gr.Dataframe
    timer: gr.Timer

    def request_inputs(self) -> list:
        return [self.model, self.prompt, self.size, self.frames, self.steps, self.guidance, self.guidance_2,
                self.flow_shift, self.seed, self.randomize, self.negative_prompt]


def model_defaults(model_id: str):
    """Updates that put a checkpoint's legal values and defaults into the controls."""
    record = catalog.get(model_id)
    return (
        gr.update(choices=size_choices(record), value=size_choices(record)[0]),
        gr.update(minimum=record.frames_min, maximum=record.frames_max, step=4, value=record.frames_default),
        duration_text(record.frames_default, record),
        gr.update(value=record.steps),
        gr.update(value=record.guidance, label="Guidance (high-noise expert)" if record.is_moe else "Guidance"),
        gr.update(value=record.guidance_2 or record.guidance, visible=record.is_moe),
        gr.update(value=record.flow_shift_for(*record.default_size)),
    )


def build_layout(settings: Settings) -> T2VControls:
    first = catalog.get(default_model_id("t2v", settings))
    gr.Markdown("# Wan Studio\nText to video with the open Wan models.")
    gr.Markdown(banner_text(), elem_id="backend-banner")
    with gr.Row(equal_height=False):
        with gr.Column(scale=2):
            model = gr.Dropdown(model_choices(), value=first.id, label="Model")
            prompt = gr.Textbox(label="Prompt", lines=4, placeholder="A red fox runs through fresh snow at dawn, tracking shot")
            with gr.Row():
                size = gr.Dropdown(size_choices(first), value=size_choices(first)[0], label="Size (W x H)")
                frames = gr.Slider(first.frames_min, first.frames_max, value=first.frames_default, step=4, label="Frames (4k+1)")
            duration = gr.Markdown(duration_text(first.frames_default, first))
            with gr.Accordion("Advanced", open=False):
                negative_prompt = gr.Textbox(label="Negative prompt (empty = Wan's standard one)", lines=2)
                steps = gr.Slider(1, 100, value=first.steps, step=1, label="Steps")
                guidance = gr.Slider(0, 20, value=first.guidance, step=0.1, label="Guidance")
                guidance_2 = gr.Slider(0, 20, value=first.guidance_2 or first.guidance, step=0.1,
                                       label="Guidance (low-noise expert)", visible=first.is_moe)
                flow_shift = gr.Slider(0.5, 30, value=first.flow_shift_for(*first.default_size), step=0.5, label="Flow shift")
                with gr.Row():
                    seed = gr.Number(value=0, precision=0, label="Seed", minimum=0)
                    randomize = gr.Checkbox(value=True, label="Random seed")
            with gr.Row():
                generate = gr.Button("Generate", variant="primary", size="lg", scale=3)
                stop = gr.Button("Stop", variant="stop", size="lg", scale=1)
            job_id = gr.State(None)
        with gr.Column(scale=3):
            video = gr.Video(label="Result", autoplay=True, loop=True, interactive=False)
            preview = gr.Image(label="Live preview (approximate, from the latents)", height=160, interactive=False)
            status = gr.Markdown()
            with gr.Accordion("Recipe", open=False):
                recipe = gr.JSON()
    with gr.Accordion("Queue and system", open=False):
        stats = gr.Markdown("Collecting system figures...")
        queue = gr.Dataframe(headers=["job", "state", "mode", "model", "prompt", "result"], interactive=False)
    timer = gr.Timer(2.0)
    return T2VControls(model, prompt, size, frames, duration, negative_prompt, steps, guidance, guidance_2,
                       flow_shift, seed, randomize, generate, stop, job_id, video, preview, status, recipe,
                       stats, queue, timer)


def make_submit_t2v(settings: Settings):
    """Validate and enqueue; returns at once with the job id (the wait is a separate step)."""

    def submit_t2v(model, prompt, size, frames, steps, guidance, guidance_2, flow_shift, seed, randomize,
                   negative_prompt, request: gr.Request):
        from wan_studio.requests import T2VRequest

        record = catalog.get(model)
        try:
            width, height = (int(v) for v in str(size).lower().split("x"))
        except ValueError:
            raise gr.Error(f"Size must look like 832x480; got {size!r}.")
        try:
            t2v_request = T2VRequest(
                model=model, prompt=prompt or "", negative_prompt=negative_prompt or None, width=width, height=height,
                frames=_int(frames), steps=_int(steps), guidance=float(guidance),
                guidance_2=float(guidance_2) if record.is_moe else None, flow_shift=float(flow_shift),
                seed=None if randomize else _int(seed),
            )
            job = get_studio(settings).submit(t2v_request, owner=owner_of(settings, request))
        except StudioError as exc:
            raise gr.Error(str(exc))
        position = get_studio(settings).store.queue_position(job.id)
        return job.id, f"Queued as job **{job.id}**" + (f", position {position}." if position else ".")

    return submit_t2v


def make_wait_t2v(settings: Settings):
    """Wait for the job, with queue position, step progress and remaining time on the way."""

    def wait_t2v(job_id, progress=gr.Progress()):
        studio = get_studio(settings)
        job = studio.store.get(job_id) if job_id else None
        if job is None:
            raise gr.Error("There is no job to wait for.")
        started = time.perf_counter()

        def on_update(waiting):
            if waiting.total:
                progress((waiting.step, waiting.total), desc=waiting.describe(), unit="steps")
            else:
                progress(None, desc=waiting.describe())

        try:
            result = studio.wait_for_result(job, on_update=on_update)
        except StudioError as exc:
            raise gr.Error(str(exc))
        out = result.recipe["output"]
        status = (f"Saved **{result.media.name}**: {out['frames']} frames, {out['width']}x{out['height']}, "
                  f"{out['fps']} fps, seed {result.recipe['request']['seed']}, {time.perf_counter() - started:.1f} s.")
        return str(result.media), status, result.recipe

    return wait_t2v


def _int(value):
    return int(value) if isinstance(value, float) and value.is_integer() else value


def stats_text() -> str:
    from wan_studio.stats import format_sample, get_sampler

    figures = format_sample(get_sampler().latest())
    return " · ".join(f"**{name}** {value}" for name, value in figures.items() if value != "n/a" or name == "GPU")


def queue_rows(settings: Settings, request: gr.Request | None) -> list[list[str]]:
    from wan_studio.jobs import request_summary

    jobs = get_studio(settings).store.list(owner=owner_of(settings, request), history_limit=20)
    return [[j.id, j.state, j.mode, j.model, request_summary(j.request), j.result_path or j.error_message or ""]
            for j in jobs]


def live_preview(job_id):
    if not job_id or _studio is None:
        return gr.update()
    try:
        preview = _studio.status(job_id).preview
    except StudioError:
        return gr.update()
    return preview if preview is not None else gr.update()


def stop_job(job_id):
    if job_id and _studio is not None:
        try:
            _studio.worker.stop_job(job_id)
        except StudioError as exc:
            gr.Warning(str(exc))


def wire(c: T2VControls, settings: Settings) -> None:
    private = dict(api_visibility="private")
    c.model.change(model_defaults, c.model, [c.size, c.frames, c.duration, c.steps, c.guidance, c.guidance_2, c.flow_shift],
                   queue=False, **private)
    c.frames.change(lambda f, m: duration_text(int(f), catalog.get(m)), [c.frames, c.model], c.duration,
                    queue=False, **private)
    # our own queue orders the work, so these handlers may run side by side: each only waits on its job
    c.generate.click(make_submit_t2v(settings), c.request_inputs(), [c.job_id, c.status], concurrency_limit=None,
                     **private).success(make_wait_t2v(settings), c.job_id, [c.video, c.status, c.recipe],
                                        concurrency_limit=None, **private)
    c.stop.click(stop_job, c.job_id, None, queue=False, **private)

    def refresh(request: gr.Request):
        return stats_text(), queue_rows(settings, request)

    c.timer.tick(refresh, None, [c.stats, c.queue], **private)
    c.timer.tick(live_preview, c.job_id, c.preview, **private)


def build_first_page(settings: Settings) -> gr.Blocks:
    from ui.api import register_api

    studio = get_studio(settings)
    with gr.Blocks(title="Wan Studio") as demo:
        if studio.warning:
            gr.Markdown(f"**Queue warning:** {studio.warning}")
        controls = build_layout(settings)
        wire(controls, settings)
        register_api(settings, get_studio)
    return demo


def theme():
    return gr.themes.Default(primary_hue="indigo", neutral_hue="slate")
