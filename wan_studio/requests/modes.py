"""What the studio asks about a mode, declared once beside its request class, and the registry of modes.

A mode's request class carries a `mode_info` (a `ModeInfo`): its names and icon, its panel (prompt
label, placeholder, note, special placements, examples, the input a "Send to" chip fills), what it can
do (continue a result with Extend, split one job over several GPUs, which step cache fits its
pipeline, compile at a ZeroGPU start) and the module that runs it. Whether it is made in long-video
windows is its class: a `LongVideoRequest`. `@register_mode` puts the class in the registry, and
every list of modes (the CLI's, the API's endpoints, batch files, the sidebar, the panels, the
"Send to" chips, Extend) is read from it, in `ModeInfo.order`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

from wan_studio.memory.step_cache import CacheFit, no_step_cache


@dataclass(frozen=True)
class ExampleFile:
    """One of the example media the page draws on the spot (ui/examples.py): the pictures `sunset`, `sea`
    and `field`; the 16 fps clips `clip` and `bars`; the 30 fps clips `pose` and `face`; the speech-like
    audio `voice`."""

    name: str


@dataclass(frozen=True)
class Placement:
    """How the panel places one of the mode's inputs beyond one under the other (ui/panel_inputs.py)."""

    beside: str = ""  # another input drawn next to this one, in a row
    end_frame_generator: bool = False  # the `beside` input can also be drawn by a one-frame preview run
    before: str = ""  # another input moved up to just before this one
    make_controls: str = ""  # a button after this input that makes the controls from it now: its words
    point_picker: bool = False  # this input (x, y) can be clicked on the first frame of the source video
    audio_duration: bool = False  # the audio's length, shown under this input
    frame_picker: bool = False  # this image input can also be a frame taken from a video, under it (folded)
    trim: bool = False  # this video input can be cut to a part of itself first, under it (folded)
    advanced: bool = False  # a fine-tuning input: in the Advanced section, not up front


@dataclass(frozen=True)
class InputSwitch:
    """A choice on the panel that shows some of the mode's inputs and hides others (VACE's sub-mode,
    Animate's animate / replace). A hidden input stays out of the request."""

    field: str
    shows: Mapping[str, tuple[str, ...]]  # each choice -> the switched inputs it shows
    explains: Mapping[str, str] = field(default_factory=dict)  # each choice -> one line a newcomer reads under it

    @property
    def switched(self) -> frozenset[str]:
        """The inputs the choice shows or hides; every other input is always shown."""
        return frozenset(name for names in self.shows.values() for name in names)

    def is_shown(self, name: str, choice) -> bool:
        return name not in self.switched or name in self.shows.get(choice, ())


def _frozen(mapping) -> Mapping:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class ModeInfo:
    """Everything the studio asks about a mode besides its fields (the fields: requests/fields.py)."""

    # -- its names -------------------------------------------------------------------------------
    label: str  # "Text to video": the panel's title
    short: str  # "T2V": the sidebar entry and the "Send to" chips
    order: int  # its place in every list of modes (sidebar, CLI, API); ties keep the order of registration
    words: str = ""  # "Text → Video": what it does in a newcomer's words, the sidebar's first line (default: label)
    icon: str = ""  # its sidebar icon: a name in ui/icons/ (default: the mode's own) or the path of an SVG
    sidebar: bool = True  # a page of its own (the one-frame preview has none: FLF2V's end-frame tab runs it)
    # -- its panel -------------------------------------------------------------------------------
    prompt_label: str = "Prompt"
    placeholder: str = ""  # an example prompt, greyed in the empty prompt box
    note: str = ""  # a line under the checkpoint
    size_from_input: bool = False  # offer "Match input": the size follows the uploaded picture or video
    frames_from_input: bool = False  # offer "Frames from the input video"
    frames_control: bool = True  # False: the length comes from an input (S2V: the audio), no Frames slider
    starts_with: Mapping[str, object] = field(default_factory=dict)  # the page's first value, where not the default
    placeholders: Mapping[str, str] = field(default_factory=dict)  # an example in an empty text input
    placement: Mapping[str, Placement] = field(default_factory=dict)  # input -> how the panel places it
    switch: InputSwitch | None = None
    examples: tuple[Mapping[str, object], ...] = ()  # one-click prefills: input -> value (an ExampleFile for media)
    send_to: str = ""  # the input a "Send to" chip of another panel fills (an image input takes the last frame)
    # -- what it can do --------------------------------------------------------------------------
    extendable: bool = False  # Extend continues its results (runtime/extend.py)
    parallel: bool = False  # diffusers' context parallelism can split its transformer over several GPUs
    step_cache: CacheFit = no_step_cache("its request declares no step cache")  # memory/step_cache.py
    compiles_at_start: bool = False  # ZeroGPU: a start can compile its checkpoints (a run from text alone)
    wrapper: str = ""  # the module whose run() makes it (pipelines/__init__.py); default: pipelines.<mode>

    def __post_init__(self):
        for name in ("starts_with", "placeholders", "placement"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))
        object.__setattr__(self, "examples", tuple(_frozen(row) for row in self.examples))


# -- the registry --------------------------------------------------------------------------------
_registered: dict[str, type] = {}


def register_mode(cls: type) -> type:
    """Class decorator: the request class of a mode, with its own `mode` and `mode_info`, joins every
    list of modes. Registering the same class again is a no-op; another class under a taken mode is refused."""
    mode = cls.__dict__.get("mode")
    if not isinstance(mode, str) or not mode:
        raise TypeError(f"{cls.__name__} declares no `mode` of its own")
    if not isinstance(cls.__dict__.get("mode_info"), ModeInfo):
        raise TypeError(f"{cls.__name__} declares no `mode_info: ClassVar[ModeInfo]` of its own")
    taken = _registered.get(mode)
    if taken is not None and taken is not cls and _qualified(taken) != _qualified(cls):
        raise ValueError(f"mode {mode!r} is already {_qualified(taken)}'s")
    _registered[mode] = cls
    return cls


def unregister_mode(mode: str) -> None:
    """Take a mode out of the registry (a test's throw-away mode, when the test ends)."""
    _registered.pop(mode, None)


def registered_modes() -> dict[str, type]:
    """mode -> request class, in display order."""
    ordered = sorted(_registered.values(), key=lambda cls: cls.mode_info.order)
    return {cls.mode: cls for cls in ordered}


def extendable_modes() -> str:
    """The modes whose results Extend continues, as a message names them: "T2V, I2V and TI2V"."""
    names = [cls.mode_info.short for cls in registered_modes().values() if cls.mode_info.extendable]
    return ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else "".join(names)


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"
