"""Typed generation requests: one module per mode, each a dataclass that declares its fields and,
in its `mode_info`, everything else the studio asks about the mode (requests/modes.py).

Each mode's class registers itself (`@register_mode`); every module of this package is imported
here, so a new mode's module needs no line anywhere else. `request_types()` maps each generation
mode to its class in display order; `job_types()` adds the finishing operations (upscale,
interpolate), which the queue runs too; `request_from_dict` rebuilds either from a recipe or a
queue record.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import pkgutil
from pathlib import Path

from wan_studio.errors import RequestError

# the package's API: every request class and the constants callers use
from wan_studio.requests.animate import ANIMATE_MODES, PREPROCESS_HINT, REPLACE_INPUTS, AnimateRequest
from wan_studio.requests.base import (
    FLOW_SHIFT_RANGE,
    GUIDANCE_RANGE,
    MAX_SEED,
    MAX_STEPS,
    PROMPT_TOKEN_LIMIT,
    GenerationRequest,
    count_prompt_tokens,
)
from wan_studio.requests.finishing import FINISHING_TYPES, FinishingRequest, InterpolateRequest, UpscaleRequest
from wan_studio.requests.flf2v import FLF2VRequest
from wan_studio.requests.i2v import I2VRequest
from wan_studio.requests.inputs import looks_like_video, native_area, size_from
from wan_studio.requests.modes import (
    ExampleFile,
    InputSwitch,
    ModeInfo,
    Placement,
    register_mode,
    registered_modes,
    unregister_mode,
)
from wan_studio.requests.prepared import Preparation
from wan_studio.requests.preview import PreviewRequest
from wan_studio.requests.s2v import S2V_MIN_AUDIO_S, S2V_RESOLUTIONS, S2VRequest
from wan_studio.requests.t2v import T2VRequest
from wan_studio.requests.ti2v import TI2VRequest
from wan_studio.requests.v2v import V2VRequest
from wan_studio.requests.vace import (
    ANY_SUBMODE_INPUTS,
    MAX_REFERENCES,
    SUBMODE_INPUTS,
    VACE_CONTROL_MODES,
    VACE_MODES,
    VACERequest,
)

__all__ = [
    # request classes
    "AnimateRequest", "FLF2VRequest", "FinishingRequest", "GenerationRequest", "I2VRequest", "InterpolateRequest",
    "PreviewRequest", "S2VRequest", "T2VRequest", "TI2VRequest", "UpscaleRequest", "V2VRequest", "VACERequest",
    # what a mode declares, and its registry
    "ExampleFile", "InputSwitch", "ModeInfo", "Placement", "Preparation", "register_mode", "registered_modes",
    "unregister_mode",
    # the constants callers use
    "ANIMATE_MODES", "ANY_SUBMODE_INPUTS", "FINISHING_TYPES", "FLOW_SHIFT_RANGE", "GUIDANCE_RANGE", "MAX_REFERENCES",
    "MAX_SEED", "MAX_STEPS", "PREPROCESS_HINT", "PROMPT_TOKEN_LIMIT", "REPLACE_INPUTS", "S2V_MIN_AUDIO_S",
    "S2V_RESOLUTIONS", "SUBMODE_INPUTS", "VACE_CONTROL_MODES", "VACE_MODES",
    # helpers
    "absolutize_inputs", "count_prompt_tokens", "job_types", "looks_like_video", "mode_info", "modes_where",
    "native_area", "request_from_dict", "request_types", "size_from", "unknown_option_message",
]

for _module in pkgutil.iter_modules(__path__):  # a mode's module registers its class on import
    importlib.import_module(f"{__name__}.{_module.name}")


def request_types() -> dict[str, type[GenerationRequest]]:
    """mode -> request class, for every mode this version can run, in display order."""
    return registered_modes()


def mode_info(mode: str) -> ModeInfo:
    """What the studio asks about a mode (its request class's `mode_info`)."""
    cls = request_types().get(mode)
    if cls is None:
        raise RequestError("mode", f"Unknown mode {mode!r}; known modes: {', '.join(request_types())}.")
    return cls.mode_info


def modes_where(test) -> tuple[str, ...]:
    """The modes whose ModeInfo passes `test`, in display order: `modes_where(lambda info: info.extendable)`."""
    return tuple(mode for mode, cls in request_types().items() if test(cls.mode_info))


def job_types() -> dict[str, type[GenerationRequest] | type[FinishingRequest]]:
    """mode -> request class, for everything the queue runs: generations and finishing operations."""
    return {**request_types(), **{cls.mode: cls for cls in FINISHING_TYPES}}


def request_from_dict(data: dict, preparation: dict | None = None) -> GenerationRequest | FinishingRequest:
    """Rebuild a request saved in a recipe or a queue record (its structure checked).

    With the `preparation` stored beside it (a queued job's), it comes back prepared without
    reading any file; without one it is a plain value to `prepare()` at submit."""
    data = dict(data)
    mode = data.pop("mode", None)
    types = job_types()
    cls = types.get(mode)
    if cls is None:
        raise RequestError("mode", f"Unknown mode {mode!r}; known modes: {', '.join(types)}.")
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise RequestError(unknown[0], unknown_option_message(f"Unknown field(s) for {mode}", unknown, names))
    request = cls(**data)
    known = Preparation.from_dict(preparation)
    return request.prepare(known=known) if known is not None else request


def unknown_option_message(what: str, unknown: list[str], known) -> str:
    """`what`: 'colour' (did you mean 'color'?); the options are 'a', 'b' and 'c'."""
    known = sorted(known)
    close = difflib.get_close_matches(unknown[0], known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    listed = ", ".join(repr(name) for name in known[:-1]) + f" and {known[-1]!r}" if len(known) > 1 else repr(known[0])
    return f"{what}: {', '.join(repr(name) for name in unknown)}{hint}; the options are {listed}."


def absolutize_inputs(data: dict, base: Path) -> dict:
    """A saved request's relative input paths (as the library writes them) made absolute."""
    cls = job_types().get(data.get("mode"))
    data = dict(data)
    for name in getattr(cls, "file_fields", ()):
        value = data.get(name)
        if isinstance(value, str) and value and not Path(value).is_absolute():
            data[name] = str(base / value)
        elif isinstance(value, list):
            data[name] = [str(base / v) if not Path(v).is_absolute() else v for v in value]
    return data
