"""One builder for every mode panel, driven by what the mode's request class declares (its fields,
and its ModeInfo: prompt label, placements, what it can do).

A panel is inputs on the left (the mode's distinctive inputs, prompt, size, frames, the Advanced
accordion, Generate / Stop and the cost line) and output on the right (progress card, live
preview, the player, the recipe and the "Send to" chips). Submitting builds the mode's typed
request (the same class the API and the CLI build), so validation and messages are identical;
a refused request shows its message next to the input that caused it and queues nothing. The
tools beside the inputs and the result (first-frame click, controls made now, favourites, recent
prompts, Smooth, ...) are in ui/panel_tools.py; the choices (sizes, the Frames slider's top) in
ui/panel_specs.py; what Generate and the result's actions do with their jobs in ui/job_events.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import gradio as gr

import pipelines
from ui import job_events
from ui import panel_tools as tools
from ui.availability import mode_label
from ui.catalog_dropdown import CatalogDropdown
from ui.panel_inputs import FieldSlider, advanced_inputs, error_slot, mode_inputs, window_inputs
from ui.panel_specs import (
    COMMON_FIELDS,
    build_request,
    frames_label,
    is_shown,
    request_class,
    send_targets,
    sends_last_frame,
    size_choices,
    spec,
)
from ui.progress_cards import idle_card
from ui.runtime import get_studio
from wan_studio import catalog
from wan_studio.backend import gpu_count
from wan_studio.errors import StudioError
from wan_studio.requests.animate import MADE_FROM_DRIVING
from wan_studio.requests.base import MAX_STEPS
from wan_studio.requests.fields import label as field_label
from wan_studio.requests.fields import meta as field_meta
from wan_studio.requests.finishing import UPSCALE_TARGET_WORDS
from wan_studio.settings import Settings


@dataclass
class Panel:
    mode: str
    column: gr.Column
    title: gr.Markdown
    model: gr.Dropdown
    prompt: gr.Textbox
    size: gr.Dropdown
    frames: gr.Number
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
    loras: gr.Dropdown | None = None  # LoRA names (name:strength), each checked against the checkpoint
    variations: gr.Radio | None = None  # jobs per Generate, each with its own seed
    loras_loader: tuple | None = None  # (fn, inputs, output) that lists the LoRAs when the page loads

    def request_components(self) -> list:
        """Every component the request is built from, in a fixed order named by `request_fields`."""
        return [getattr(self, name) for name in COMMON_FIELDS] + list(self.inputs.values())

    def request_fields(self) -> list[str]:
        return list(COMMON_FIELDS) + list(self.inputs)

    def error_components(self) -> list:
        return list(self.errors.values()) + [self.general_error]


# -- choices and defaults ---------------------------------------------------------------------
# Upscale's sizes: twice or four times, or a standard size (the short side; the request picks the model's factor)
UPSCALE_CHOICES = [("×2", "x2"), ("×4", "x4"), *((words, target) for target, words in UPSCALE_TARGET_WORDS.items())]

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
        gr.update(label=frames_label(mode, record), value=record.frames_default),
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
                # the prompt first, then what shapes every run (LoRAs, how many), then the mode's own inputs
                extras: dict = {}
                prompt = gr.Textbox(label=info.prompt_label, lines=3, placeholder=info.placeholder,
                                    elem_id=f"{mode}-prompt")
                error_slot(errors, mode, "prompt")
                with gr.Row(equal_height=True):
                    # the mode's earlier prompts, newest first; type to search, pick one to use it again
                    extras["recent"] = gr.Dropdown([], value=None, label="Recent prompts (type to search)",
                                                   filterable=True, scale=3, elem_id=f"{mode}-recent")
                    variations = gr.Radio([1, 2, 3, 4], value=1, label="Variations",
                                          info="videos per Generate, each with its own seed", scale=2,
                                          elem_id=f"{mode}-variations")
                # filled when the page loads: the LoRAs in the loras folder; "name:0.8" sets a strength
                loras = gr.Dropdown([], value=[], multiselect=True, allow_custom_value=True, label="LoRAs",
                                    info="from the loras folder; type name:strength (e.g. my-style:0.8) to set "
                                         "its strength; each is checked against the checkpoint before the run",
                                    elem_id=f"{mode}-loras")
                error_slot(errors, mode, "loras")
                model = CatalogDropdown(choices, value=record.id if record else None, label="Checkpoint",
                                        elem_id=f"{mode}-model")
                error_slot(errors, mode, "model")
                if info.note:
                    gr.Markdown(info.note, elem_classes="mode-note")
                inputs, audio_duration = mode_inputs(mode, errors, extras)
                sizes = size_choices(record, info) if record else []
                with gr.Row():
                    size = CatalogDropdown(sizes, value=sizes[0] if sizes else None, label="Size (W x H)",
                                           elem_id=f"{mode}-size")
                    # a number box: a value typed past the range reaches the request, which refuses it
                    frames = gr.Number(value=record.frames_default if record else 81, precision=0, step=4,
                                       label=frames_label(mode, record), elem_id=f"{mode}-frames",
                                       visible=info.frames_control, interactive=not info.frames_from_input)
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
                                                 info="what to keep out of the video",
                                                 elem_id=f"{mode}-negative_prompt")
                    # a number box, not a slider: a slider's page clamps what is typed to its range without a word
                    steps = gr.Number(value=record.steps if record else 30, precision=0, label=f"Steps (1-{MAX_STEPS})",
                                      info="more steps: finer detail, but slower; the checkpoint's own is a good start",
                                      elem_id=f"{mode}-steps")
                    error_slot(errors, mode, "steps")
                    moe = bool(record and record.is_moe)
                    guidance = FieldSlider(0, 20, value=record.guidance if record else 5.0, step=0.1,
                                         label="Guidance (high-noise expert)" if moe else "Guidance",
                                         info="how closely the video follows the prompt; too high looks harsh",
                                         elem_id=f"{mode}-guidance")
                    guidance_2 = FieldSlider(0, 20, value=(record.guidance_2 or record.guidance) if record else 5.0,
                                           step=0.1, label="Guidance (low-noise expert)", visible=moe,
                                           info="the same for the second expert, which draws the fine detail",
                                           elem_id=f"{mode}-guidance_2")
                    error_slot(errors, mode, "guidance")
                    flow_shift = FieldSlider(0.5, 30,
                                             value=record.flow_shift_for(*record.default_size) if record else 5.0,
                                             step=0.5, label="Flow shift", elem_id=f"{mode}-flow_shift",
                                             info="where the steps spend their effort: higher for big sizes and "
                                                  "motion, lower for fine detail")
                    error_slot(errors, mode, "flow_shift")
                    advanced_inputs(mode, errors, inputs)
                    with gr.Row():
                        seed = gr.Number(value=0, precision=0, label="Seed", minimum=0, elem_id=f"{mode}-seed",
                                         info="the same seed and settings make the same video")
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
                general_error = gr.Markdown(elem_id=f"{mode}-error", elem_classes="field-error")
                # always in view: pinned to the bottom of the screen while the inputs scroll under it
                with gr.Column(elem_id=f"{mode}-action-bar", elem_classes="action-bar"):
                    with gr.Row():
                        generate = gr.Button("Generate", variant="primary", size="lg", scale=3,
                                             elem_id=f"{mode}-generate")
                        stop = gr.Button("Stop", variant="stop", size="lg", scale=1, elem_id=f"{mode}-stop")
                    cost = gr.Markdown(elem_id=f"{mode}-cost", elem_classes="cost-line")
                job_id = gr.State(None)
            with gr.Column(scale=3, min_width=320, elem_classes="result-column"):
                progress = gr.HTML(idle_card(), elem_id=f"{mode}-progress")
                # shown by the stylesheet while the last card is a stopped job with windows kept
                resume = gr.Button("Resume: make the rest", size="sm", elem_id=f"{mode}-resume",
                                   elem_classes="resume-button")
                # The live preview shows while a job runs and goes when it ends. It and the player are never
                # hidden or shown by an update: gradio applies `visible` after `value` and then reads the value
                # back from the component, which can still hold the old one, so the new video was sometimes lost.
                # The stylesheet hides the preview while it holds no picture.
                preview = gr.Image(label="Live preview (approximate, from the latents)", height=180,
                                   interactive=False, elem_id=f"{mode}-preview", elem_classes="live-preview")
                video = gr.Video(label="Result", autoplay=True, loop=True, interactive=False,
                                 buttons=["download"], elem_id=f"{mode}-result", elem_classes="result-video")
                status = gr.Markdown(elem_id=f"{mode}-status")
                # a Generate's variations side by side; a click puts one in the player (and the toolbar on it).
                # The stylesheet hides the grid while it is empty; the ids say which result each tile is
                extras["variants"] = gr.Gallery(label="Variations: click one to work on it", columns=4,
                                                height="auto", allow_preview=False, interactive=False,
                                                elem_id=f"{mode}-variants", elem_classes="variant-grid")
                extras["variant_ids"] = gr.State([])
                send = {}
                # what can be done with the result shown, bound to it: the stylesheet shows it once there is
                # one, and not while a job made from it runs (so the next action is on the new one)
                with gr.Column(elem_id=f"{mode}-actions", elem_classes="result-toolbar") as actions:
                    with gr.Row(elem_classes="send-chips"):
                        gr.Markdown("Send to:", elem_classes="send-label")
                        for target in send_targets():
                            what = "last frame" if sends_last_frame(target) else "video"
                            send[target] = gr.Button(f"{mode_label(target)} ({what})", size="sm",
                                                     elem_id=f"{mode}-send-{target}")
                    if info.extendable:  # continue the result shown, with the long-video windows
                        with gr.Row(elem_classes="extend-row"):
                            extras["extend_seconds"] = gr.Number(5, minimum=0.5, maximum=60, step=0.5,
                                                                 label="Seconds more", scale=1,
                                                                 elem_id=f"{mode}-extend-seconds")
                            extras["extend"] = gr.Button("Extend this video (the prompt above says what happens next)",
                                                         size="sm", scale=3, elem_id=f"{mode}-extend")
                    # new results from the video shown: twice the frame rate (RIFE), twice the size
                    if getattr(pipelines.wrapper_for(request_class(mode)), "OUTPUT", "video") == "video":
                        with gr.Row(elem_classes="finish-row"):
                            extras["smooth"] = gr.Button("Smooth: twice the frame rate (a new result)", size="sm",
                                                         elem_id=f"{mode}-smooth")
                            extras["upscale_to"] = gr.Dropdown(UPSCALE_CHOICES, value="x2", label="Upscale to",
                                                               scale=1, min_width=120, elem_id=f"{mode}-upscale-to")
                            extras["upscale"] = gr.Button("Upscale (a new result)", size="sm",
                                                          elem_id=f"{mode}-upscale")
                    with gr.Row(elem_classes="seed-row"):  # the same request again: a new seed, or this one kept
                        extras["vary"] = gr.Button("Vary: the same with a new seed", size="sm", elem_id=f"{mode}-vary")
                        extras["reuse_seed"] = gr.Button("Reuse this seed", size="sm", elem_id=f"{mode}-reuse-seed")
                # outside the toolbar: showing the toolbar would read the recipe back too (see the player above);
                # the stylesheet hides it until there is a result
                with gr.Accordion("Recipe", open=False, elem_classes="result-recipe"):
                    recipe = gr.JSON(elem_id=f"{mode}-recipe")
    extras.update(resume=resume, actions=actions)
    panel = Panel(mode, column, title, model, prompt, size, frames, frames_auto, duration, negative_prompt, steps,
                  guidance, guidance_2, flow_shift, seed, randomize, generate, stop, cost, job_id, progress, preview,
                  video, status, recipe, inputs, errors, general_error, send, audio_duration, extras=extras,
                  preset=gr.State("quality"), cache=cache, parallel=parallel, loras=loras, variations=variations)
    return panel


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
    panel.loras_loader = (tools.lora_names(settings), None, panel.loras)
    tools.wire_frame_tools(panel, settings)

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
    # one event for every edit, not one a field: its runs never overlap and the last edit is estimated
    # last, so a slow estimate of an earlier edit (steps, then frames) cannot overwrite a later one's
    edits = [trigger.input for trigger in (panel.size, panel.frames, panel.frames_auto, panel.steps)]
    # .change: uploads, examples, "Send to" and the end-frame generator all set these
    edits += [panel.inputs[name].change for name in ("image", "last_image", "video", "pose_video", "audio")
              if name in panel.inputs]
    gr.on(edits, estimate, components, panel.cost, queue=False, show_progress="hidden", trigger_mode="always_last",
          **private)

    # an input the chosen sub-mode (VACE) or mode (Animate) does not use is hidden
    switch = info.switch.field if info.switch else None
    point = next((name for name, where in info.placement.items() if where.point_picker), None)
    if switch:
        switchable = [name for name in panel.inputs if name != switch]

        point_pickers = [panel.extras["point_picker"]] if "point_picker" in panel.extras else []

        def show_inputs(choice):
            shown = [gr.update(visible=is_shown(mode, name, {switch: choice})) for name in switchable]
            return shown + [gr.update(visible=is_shown(mode, point, {switch: choice}))] * len(point_pickers)

        panel.inputs[switch].change(show_inputs, panel.inputs[switch],
                                    [panel.inputs[n] for n in switchable] + point_pickers, queue=False, **private)
        if "switch_help" in panel.extras:
            panel.inputs[switch].change(lambda choice: info.switch.explains.get(choice, ""), panel.inputs[switch],
                                        panel.extras["switch_help"], queue=False, show_progress="hidden", **private)
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

    # a marked input's message goes as soon as the input changes, in the page itself (no request a keystroke)
    slot_inputs = {"size": panel.size, "frames": panel.frames, "steps": panel.steps, "guidance": panel.guidance,
                   "prompt": panel.prompt, "model": panel.model, **panel.inputs}
    for name, slot in panel.errors.items():
        if name not in slot_inputs:
            continue
        component = slot_inputs[name]
        if isinstance(component, gr.Image) and component.interactive is not False:
            # an upload is read at once: an unreadable one is said under its box, not on Generate
            component.change(tools.check_image(name), component, slot, queue=False, show_progress="hidden",
                             **private)
            continue
        changed = getattr(component, "input", None) or component.change  # File has no .input
        changed(None, None, slot, js="() => ''", **private)

    job_events.wire_jobs(panel, settings, names, components)


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
