"""One wrapper per mode. Each module turns a validated request into the pipeline's call and
returns frames; the engine does loading (swap manager) and saving (output library).

A wrapper module defines:
    run(pipe, request, record, callback) -> np.ndarray   # uint8 frames (F, H, W, 3)
"""

from __future__ import annotations

import importlib

WRAPPERS = {"t2v": "pipelines.t2v"}


def wrapper_for(mode: str):
    name = WRAPPERS.get(mode)
    if name is None:
        from wan_studio.errors import StudioError

        raise StudioError(f"The {mode.upper()} mode is not available in this version of Wan Studio yet.")
    return importlib.import_module(name)


def available_modes() -> tuple[str, ...]:
    return tuple(WRAPPERS)
