"""What each mode's panel asks for, and how a panel's values become the mode's typed request.

No gradio here: the panel builder (ui/panels.py) lays these out and wires them; this module is the
contract between a panel and the engine, so it is tested without a browser.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from wan_studio import catalog
from wan_studio.errors import RequestError, StudioError
from wan_studio.requests.long_video import (
    DEFAULT_COLOR_CORRECTION,
    DEFAULT_OVERLAP,
    LAST_FRAME,
    LONG_VIDEO_FIELDS,
    conditioning_of,
    max_video_seconds,
)

MATCH_INPUT = "Match input"
COMMON_FIELDS = ("model", "prompt", "size", "frames", "frames_auto", "steps", "guidance", "guidance_2", "flow_shift",
                 "seed", "randomize", "negative_prompt", "preset", "cache", "parallel", "loras", "variations")


def spec(mode: str):
    """What the mode's panel asks for beyond its fields (prompt label, placeholder, note, placements,
    examples): the ModeInfo its request class declares."""
    from wan_studio.requests import mode_info

    return mode_info(mode)


def send_targets() -> tuple[str, ...]:
    """The modes a result can be sent to (a "Send to" chip on every panel), in the sidebar's order."""
    from wan_studio.requests import modes_where

    return modes_where(lambda info: info.sidebar and bool(info.send_to))


def sends_last_frame(target: str) -> bool:
    """Whether a result is sent to `target` as its last frame (an image input) rather than as the video."""
    from wan_studio.requests.fields import meta

    return meta(request_class(target), spec(target).send_to).get("file") == "image"


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
    info = cls.mode_info
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
        if f.name in info.starts_with:
            value = info.starts_with[f.name]
        elif f.name in LONG_VIDEO_FIELDS:  # the defaults the windows use, shown as they are
            value = window_default(cls, f.name)
        else:
            value = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        found.append(PageInput(f.name, meta["label"], kind, value, pairs, meta.get("bounds"),
                               bool(meta.get("multiple")), placeholder=info.placeholders.get(f.name, "")))
    first = {item.name: item.value for item in found}
    return [dataclasses.replace(item, visible=is_shown(mode, item.name, first)) for item in found]


def window_default(cls, name: str):
    """What a long video's windows use for a field left empty (the overlap: per how the mode continues)."""
    return DEFAULT_COLOR_CORRECTION if name == "color_correction" else DEFAULT_OVERLAP[conditioning_of(cls)]


def is_shown(mode: str, name: str, values: dict) -> bool:
    """Whether the panel shows an input, given the panel's values (the choice of its InputSwitch: a VACE
    sub-mode, Animate's animate / replace)."""
    if name == "window_overlap":  # a mode that continues from one frame, the last: nothing to choose
        return getattr(request_class(mode), "window_conditioning", None) != LAST_FRAME
    if name in LONG_VIDEO_FIELDS:
        return True
    switch = spec(mode).switch
    return switch is None or switch.is_shown(name, values.get(switch.field))


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
    kwargs = dict(model=record.id, prompt=values.get("prompt") or "",
                  negative_prompt=values.get("negative_prompt") or None,
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
    info = spec(mode)
    if info.frames_control and not (info.frames_from_input and values.get("frames_auto")):
        kwargs["frames"] = _number(values["frames"])
    for name in ("preset", "cache"):
        if values.get(name):
            kwargs[name] = values[name]
    if values.get("loras"):  # "name" or "name:strength", as the CLI's --lora takes them
        kwargs["loras"] = [str(item).strip() for item in values["loras"] if str(item).strip()]
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
    if info.switch is not None:
        # only the inputs the chosen sub-mode shows go into the request (hidden fields keep stale uploads)
        choice = kwargs.get(info.switch.field)
        kwargs = {k: v for k, v in kwargs.items() if info.switch.is_shown(k, choice)}
    return kwargs


def build_request(mode: str, values: dict):
    from wan_studio.requests import request_types

    cls = request_types().get(mode)
    if cls is None:
        raise StudioError(f"{mode.upper()} is not available in this version yet.")
    return cls(**request_kwargs(mode, values))


def frames_ceiling(mode: str, record) -> int:
    """The Frames slider's top: the studio's longest video for the modes made in windows past the
    checkpoint's range (their class is a LongVideoRequest), else the checkpoint's own maximum. Where the
    frames follow an input video, its length decides (all of it, in windows where it is longer)."""
    if getattr(request_class(mode), "long_video", False) and not spec(mode).frames_from_input:
        return int(max_video_seconds() * record.fps)
    return max(record.frames_max, record.frames_min + 4)


def frames_label(mode: str, record) -> str:
    """The Frames box's label: the whole range a request takes, so what is typed past it is refused
    with the request's own message (a slider would clamp it to its top without a word)."""
    if record is None:
        return "Frames (4k+1)"
    rule = "4k+1, " if record.frame_rule == "4k+1" else ""
    return f"Frames ({rule}{record.frames_min}–{frames_ceiling(mode, record)})"


def size_choices(record, info) -> list[str]:
    """The Size dropdown's choices: "Match input" first where the mode's ModeInfo offers it."""
    sizes = [f"{w}x{h}" for w, h in record.sizes]
    return ([MATCH_INPUT] if info.size_from_input else []) + sizes
