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

_engine = None
_engine_lock = threading.Lock()


def get_engine(settings: Settings):
    """One engine per process, made on first use (this is where torch gets imported)."""
    global _engine
    with _engine_lock:
        if _engine is None:
            from wan_studio.engine import Engine

            _engine = Engine(settings)
        return _engine


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
    video: gr.Video
    status: gr.Markdown
    recipe: gr.JSON

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
            generate = gr.Button("Generate", variant="primary", size="lg")
        with gr.Column(scale=3):
            video = gr.Video(label="Result", autoplay=True, loop=True, interactive=False)
            status = gr.Markdown()
            with gr.Accordion("Recipe", open=False):
                recipe = gr.JSON()
    return T2VControls(model, prompt, size, frames, duration, negative_prompt, steps, guidance, guidance_2,
                       flow_shift, seed, randomize, generate, video, status, recipe)


def make_run_t2v(settings: Settings):
    def run_t2v(model, prompt, size, frames, steps, guidance, guidance_2, flow_shift, seed, randomize,
                negative_prompt, progress=gr.Progress()):
        from wan_studio.requests import T2VRequest

        record = catalog.get(model)
        try:
            width, height = (int(v) for v in str(size).lower().split("x"))
        except ValueError:
            raise gr.Error(f"Size must look like 832x480; got {size!r}.")
        try:
            request = T2VRequest(
                model=model, prompt=prompt or "", negative_prompt=negative_prompt or None, width=width, height=height,
                frames=_int(frames), steps=_int(steps), guidance=float(guidance),
                guidance_2=float(guidance_2) if record.is_moe else None, flow_shift=float(flow_shift),
                seed=None if randomize else _int(seed),
            )
            engine = get_engine(settings)
            started = time.perf_counter()

            def on_progress(event):
                if event.stage == "denoising":
                    progress((event.step, event.total), desc=event.describe(), unit="steps")
                else:
                    progress(None, desc=event.describe())

            result = engine.generate(request, on_progress=on_progress)
        except StudioError as exc:
            raise gr.Error(str(exc))
        out = result.recipe["output"]
        status = (f"Saved **{result.media.name}**: {out['frames']} frames, {out['width']}x{out['height']}, "
                  f"{out['fps']} fps, seed {request.seed}, {time.perf_counter() - started:.1f} s.")
        return str(result.media), status, result.recipe

    return run_t2v


def _int(value):
    return int(value) if isinstance(value, float) and value.is_integer() else value


def wire(c: T2VControls, settings: Settings) -> None:
    c.model.change(model_defaults, c.model, [c.size, c.frames, c.duration, c.steps, c.guidance, c.guidance_2, c.flow_shift],
                   queue=False, api_visibility="private")
    c.frames.change(lambda f, m: duration_text(int(f), catalog.get(m)), [c.frames, c.model], c.duration,
                    queue=False, api_visibility="private")
    c.generate.click(make_run_t2v(settings), c.request_inputs(), [c.video, c.status, c.recipe],
                     api_name="t2v_page", api_visibility="private", concurrency_id="gpu", concurrency_limit=1)


def build_first_page(settings: Settings) -> gr.Blocks:
    from ui.api import register_api

    with gr.Blocks(title="Wan Studio") as demo:
        controls = build_layout(settings)
        wire(controls, settings)
        register_api(lambda request: get_engine(settings).generate(request))
    return demo


def theme():
    return gr.themes.Default(primary_hue="indigo", neutral_hue="slate")
