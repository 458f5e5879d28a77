"""A mode panel's own inputs, as its request class declares them: each field's component (from
its kind, label, choices and bounds), its error slot, and the placements its ModeInfo asks for
(`Placement`: an input beside another, FLF2V's end-frame tabs, Animate's driving video first, the
button that makes controls now, VACE's point picker, S2V's duration line, a frame taken from a video,
a trim)."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from ui.panel_specs import PageInput, page_inputs, spec
from wan_studio.requests import Placement
from wan_studio.requests.long_video import LONG_VIDEO_FIELDS


def error_slot(panel_errors: dict, mode: str, name: str) -> None:
    panel_errors[name] = gr.Markdown(elem_id=f"{mode}-error-{name}", elem_classes="field-error")  # (CSS: hidden empty)


def FieldSlider(*args, **kwargs) -> gr.Slider:
    """A slider whose typed-in value reaches the request as typed: the request's check then says which
    field and what range ("Guidance must be between 0 and 20; got 40."). gradio's own check raised a
    bare "Error" and logged a traceback. (Its page still clamps the value on Generate; Steps is a
    number box for that reason.) An instance, not a subclass: gradio writes a .pyi file beside the
    module of every component class."""
    from gradio.components.number import Number

    slider = gr.Slider(*args, **kwargs)
    slider.preprocess = lambda payload: (None if payload is None
                                         else Number.round_to_precision(payload, slider.precision))
    return slider


def tolerant(upload):
    """An upload box that hands a file it cannot convert to the studio as it is, so the request's own
    check says what is wrong with it, under the box ("notes.png isn't an image we can read: PNG,
    JPEG or WebP."). gradio's conversion failure reached the page as nothing at all."""
    convert = upload.preprocess

    def preprocess(payload):
        try:
            return convert(payload)
        except Exception:  # any decoder's error: the studio's check names the file and the formats
            path = getattr(payload, "path", None) or getattr(getattr(payload, "video", None), "path", None)
            if path is None:
                raise
            return path

    upload.preprocess = preprocess
    return upload


def component(mode: str, item: PageInput, height: int = 200):
    """The page's input for a declared field: its kind, label, choices and first value from the request class."""
    common = dict(label=item.label, visible=item.visible, elem_id=f"{mode}-{item.name}")
    if item.kind == "image" and item.multiple:
        return gr.File(file_count="multiple", type="filepath", file_types=["image"], height=160, **common)
    if item.kind == "image":
        return tolerant(gr.Image(type="filepath", sources=["upload", "clipboard"], image_mode="RGB", height=height,
                                 **common))
    if item.kind == "video":
        return tolerant(gr.Video(sources=["upload"], height=height, **common))
    if item.kind == "image-or-video":
        return gr.File(type="filepath", file_types=["image", "video"], height=160, **common)
    if item.kind == "audio":
        return gr.Audio(sources=["upload", "microphone"], type="filepath", format="wav", **common)
    if item.kind == "flag":
        return gr.Checkbox(value=bool(item.value), **common)
    if item.kind == "choices":
        return gr.CheckboxGroup(list(item.choices), value=item.value, **common)
    if item.kind == "choice" and len(item.choices) > 3 and any(words != value for words, value in item.choices):
        return gr.Dropdown(list(item.choices), value=item.value, **common)
    if item.kind == "choice":
        return gr.Radio(list(item.choices), value=item.value, **common)
    if item.kind == "number":
        low, high, step = item.bounds
        return FieldSlider(low, high, value=item.value, step=step, **common)
    return gr.Textbox(value=item.value, placeholder=item.placeholder, **common)


def _make_controls_button(mode: str, extras: dict, label: str) -> None:
    """Makes now what the run would make from a plain video (annotator models), into the inputs."""
    extras["make_controls"] = gr.Button(label, size="sm", elem_id=f"{mode}-make-controls")
    extras["controls_note"] = gr.Markdown(visible=False, elem_id=f"{mode}-controls-note")


def mode_inputs(mode: str, errors: dict, extras: dict) -> tuple[dict, gr.Textbox | None]:
    """The mode's own inputs, as its request class declares them, each followed by its error slot and
    placed as its ModeInfo's `placement` says; (inputs, the audio's duration box if one is asked for)."""
    inputs: dict = {}
    declared = {item.name: item for item in page_inputs(mode)}
    placement, switch = spec(mode).placement, spec(mode).switch
    names = [name for name in declared
             if name not in LONG_VIDEO_FIELDS and not placement.get(name, Placement()).advanced]  # advanced_inputs

    def add(name, **options):
        if name in names:
            names.remove(name)
        inputs[name] = component(mode, declared[name], **options)
        error_slot(errors, mode, name)
        where = placement.get(name, Placement())
        if where.frame_picker:
            extras.setdefault("frame_pickers", {})[name] = _frame_picker(mode, name, declared[name].visible)
        if where.trim:
            extras.setdefault("trims", {})[name] = _trim(mode, name, declared[name].visible)
        if switch and name == switch.field and switch.explains:  # one line on what the chosen one does
            extras["switch_help"] = gr.Markdown(switch.explains.get(declared[name].value, ""),
                                                elem_id=f"{mode}-{name}-help", elem_classes="switch-help")

    def place(name):
        where = placement.get(name, Placement())
        if where.before:
            place(where.before)
        if where.beside and where.end_frame_generator:
            with gr.Row():
                with gr.Column():
                    add(name)
                with gr.Column():
                    _end_frame_tabs(mode, where.beside, add, extras)
        elif where.beside:
            with gr.Row():
                add(name, height=160)
                add(where.beside, height=160)
        else:
            add(name)
        if where.make_controls:
            _make_controls_button(mode, extras, where.make_controls)
        if where.point_picker:
            # a click on the first frame (shown at the output size, so its pixels are the point's)
            extras["point_picker"] = gr.Image(label="…or click the object on the first frame", interactive=False,
                                              height=200, visible=declared[name].visible,
                                              elem_id=f"{mode}-point-picker")
            extras["point_frame"] = gr.State(None)  # the frame without the marker
        if where.audio_duration:
            duration_box.append(gr.Textbox(label="Duration (from the audio, read-only)", interactive=False,
                                           elem_id=f"{mode}-duration"))

    duration_box: list = []
    while names:
        place(names[0])
    return inputs, duration_box[0] if duration_box else None


def advanced_inputs(mode: str, errors: dict, inputs: dict) -> None:
    """The mode's inputs its ModeInfo places in the Advanced section (e.g. S2V's sampler), in order."""
    placement = spec(mode).placement
    for item in page_inputs(mode):
        if placement.get(item.name, Placement()).advanced:
            inputs[item.name] = component(mode, item)
            error_slot(errors, mode, item.name)


@dataclass
class FramePicker:
    """Under an image input: a video, a time in it, that frame, and a button that puts it into the input."""

    box: gr.Accordion
    video: gr.Video
    seconds: gr.Slider
    frame: gr.Image
    use: gr.Button
    note: gr.Markdown


def _frame_picker(mode: str, name: str, visible: bool) -> FramePicker:
    key = f"{mode}-{name}"
    with gr.Accordion("Take a frame from a video", open=False, visible=visible, elem_id=f"{key}-from-video") as box:
        video = tolerant(gr.Video(label="Video", sources=["upload"], height=140, elem_id=f"{key}-frame-video"))
        with gr.Row(equal_height=True):
            frame = gr.Image(label="Frame", interactive=False, height=120, min_width=120, elem_id=f"{key}-frame")
            with gr.Column(scale=2, min_width=160):
                # its top becomes the video's length once one is given
                seconds = FieldSlider(0, 1, value=0, step=0.01, label="Time (s)", elem_id=f"{key}-frame-time")
                use = gr.Button("Use this frame", size="sm", elem_id=f"{key}-use-frame")
        note = gr.Markdown(visible=False, elem_id=f"{key}-frame-note")
    return FramePicker(box, video, seconds, frame, use, note)


@dataclass
class Trim:
    """Under a video input: keep the part from start to end, as a new video in the input."""

    box: gr.Accordion
    start: gr.Number
    end: gr.Number
    trim: gr.Button
    note: gr.Markdown
    made: gr.State  # the name of the last file trimmed here, to say so when the input shows it


def _trim(mode: str, name: str, visible: bool) -> Trim:
    key = f"{mode}-{name}"
    with gr.Accordion("Trim", open=False, visible=visible, elem_id=f"{key}-trim-box") as box:
        with gr.Row():
            # number boxes without bounds: a value out of range reaches the trim, which says why beside it
            start = gr.Number(0, label="Start (s)", min_width=90, elem_id=f"{key}-trim-start")
            end = gr.Number(None, label="End (s)", min_width=90, elem_id=f"{key}-trim-end")  # empty: the end
        trim = gr.Button("Trim", size="sm", elem_id=f"{key}-trim")
        note = gr.Markdown(visible=False, elem_id=f"{key}-trim-note")
    return Trim(box, start, end, trim, note, gr.State(""))


def _end_frame_tabs(mode: str, name: str, add, extras: dict) -> None:
    """The end frame is uploaded, or drawn by a one-frame preview run of a T2V checkpoint."""
    with gr.Tabs(selected="upload", elem_id=f"{mode}-end-tabs") as end_tabs:
        with gr.Tab("Upload", id="upload"):
            add(name)
        with gr.Tab("Generate", id="generate"):
            end_prompt = gr.Textbox(label="Describe the end frame", lines=2, elem_id=f"{mode}-end-prompt")
            end_make = gr.Button("Generate the end frame", elem_id=f"{mode}-end-generate")
    extras.update(end_tabs=end_tabs, end_prompt=end_prompt, end_make=end_make)


def window_inputs(mode: str, errors: dict, inputs: dict) -> None:
    """How a long video's windows join (overlap, colour correction), under the frames: used only past
    the checkpoint's length, so folded away until then."""
    declared = {item.name: item for item in page_inputs(mode) if item.name in LONG_VIDEO_FIELDS}
    if not declared:
        return
    with gr.Accordion("Long videos: how the windows join", open=False, elem_id=f"{mode}-windows"):
        for name, item in declared.items():
            inputs[name] = component(mode, item)
            error_slot(errors, mode, name)
