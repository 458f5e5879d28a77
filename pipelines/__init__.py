"""One wrapper per mode. Each module turns a validated request into the pipeline's call and
returns frames; the engine does loading (swap manager) and saving (output library). A mode's
wrapper is pipelines/<mode>.py, or the module its request's `mode_info.wrapper` names.

A wrapper module defines:
    run(pipe, request, record, callback) -> np.ndarray   # uint8 frames (F, H, W, 3)
and may define:
    pipeline_mode(request) -> str   # which of the checkpoint's pipelines serves it (default: request.mode)
    total_steps(request) -> int     # denoising steps the callback will see (default: request.steps)
    OUTPUT = "image"                # a one-frame result saved as PNG (default: "video")
    audio_track(request) -> (path, seconds)   # a sound track muxed into the mp4 (S2V)
"""

from __future__ import annotations

import importlib

from wan_studio.errors import StudioError


def wrapper_for(request):
    """The wrapper module that runs a request: the one its mode names (`mode_info.wrapper`), else
    pipelines.<mode>. A mode's name alone (a str) gives pipelines.<mode>."""
    mode = request if isinstance(request, str) else request.mode
    info = None if isinstance(request, str) else getattr(request, "mode_info", None)
    name = getattr(info, "wrapper", "") or f"{__name__}.{mode}"
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:  # the wrapper is there but something it imports is not
            raise
        raise StudioError(f"The {mode.upper()} mode is not available in this version of Wan Studio yet.") from None


def pipeline_mode(wrapper, request) -> str:
    chooser = getattr(wrapper, "pipeline_mode", None)
    return chooser(request) if chooser else request.mode


def total_steps(wrapper, request) -> int:
    counter = getattr(wrapper, "total_steps", None)
    return counter(request) if counter else request.steps


def extraction_frames(wrapper, request, record, field: str) -> list:
    """The frames an annotator makes the request's `field` control from (see the mode's wrapper)."""
    return wrapper.extraction_frames(request, record, field)


def audio_track(wrapper, request):
    """(audio file, seconds) to mux into the result, or None."""
    track = getattr(wrapper, "audio_track", None)
    return track(request) if track else None
