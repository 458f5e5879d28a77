"""One builder for every mode panel, driven by what the mode's request class declares (its fields,
and its ModeInfo: prompt label, placements, what it can do).

A panel is inputs on the left (the mode's distinctive inputs, prompt, size, frames, the Advanced
accordion, Generate / Stop and the cost line) and output on the right (progress card, live
preview, the player, the recipe and the "Send to" chips). Submitting builds the mode's typed
request (the same class the API and the CLI build), so validation and messages are identical;
a refused request shows its message next to the input that caused it and queues nothing. The
tools beside the inputs and the result (first-frame click, controls made now, favourites, recent
prompts, Smooth, ...) are in ui/panel_tools.py; the choices (sizes, the Frames slider's top) in
ui/panel_specs.py.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

import gradio as gr

import pipelines
from ui import panel_tools as tools
from ui.availability import mode_label
from ui.panel_inputs import FieldSlider, error_slot, mode_inputs, window_inputs
from ui.panel_specs import (
    COMMON_FIELDS,
    build_request,
    frames_ceiling,
    is_shown,
    request_class,
    send_targets,
    sends_last_frame,
    size_choices,
    spec,
)
from ui.progress_cards import final_card, idle_card, progress_card
from ui.runtime import get_studio, owner_of
from wan_studio import catalog
from wan_studio.backend import gpu_count
from wan_studio.errors import Cancelled, StudioError
from wan_studio.requests.animate import MADE_FROM_DRIVING
from wan_studio.requests.base import MAX_STEPS
from wan_studio.requests.fields import label as field_label
from wan_studio.requests.fields import meta as field_meta
from wan_studio.settings import Settings


@dataclass
class Panel:
    mode: str
    column: gr.Column
    title: gr.Markdown
    model: gr.Dropdown
    prompt: gr.Textbox
    size: gr.Dropdown
    frames: gr.Slider
    frames_auto: gr.Checkbox
    duration: gr.Markdown
    negative_prompt: gr.Textbox
    steps: gr.Number
    guidance: gr.Slider
    guidance_2: gr.Slider
    flow_shift: gr.Slider
    seed: gr.Number
    randomize: gr.Checkbox
    generate: gr.Button
    stop: gr.Button
    cost: gr.Markdown
    job_id: gr.State
    progress: gr.HTML
    preview: gr.Image
    video: gr.Video
    status: gr.Markdown
    recipe: gr.JSON
    inputs: dict = field(default_factory=dict)  # request field -> component (mode-specific)
    errors: dict = field(default_factory=dict)  # request field -> gr.Markdown shown next to it
    general_error: gr.Markdown | None = None
    send: dict = field(default_factory=dict)  # target mode -> chip
    audio_duration: gr.Textbox | None = None  # the audio input's length (S2V), read-only
    estimate: tuple | None = None  # (fn, inputs, output) of the cost line, rerun after page-wide changes
    recent_loader: tuple | None = None  # (fn, inputs, output) that fills "Recent prompts" when the page loads
    favourites_loader: tuple | None = None  # (fn, inputs, output) that lists the saved settings when the page loads
    extras: dict = field(default_factory=dict)  # mode-specific helpers (FLF2V's end-frame generator)
    preset: gr.State | None = None  # "quality" | "fast" | "fast-hybrid", set by the header's Preset radio
    cache: gr.Radio | None = None  # the step cache: off | balanced | aggressive
    parallel: gr.Slider | None = None  # GPUs one job is split over (shown on a machine with several)

    def request_components(self) -> list:
        """Every component the request is built from, in a fixed order named by `request_fields`."""
        return [getattr(self, name) for name in COMMON_FIELDS] + list(self.inputs.values())

    def request_fields(self) -> list[str]:
        return list(COMMON_FIELDS) + list(self.inputs)

    def error_components(self) -> list:
        return list(self.errors.values()) + [self.general_error]


# -- choices and defaults ---------------------------------------------------------------------
def model_choices(mode: str, generation: str) -> list[tuple[str, str]]:
    return [(c.name, c.id) for c in catalog.for_mode(mode, generation)]


def duration_text(frames, record) -> str:
    frames = int(frames or 0)
    return f"{frames} frames = **{frames / record.fps:.2f} s** at {record.fps} fps"


def title_text(mode: str, record) -> str:
    checkpoint = record.name if record else "no checkpoint in this generation"
    return f"### {mode_label(mode)} · {spec(mode).label} — {checkpoint}"


def preset_values(mode: str, record, preset: str) -> tuple[list, list[str]]:
    """Updates for [steps, guidance, guidance_2, flow_shift] under a preset, and its messages
    (why Fast falls back to Quality here, or which LoRA it uses)."""
    from wan_studio.loras.presets import resolve

    if record is None:
        return [gr.update()] * 4, []
    try:
        resolution = resolve(record, mode, preset)
    except StudioError as exc:  # e.g. fast-hybrid on a checkpoint that has none
        return [gr.update()] * 4, [str(exc)]
    values = resolution.values
    return [
        gr.update(value=values.get("steps", record.steps)),
        gr.update(value=values.get("guidance", record.guidance)),
        gr.update(value=values.get("guidance_2", record.guidance_2 or record.guidance)),
        gr.update(value=values.get("flow_shift", record.flow_shift_for(*record.default_size))),
    ], list(resolution.messages)


def panel_defaults(mode: str, record) -> list:
    """Updates for [title, size, frames, duration, steps, guidance, guidance_2, flow_shift] from a checkpoint."""
    if record is None:
        return [title_text(mode, None)] + [gr.update()] * 7
    sizes = size_choices(record, spec(mode))
    return [
        title_text(mode, record),
        gr.update(choices=sizes, value=sizes[0]),
        # a fixed-length checkpoint (S2V clips) still needs minimum < maximum for the slider
        gr.update(minimum=record.frames_min, maximum=frames_ceiling(mode, record), step=4,
                  value=record.frames_default),
        duration_text(record.frames_default, record),
        gr.update(value=record.steps),
        gr.update(value=record.guidance, label="Guidance (high-noise expert)" if record.is_moe else "Guidance"),
        gr.update(value=record.guidance_2 or record.guidance, visible=record.is_moe),
        gr.update(value=record.flow_shift_for(*record.default_size)),
    ]


def build_panel(mode: str, generation: str, visible: bool) -> Panel:
    info = spec(mode)
    record = catalog.default_model(mode, generation)
    choices = model_choices(mode, generation)
    errors: dict = {}
    with gr.Column(visible=visible, elem_id=f"panel-{mode}") as column:
        title = gr.Markdown(title_text(mode, record), elem_id=f"{mode}-title")
        with gr.Row(equal_height=False):
            with gr.Column(scale=2, min_width=320):
                model = gr.Dropdown(choices, value=record.id if record else None, label="Checkpoint",
                                    elem_id=f"{mode}-model")
                error_slot(errors, mode, "model")
                if info.note:
                    gr.Markdown(info.note, elem_classes="mode-note")
                extras: dict = {}
                inputs, audio_duration = mode_inputs(mode, errors, extras)
                prompt = gr.Textbox(label=info.prompt_label, lines=3, placeholder=info.placeholder,
                                    elem_id=f"{mode}-prompt")
                error_slot(errors, mode, "prompt")
                # the mode's earlier prompts, newest first; type to search, pick one to use it again
                extras["recent"] = gr.Dropdown([], value=None, label="Recent prompts (type to search)", filterable=True,
                                               elem_id=f"{mode}-recent")
                sizes = size_choices(record, info) if record else []
                with gr.Row():
                    size = gr.Dropdown(sizes, value=sizes[0] if sizes else None, label="Size (W x H)",
                                       elem_id=f"{mode}-size")
                    frames = FieldSlider(record.frames_min if record else 5,
                                       frames_ceiling(mode, record) if record else 81,
                                       value=record.frames_default if record else 81, step=4,
                                       label="Frames (4k+1)", elem_id=f"{mode}-frames", visible=info.frames_control,
                                       interactive=not info.frames_from_input)
                error_slot(errors, mode, "size")
                frames_auto = gr.Checkbox(info.frames_from_input, label="Frames from the input video (its length)",
                                          visible=info.frames_from_input, elem_id=f"{mode}-frames_auto")
                duration = gr.Markdown("Frames follow the input video's length "
                                       "(the line under Generate shows the count)."
                                       if info.frames_from_input else
                                       duration_text(record.frames_default, record) if record and info.frames_control
                                       else "",
                                       elem_id=f"{mode}-duration")
                error_slot(errors, mode, "frames")
                window_inputs(mode, errors, inputs)
                with gr.Accordion("Advanced", open=False):
                    negative_prompt = gr.Textbox(label="Negative prompt (empty = Wan's standard one)", lines=2,
                                                 elem_id=f"{mode}-negative_prompt")
                    # a number box, not a slider: a slider's page clamps what is typed to its range without a word
                    steps = gr.Number(value=record.steps if record else 30, precision=0, label=f"Steps (1-{MAX_STEPS})",
                                      elem_id=f"{mode}-steps")
                    error_slot(errors, mode, "steps")
                    moe = bool(record and record.is_moe)
                    guidance = FieldSlider(0, 20, value=record.guidance if record else 5.0, step=0.1,
                                         label="Guidance (high-noise expert)" if moe else "Guidance",
                                         elem_id=f"{mode}-guidance")
                    guidance_2 = FieldSlider(0, 20, value=(record.guidance_2 or record.guidance) if record else 5.0,
                                           step=0.1, label="Guidance (low-noise expert)", visible=moe,
                                           elem_id=f"{mode}-guidance_2")
                    error_slot(errors, mode, "guidance")
                    flow_shift = FieldSlider(0.5, 30,
                                             value=record.flow_shift_for(*record.default_size) if record else 5.0,
                                             step=0.5, label="Flow shift", elem_id=f"{mode}-flow_shift")
                    error_slot(errors, mode, "flow_shift")
                    with gr.Row():
                        seed = gr.Number(value=0, precision=0, label="Seed", minimum=0, elem_id=f"{mode}-seed")
                        randomize = gr.Checkbox(value=True, label="Random seed", elem_id=f"{mode}-randomize")
                    error_slot(errors, mode, "seed")
                    cache = gr.Radio(list(field_meta(request_class(mode), "cache")["choices"]), value="off",
                                     label=field_label(request_class(mode), "cache"),
                                     info="skips transformer work at steps that barely change: "
                                          "faster, slightly different",
                                     elem_id=f"{mode}-cache")
                    error_slot(errors, mode, "cache")
                    gpus = gpu_count()
                    parallel = gr.Slider(1, max(2, gpus), value=1, step=1,
                                         label=field_label(request_class(mode), "parallel"),
                                         info="split this job over several GPUs of this machine (context parallelism)",
                                         visible=gpus > 1 and info.parallel,
                                         elem_id=f"{mode}-parallel")
                    error_slot(errors, mode, "parallel")
                with gr.Accordion("Favourite settings", open=False, elem_id=f"{mode}-favourites-box"):
                    with gr.Row():
                        extras["favourites"] = gr.Dropdown([], value=None, label="Use saved settings", scale=2,
                                                           elem_id=f"{mode}-favourites")
                        extras["favourite_name"] = gr.Textbox(label="Save these settings as", scale=2,
                                                              placeholder="my 720p draft",
                                                              elem_id=f"{mode}-favourite-name")
                        extras["favourite_save"] = gr.Button("Save", size="sm", scale=1,
                                                             elem_id=f"{mode}-favourite-save")
                general_error = gr.Markdown(visible=False, elem_id=f"{mode}-error", elem_classes="field-error")
                with gr.Row():
                    generate = gr.Button("Generate", variant="primary", size="lg", scale=3, elem_id=f"{mode}-generate")
                    stop = gr.Button("Stop", variant="stop", size="lg", scale=1, elem_id=f"{mode}-stop")
                cost = gr.Markdown(elem_id=f"{mode}-cost", elem_classes="cost-line")
                job_id = gr.State(None)
            with gr.Column(scale=3, min_width=320):
                progress = gr.HTML(idle_card(), elem_id=f"{mode}-progress")
                video = gr.Video(label="Result", autoplay=True, loop=True, interactive=False,
                                 buttons=["download"], elem_id=f"{mode}-result")
                preview = gr.Image(label="Live preview (approximate, from the latents)", height=140,
                                   interactive=False, elem_id=f"{mode}-preview")
                status = gr.Markdown(elem_id=f"{mode}-status")
                send = {}
                with gr.Row(elem_classes="send-chips"):
                    gr.Markdown("Send to:", elem_classes="send-label")
                    for target in send_targets():
                        what = "last frame" if sends_last_frame(target) else "video"
                        send[target] = gr.Button(f"{mode_label(target)} ({what})", size="sm",
                                                 elem_id=f"{mode}-send-{target}")
                if info.extendable:  # continue the result shown, with the long-video windows
                    with gr.Row(elem_classes="extend-row"):
                        extras["extend_seconds"] = gr.Number(5, minimum=0.5, maximum=60, step=0.5, label="Seconds more",
                                                             scale=1, elem_id=f"{mode}-extend-seconds")
                        extras["extend"] = gr.Button("Extend this video (the prompt above says what happens next)",
                                                     size="sm", scale=3, elem_id=f"{mode}-extend")
                # new results from the video shown: twice the frame rate (RIFE), twice the size
                if getattr(pipelines.wrapper_for(request_class(mode)), "OUTPUT", "video") == "video":
                    with gr.Row(elem_classes="finish-row"):
                        extras["smooth"] = gr.Button("Smooth: twice the frame rate (a new result)", size="sm",
                                                     elem_id=f"{mode}-smooth")
                        extras["upscale"] = gr.Button("Upscale: twice the size (a new result)", size="sm",
                                                      elem_id=f"{mode}-upscale")
                with gr.Accordion("Recipe", open=False):
                    recipe = gr.JSON(elem_id=f"{mode}-recipe")
    panel = Panel(mode, column, title, model, prompt, size, frames, frames_auto, duration, negative_prompt, steps,
                  guidance, guidance_2, flow_shift, seed, randomize, generate, stop, cost, job_id, progress, preview,
                  video, status, recipe, inputs, errors, general_error, send, audio_duration, extras=extras,
                  preset=gr.State("quality"), cache=cache, parallel=parallel)
    return panel


def error_updates(panel: Panel, exc: Exception | None) -> list:
    """Show the message next to the input that caused it; hide every other error slot."""
    field_name = getattr(exc, "field", None)
    if field_name in ("width", "height"):
        field_name = "size"
    if field_name == "guidance_2":
        field_name = "guidance"
    slot = field_name if field_name in panel.errors else None
    updates = []
    for name in panel.errors:
        shown = exc is not None and name == slot
        updates.append(gr.update(value=f"⚠ {exc}" if shown else "", visible=shown))
    general = exc is not None and slot is None
    updates.append(gr.update(value=f"⚠ {exc}" if general else "", visible=general))
    return updates


# -- wiring -----------------------------------------------------------------------------------
def wire_panel(panel: Panel, settings: Settings) -> None:
    private = dict(api_visibility="private")
    mode = panel.mode
    info = spec(mode)
    names = panel.request_fields()
    components = panel.request_components()
    recent = panel.extras["recent"]
    recent.input(lambda chosen: gr.update() if not chosen else chosen, recent, panel.prompt, queue=False, **private)
    panel.recent_loader = (tools.recent_prompts(mode, settings), None, recent)  # the shell fills it when the page loads

    def on_model(model_id, preset):
        record = catalog.get(model_id) if model_id else None
        updates = panel_defaults(mode, record)
        if preset and preset != "quality":  # keep the chosen preset's steps and guidance on the new checkpoint
            updates[4:8] = preset_values(mode, record, preset)[0]
        return updates

    # .input, not .change: a reload from the gallery sets the model and every value itself
    model_event = panel.model.input(on_model, [panel.model, panel.preset],
                                    [panel.title, panel.size, panel.frames, panel.duration, panel.steps,
                                     panel.guidance, panel.guidance_2, panel.flow_shift], queue=False, **private)
    def duration(frames, model_id, auto):
        if auto and info.frames_from_input:
            return "Frames follow the input video's length (the line under Generate shows the count)."
        return duration_text(frames, catalog.get(model_id)) if model_id else ""

    for trigger in (panel.frames, panel.frames_auto):
        trigger.change(duration, [panel.frames, panel.model, panel.frames_auto], panel.duration, queue=False,
                       **private)

    def estimate(*values):
        named = dict(zip(names, values))
        if not named.get("model"):
            return "No checkpoint for this mode in this generation."
        named["prompt"] = named.get("prompt") or "estimate"
        try:
            return "Estimate: " + _cost(build_request(mode, named), settings)
        except StudioError as exc:
            if isinstance(named.get(getattr(exc, "field", None)), (int, float)):
                return f"⚠ {exc}"  # a number out of its range: say which and what range, here and now
            record = catalog.get(named["model"])
            from_input = named.get("frames_auto") and info.frames_from_input
            frames = "from the input" if from_input else int(named["frames"] or 0)
            # the reason itself shows beside its input on Generate; here just what is known so far
            return (f"{record.name} · {frames} frames x {named.get('size')} · "
                    "the estimate appears once the inputs are complete")

    panel.frames_auto.change(lambda auto: gr.update(interactive=not auto), panel.frames_auto, panel.frames,
                             queue=False, **private)
    panel.estimate = (estimate, components, panel.cost)  # the shell fills the line when the page loads
    tools.wire_favourites(panel, names, components, settings)
    # user edits only (.input): a generation switch or a reload re-estimates once, after its updates
    model_event.then(estimate, components, panel.cost, queue=False, show_progress="hidden", **private)
    for trigger in (panel.size, panel.frames, panel.frames_auto, panel.steps):
        trigger.input(estimate, components, panel.cost, queue=False, show_progress="hidden", **private)
    for name in ("image", "last_image", "video", "pose_video", "audio"):
        if name in panel.inputs:
            # .change: uploads, examples, "Send to" and the end-frame generator all set these
            panel.inputs[name].change(estimate, components, panel.cost, queue=False, show_progress="hidden", **private)

    # an input the chosen sub-mode (VACE) or mode (Animate) does not use is hidden
    switch = info.switch.field if info.switch else None
    point = next((name for name, where in info.placement.items() if where.point_picker), None)
    if switch:
        switchable = [name for name in panel.inputs if name != switch]

        picker = [panel.extras["point_picker"]] if "point_picker" in panel.extras else []

        def show_inputs(choice):
            shown = [gr.update(visible=is_shown(mode, name, {switch: choice})) for name in switchable]
            return shown + [gr.update(visible=is_shown(mode, point, {switch: choice}))] * len(picker)

        panel.inputs[switch].change(show_inputs, panel.inputs[switch], [panel.inputs[n] for n in switchable] + picker,
                                    queue=False, **private)
    if "point_picker" in panel.extras:
        picker, frame = panel.extras["point_picker"], panel.extras["point_frame"]
        for trigger in (panel.inputs["video"], panel.size, *([panel.inputs[switch]] if switch else [])):
            trigger.change(tools.first_frame_to_click(names, settings), components, [picker, frame], queue=False,
                           **private)
        picker.select(tools.clicked_point, frame, [panel.inputs[point], picker], queue=False, **private)
    end_frame = next((where.beside for where in info.placement.values() if where.end_frame_generator), None)
    if end_frame:
        panel.extras["end_make"].click(
            tools.make_end_frame(settings), [panel.extras["end_prompt"], panel.model],
            [panel.inputs[end_frame], panel.extras["end_tabs"]], concurrency_limit=None, **private)
    audio = next((name for name, where in info.placement.items() if where.audio_duration), None)
    if audio:
        panel.inputs[audio].change(tools.audio_duration, [panel.inputs[audio], panel.model], panel.audio_duration,
                                   queue=False, **private)
    if "make_controls" in panel.extras:
        targets = [name for name in ("video", "control_source", "mask", *MADE_FROM_DRIVING) if name in panel.inputs]
        panel.extras["make_controls"].click(
            tools.make_controls_now(mode, names, targets, settings), components,
            [*(panel.inputs[name] for name in targets), panel.extras["controls_note"]], concurrency_limit=None,
            **private)

    # a marked input's message goes as soon as the input changes
    slot_inputs = {"size": panel.size, "frames": panel.frames, "steps": panel.steps, "guidance": panel.guidance,
                   "prompt": panel.prompt, "model": panel.model, **panel.inputs}
    for name, slot in panel.errors.items():
        if name in slot_inputs:
            component = slot_inputs[name]
            changed = getattr(component, "input", None) or component.change  # File has no .input
            changed(lambda: gr.update(value="", visible=False), None, slot, queue=False, show_progress="hidden",
                    **private)

    def submit(*values):
        *values, request = values
        named = dict(zip(names, values))
        try:
            typed = build_request(mode, named)
            studio = get_studio(settings)
            job = studio.submit(typed, owner=owner_of(settings, request))
        except StudioError as exc:  # said beside its input (no toast: it would outlive the fix)
            return [None, final_card("refused", "Not queued: fix the marked input.")] + error_updates(panel, exc)
        position = studio.store.queue_position(job.id)
        card = progress_card(studio.status(job.id)) if position is None else \
            f'<div class="progress-card" data-state="queued">Queued as job {job.id}: position {position} in line</div>'
        return [job.id, card] + error_updates(panel, None)

    def wait(job_id):
        keep = gr.update()
        if not job_id:
            yield keep, keep, keep, keep, keep
            return
        studio = get_studio(settings)
        if studio.gpu_call is not None:  # ZeroGPU: the job runs here, inside the GPU reservation
            try:
                studio.gpu_call(job_id)
            except StudioError:
                pass
        shown_preview = None
        try:
            # driven by the worker's events; at most ten page updates a second
            for status in studio.watch(job_id, min_interval_s=0.1):
                if status.is_final:
                    break
                new_preview = (status.preview if status.preview is not None and status.preview is not shown_preview
                               else None)
                if new_preview is not None:
                    shown_preview = new_preview
                yield progress_card(status), new_preview if new_preview is not None else keep, keep, keep, keep
        except StudioError as exc:  # removed from the queue while waiting
            yield final_card("failed", str(exc)), keep, keep, keep, keep
            return
        job = studio.store.get(job_id)
        if job is None:
            yield final_card("failed", f"Job {job_id} was removed from the queue."), keep, keep, keep, keep
            return
        try:
            result = studio.result_of(job)
        except Cancelled as exc:
            yield final_card("stopped", str(exc)), keep, keep, f"Job {job_id} stopped.", keep
            return
        except StudioError as exc:
            yield final_card("failed", f"Failed: {exc}"), keep, keep, f"**Failed:** {exc}", keep
            return
        out = result.recipe.get("output", {})
        seed = result.recipe.get("request", {}).get("seed")
        text = (f"Saved **{result.media.name}**: {out.get('frames')} frames, {out.get('width')}x{out.get('height')}, "
                f"{out.get('fps')} fps ({out.get('duration_s')} s), seed {seed}.")
        # the live preview goes: the video takes its place
        yield final_card("done", _done_text(result.recipe)), None, str(result.media), text, result.recipe

    def extend_shown(recipe, seconds, prompt, request: gr.Request):
        """Continue the result shown by `seconds`, as a new job (the prompt box says what comes next)."""
        from wan_studio.runtime.extend import extension_request

        studio = get_studio(settings)
        try:
            result = studio.engine.library.get(str((recipe or {}).get("id") or ""))
            if result is None:
                raise StudioError("Generate a video first: Extend continues the result shown here.")
            typed = extension_request(result.media, float(seconds or 0), prompt or None)
            job = studio.submit(typed, owner=owner_of(settings, request))
        except StudioError as exc:
            return None, final_card("refused", f"Not queued: {exc}")
        return job.id, progress_card(studio.status(job.id))

    # an explicit signature, so gradio passes one value per component and the gr.Request last
    P = inspect.Parameter
    submit.__signature__ = inspect.Signature(
        [P(f"v_{name}", P.POSITIONAL_OR_KEYWORD) for name in names]
        + [P("request", P.POSITIONAL_OR_KEYWORD, default=None, annotation=gr.Request)])

    # our own queue orders the work, so these handlers may run side by side: each only waits on its job
    panel.generate.click(submit, components, [panel.job_id, panel.progress, *panel.error_components()],
                         concurrency_limit=None, show_progress="hidden", **private).then(
        wait, panel.job_id, [panel.progress, panel.preview, panel.video, panel.status, panel.recipe],
        concurrency_limit=None, show_progress="hidden", **private).then(
        tools.recent_prompts(mode, settings), None, recent, queue=False, show_progress="hidden", **private)
    if "extend" in panel.extras:
        panel.extras["extend"].click(  # (named apart from the API's /extend: private events take names too)
            extend_shown, [panel.recipe, panel.extras["extend_seconds"], panel.prompt], [panel.job_id, panel.progress],
            concurrency_limit=None, show_progress="hidden", **private).then(
            wait, panel.job_id, [panel.progress, panel.preview, panel.video, panel.status, panel.recipe],
            concurrency_limit=None, show_progress="hidden", **private)
    finishing = {"smooth": tools.finish_shown(settings, "interpolate", factor=2),
                 "upscale": tools.finish_shown(settings, "upscale", scale=2)}
    for name, queue_it in finishing.items():
        if name in panel.extras:
            panel.extras[name].click(queue_it, panel.recipe, [panel.job_id, panel.progress], concurrency_limit=None,
                                     show_progress="hidden", **private).then(
                wait, panel.job_id, [panel.progress, panel.preview, panel.video, panel.status, panel.recipe],
                concurrency_limit=None, show_progress="hidden", **private)
    # the stop event never waits behind a job
    panel.stop.click(_stop_job(settings), panel.job_id, None, queue=False, **private)


def _done_text(recipe: dict) -> str:
    finishing = recipe.get("finishing")
    if finishing and recipe.get("parent"):
        operations = {"upscale": f"upscaled ×{finishing.get('scale')}",
                      "interpolate": f"smoothed to ×{finishing.get('factor')} the frame rate"}
        how = operations.get(finishing.get("operation"), "made")
        return f"Done: {how} from {recipe['parent']}"
    return f"Done: generated in {recipe.get('timings', {}).get('generate_s', '?')} s"


def _cost(request, settings: Settings) -> str:
    text = get_studio(settings).estimate_cost(request)  # the studio's machine and memory-plan setting
    return text + _windows_text(request)


def _windows_text(request) -> str:
    """A long video's windows and the seconds each prompt line covers (one line per window)."""
    request = request.prepare()
    windows = request.windows() if getattr(request, "long_video", False) else None
    if windows is None:
        return ""
    from wan_studio.runtime.windows import prompt_for, prompt_lines

    fps, start, spans = request.checkpoint.fps, 0, []
    for index, length in enumerate(windows.lengths):
        held = windows.overlap if index or windows.continuing else 0
        spans.append((start, start + length - held, prompt_for(request.prompt, index)))
        start += length - held
    text = f"\n\nMade in {windows.count} windows of up to {max(windows.lengths)} frames, each continuing from the last"
    if len(prompt_lines(request.prompt)) < 2:
        return text + " (a prompt of several lines gives one line per window)."
    lines = [f"{begin / fps:.1f}–{min(end, windows.total) / fps:.1f} s: {line}" for begin, end, line in spans]
    return text + ":\n" + "\n".join(f"- {line}" for line in lines)


def _stop_job(settings: Settings):
    def stop_job(job_id):
        if not job_id:
            return
        try:
            get_studio(settings).worker.stop_job(job_id)
        except StudioError as exc:
            gr.Warning(str(exc), duration=4)

    return stop_job
