"""A mode panel's own inputs, as its request class declares them: each field's component (from
its kind, label, choices and bounds), its error slot, and the few placement choices a mode makes
(FLF2V's end-frame tabs, VACE's frames side by side, S2V's duration line, Animate's driving video
and the button that makes controls from it)."""

from __future__ import annotations

import gradio as gr

from ui.panel_specs import PageInput, page_inputs
from wan_studio.requests.long_video import LONG_VIDEO_FIELDS


def error_slot(panel_errors: dict, mode: str, name: str) -> None:
    panel_errors[name] = gr.Markdown(visible=False, elem_id=f"{mode}-error-{name}", elem_classes="field-error")


def FieldSlider(*args, **kwargs) -> gr.Slider:
    """A slider whose typed-in value reaches the request as typed: the request's check then says which
    field and what range ("Guidance must be between 0 and 20; got 40."). gradio's own check raised a
    bare "Error" and logged a traceback. (Its page still clamps the value on Generate; Steps is a
    number box for that reason.) An instance, not a subclass: gradio writes a .pyi file beside the
    module of every component class."""
    from gradio.components.number import Number

    slider = gr.Slider(*args, **kwargs)
    slider.preprocess = lambda payload: None if payload is None else Number.round_to_precision(payload, slider.precision)
    return slider


def component(mode: str, item: PageInput, height: int = 200):
    """The page's input for a declared field: its kind, label, choices and first value from the request class."""
    common = dict(label=item.label, visible=item.visible, elem_id=f"{mode}-{item.name}")
    if item.kind == "image" and item.multiple:
        return gr.File(file_count="multiple", type="filepath", file_types=["image"], height=160, **common)
    if item.kind == "image":
        return gr.Image(type="filepath", sources=["upload", "clipboard"], image_mode="RGB", height=height, **common)
    if item.kind == "video":
        return gr.Video(sources=["upload"], height=height, **common)
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
    """The mode's own inputs, as its request class declares them, each followed by its error slot.

    Placement only is decided here: FLF2V's end frame can also be drawn by a preview run, VACE's
    first and last frames sit side by side, S2V shows the audio's length under the audio, and
    Animate's driving video (with VACE's source video) gets a button that makes its controls now."""
    inputs: dict = {}
    duration_box = None
    declared = {item.name: item for item in page_inputs(mode)}

    def add(name, **options):
        inputs[name] = component(mode, declared[name], **options)
        error_slot(errors, mode, name)

    names = [name for name in declared if name not in LONG_VIDEO_FIELDS]
    while names:
        name = names.pop(0)
        if mode == "flf2v" and name == "image":
            with gr.Row():
                with gr.Column():
                    add("image")
                with gr.Column():
                    # the end frame is uploaded, or drawn by a one-frame preview run of a T2V checkpoint
                    with gr.Tabs(selected="upload", elem_id="flf2v-end-tabs") as end_tabs:
                        with gr.Tab("Upload", id="upload"):
                            add(names.pop(names.index("last_image")))
                        with gr.Tab("Generate", id="generate"):
                            end_prompt = gr.Textbox(label="Describe the end frame", lines=2, elem_id="flf2v-end-prompt")
                            end_make = gr.Button("Generate the end frame", elem_id="flf2v-end-generate")
                    extras.update(end_tabs=end_tabs, end_prompt=end_prompt, end_make=end_make)
        elif mode == "animate" and name == "pose_video":
            # a plain driving video first; the pre-processed inputs below are made from it, or your own
            add(names.pop(names.index("driving_video")))
            _make_controls_button(mode, extras, "Make the inputs now: pose and face (and mask and background for replace), to look first")
            add(name)
        elif mode == "vace" and name == "video":
            add(name)
            _make_controls_button(mode, extras, "Make the control now (to look before generating)")
        elif mode == "vace" and name == "point":
            add(name)
            # a click on the first frame (shown at the output size, so its pixels are the point's)
            extras["point_picker"] = gr.Image(label="…or click the object on the first frame", interactive=False,
                                              height=200, visible=declared[name].visible, elem_id="vace-point-picker")
            extras["point_frame"] = gr.State(None)  # the frame without the marker
        elif mode == "vace" and name == "image":
            with gr.Row():
                add("image", height=160)
                add(names.pop(names.index("last_image")), height=160)
        else:
            add(name)
        if mode == "s2v" and name == "audio":
            duration_box = gr.Textbox(label="Duration (from the audio, read-only)", interactive=False,
                                      elem_id="s2v-duration")
    return inputs, duration_box


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
