"""What each mode's panel asks for, and how a panel's values become the mode's typed request.

No gradio here: the panel builder (ui/panels.py) lays these out and wires them; this module is the
contract between a panel and the engine, so it is tested without a browser.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from wan_studio import catalog
from wan_studio.errors import RequestError, StudioError
from wan_studio.requests import ANY_SUBMODE_INPUTS, REPLACE_INPUTS, SUBMODE_INPUTS
from wan_studio.requests.long_video import LONG_VIDEO_FIELDS

MATCH_INPUT = "Match input"


@dataclass(frozen=True)
class ModeSpec:
    mode: str
    prompt_label: str
    placeholder: str
    size_from_input: bool = False  # offer "Match input" (the size follows the uploaded picture or video)
    frames_from_input: bool = False  # offer "Frames from the input video"
    note: str = ""
    starts_with: dict = dataclasses.field(default_factory=dict)  # the page's first value, where not the request's default
    placeholders: dict = dataclasses.field(default_factory=dict)  # an example in an empty text input


SPECS = {
    "t2v": ModeSpec("t2v", "Prompt", "A red fox runs through fresh snow at dawn, tracking shot"),
    "i2v": ModeSpec("i2v", "Motion prompt", "Slow zoom in, leaves rustling in the wind", size_from_input=True),
    "ti2v": ModeSpec("ti2v", "Prompt", "A paper boat drifts down a rainy street", size_from_input=True,
                     note="The image is optional: without one TI2V is text to video."),
    "flf2v": ModeSpec("flf2v", "Transition prompt", "A penguin spreads its wings and takes flight",
                      size_from_input=True, note="The output takes the start frame's aspect ratio."),
    "v2v": ModeSpec("v2v", "Prompt (the new look)", "The same scene as a watercolour painting",
                    size_from_input=True, frames_from_input=True),
    "vace": ModeSpec("vace", "Prompt", "A river in autumn, golden light", size_from_input=True,
                     frames_from_input=True, starts_with={"vace_mode": "inpaint"},
                     placeholders={"bbox": "8, 8, 56, 40"}),
    "s2v": ModeSpec("s2v", "Scene / style prompt", "A cinematic close-up of a woman singing", size_from_input=True,
                    note="The video is as long as the audio."),
    "animate": ModeSpec("animate", "Optional prompt", "A person dancing", size_from_input=True, frames_from_input=True,
                        note="Give a plain driving video of a person (pose and face are made from it), or your own pre-processed pose and face videos."),
}
COMMON_FIELDS = ("model", "prompt", "size", "frames", "frames_auto", "steps", "guidance", "guidance_2", "flow_shift",
                 "seed", "randomize", "negative_prompt", "preset", "cache", "parallel")
SEND_TARGETS = ("i2v", "flf2v", "v2v", "vace", "animate")  # video -> v2v/vace/animate, last frame -> i2v/flf2v


@dataclass(frozen=True)
class PageInput:
    """One of a mode's own inputs on its panel, as the request class declares it."""

    name: str
    label: str
    kind: str  # a file kind (image, video, audio, image-or-video), or choice, choices, number, text
    value: object = None  # what the page shows first
    choices: tuple = ()  # (the page's words, value) pairs
    bounds: tuple | None = None  # (low, high, step) of a slider
    multiple: bool = False  # several files
    visible: bool = True  # shown before the user changes anything (a VACE sub-mode, Animate's replace)
    placeholder: str = ""


def page_inputs(mode: str) -> list[PageInput]:
    """The mode's own inputs in declaration order: what the page lays out, each with its error slot."""
    from wan_studio.requests import GenerationRequest, request_types

    cls = request_types()[mode]
    spec = SPECS[mode]
    shared = {f.name for f in dataclasses.fields(GenerationRequest)}
    found = []
    for f in dataclasses.fields(cls):
        meta = f.metadata
        if f.name in shared or not meta.get("page", True):
            continue
        choices = meta.get("choices") or ()
        pairs = tuple((choices[v] if isinstance(choices, dict) else v, v) for v in choices)
        if meta.get("file"):
            kind = meta["file"]
        elif meta.get("text") == "yes-no":
            kind = "flag"
        elif choices:
            kind = "choices" if meta.get("text") == "words" else "choice"
        else:
            kind = "number" if meta.get("bounds") else "text"
        if f.name in spec.starts_with:
            value = spec.starts_with[f.name]
        elif f.name in LONG_VIDEO_FIELDS:  # the defaults the windows use, shown as they are
            value = window_default(cls, f.name)
        else:
            value = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        found.append(PageInput(f.name, meta["label"], kind, value, pairs, meta.get("bounds"), bool(meta.get("multiple")),
                               placeholder=spec.placeholders.get(f.name, "")))
    first = {item.name: item.value for item in found}
    return [dataclasses.replace(item, visible=is_shown(mode, item.name, first)) for item in found]


def window_default(cls, name: str):
    """What a long video's windows use for a field left empty (the overlap: per how the mode continues)."""
    from wan_studio.requests.long_video import DEFAULT_COLOR_CORRECTION, DEFAULT_OVERLAP, conditioning_of

    return DEFAULT_COLOR_CORRECTION if name == "color_correction" else DEFAULT_OVERLAP[conditioning_of(cls)]


def is_shown(mode: str, name: str, values: dict) -> bool:
    """Whether the panel shows an input, given the panel's values (a VACE sub-mode, Animate's mode)."""
    if name == "window_overlap":
        return mode not in ("i2v", "flf2v")  # they continue from one frame, the last: nothing to choose
    if name in LONG_VIDEO_FIELDS:
        return True
    if mode == "vace":
        return name in {"vace_mode", *SUBMODE_INPUTS.get(values.get("vace_mode"), ()), *ANY_SUBMODE_INPUTS}
    if mode == "animate" and name in REPLACE_INPUTS:
        return values.get("animate_mode") == "replace"
    return True


def request_class(mode: str):
    from wan_studio.requests import request_types

    return request_types()[mode]


def label(mode: str, name: str) -> str:
    """The input's label, as the mode's request class declares it."""
    from wan_studio.requests import request_types
    from wan_studio.requests.fields import label as declared_label

    return declared_label(request_types()[mode], name)


# -- building the request ---------------------------------------------------------------------
def _number(value):
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _whole_numbers(name: str, text):
    """A box or a point typed as "x0, y0, x1, y1" / "x, y" (the request checks how many)."""
    from wan_studio.requests.fields import whole_numbers

    if not text or not str(text).strip():
        return None
    return whole_numbers(text, name)


def request_kwargs(mode: str, values: dict) -> dict:
    """Panel values -> keyword arguments of the mode's request class."""
    record = catalog.get(values["model"]) if values.get("model") else None
    if record is None:
        raise RequestError("model", "Choose a checkpoint for this mode (this generation may have none).")
    kwargs = dict(model=record.id, prompt=values.get("prompt") or "", negative_prompt=values.get("negative_prompt") or None,
                  steps=_number(values["steps"]), guidance=float(values["guidance"]),
                  guidance_2=float(values["guidance_2"]) if record.is_moe else None,
                  flow_shift=float(values["flow_shift"]),
                  seed=None if values.get("randomize") else _number(values.get("seed")))
    size = values.get("size")
    if size and size != MATCH_INPUT:
        try:
            kwargs["width"], kwargs["height"] = (int(v) for v in str(size).lower().split("x"))
        except ValueError:
            raise RequestError("size", f"Size must look like 832x480; got {size!r}.") from None
    if mode != "s2v" and not (SPECS[mode].frames_from_input and values.get("frames_auto")):
        kwargs["frames"] = _number(values["frames"])
    for name in ("preset", "cache"):
        if values.get(name):
            kwargs[name] = values[name]
    if values.get("parallel") not in (None, "", 1, 1.0):  # one GPU is the request's default
        kwargs["parallel"] = _number(values["parallel"])
    for name, value in values.items():
        if name in COMMON_FIELDS:
            continue
        if name in ("bbox", "point") and not isinstance(value, list):
            value = _whole_numbers(name, value)
        elif name == "reference":
            value = [getattr(v, "name", v) for v in (value or [])]
        elif name == "outpaint_directions":
            value = list(value or [])
        elif isinstance(value, float):
            value = _number(value)
        elif value == "":
            value = None
        if value is not None and value != []:
            kwargs[name] = value
    if mode == "vace":
        # only the inputs of the chosen sub-mode go into the request (hidden fields keep stale uploads)
        shown = {*SUBMODE_INPUTS.get(kwargs.get("vace_mode"), ()), *ANY_SUBMODE_INPUTS, "vace_mode"}
        kwargs = {k: v for k, v in kwargs.items() if k in shown or k not in vace_inputs()}
    if mode == "animate" and kwargs.get("animate_mode") != "replace":
        for name in REPLACE_INPUTS:
            kwargs.pop(name, None)
    return kwargs


def vace_inputs() -> set[str]:
    """Every input of the VACE panel that a sub-mode may show or hide."""
    from wan_studio.requests import VACERequest, request_types

    return {f.name for f in dataclasses.fields(VACERequest)} - {f.name for f in dataclasses.fields(request_types()["t2v"])}


def build_request(mode: str, values: dict):
    from wan_studio.requests import request_types

    cls = request_types().get(mode)
    if cls is None:
        raise StudioError(f"{mode.upper()} is not available in this version yet.")
    return cls(**request_kwargs(mode, values))


LONG_VIDEO_MODES = ("t2v", "i2v", "ti2v", "flf2v")  # past the checkpoint's range: made in windows


def frames_ceiling(mode: str, record) -> int:
    """The Frames slider's top: the studio's longest video for the modes made in windows past the
    checkpoint's range, else the checkpoint's own maximum."""
    if mode in LONG_VIDEO_MODES:
        from wan_studio.requests.long_video import max_video_seconds

        return int(max_video_seconds() * record.fps)
    return max(record.frames_max, record.frames_min + 4)


def size_choices(record, spec: ModeSpec) -> list[str]:
    sizes = [f"{w}x{h}" for w, h in record.sizes]
    return ([MATCH_INPUT] if spec.size_from_input else []) + sizes
