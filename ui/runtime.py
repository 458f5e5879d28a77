"""The process's studio runtime and the few helpers every page shares.

Torch and diffusers load on the first Generate (or in the background after launch), not at
import, so the studio opens about as fast as a bare Gradio app.
"""

from __future__ import annotations

import threading

import gradio as gr

from wan_studio.backend import probe_light
from wan_studio.settings import Settings

_studio = None
_studio_lock = threading.Lock()


def refused(message: str) -> gr.Error:
    """The page's and the API's answer to a request the studio turns down (bad input, a missing
    job): the message, shown to whoever asked, without a traceback in the app's log, since nothing
    failed."""
    return gr.Error(message, print_exception=False)


def get_studio(settings: Settings):
    """The process's studio runtime (engine, queue, worker, stats). Torch loads with the first job."""
    global _studio
    with _studio_lock:
        if _studio is None:
            from wan_studio.runtime.studio import Studio

            _studio = Studio(settings)
        return _studio


def owner_of(settings: Settings, request: gr.Request | None) -> str | None:
    """On a shared deployment each browser session sees only its own jobs; locally, everything."""
    return request.session_hash if settings.multi_user and request is not None else None


def banner_text() -> str:
    backend = probe_light()
    if not backend.has_gpu:
        return (
            f"**Backend: {backend.describe()}.** No GPU found, so the studio runs the built-in *Tiny* models: "
            "random weights at toy size. Every setting works end to end, **but the output is noise**, not a real video."
        )
    return f"**Backend: {backend.describe()}.** Real checkpoints download on first use."


def theme():
    # every text at least 4.5:1 against its background (WCAG AA; the page is checked with axe-core):
    # Gradio's subdued grey, its indigo-500 buttons and red-500 Stop fall just short on white
    return gr.themes.Default(primary_hue="indigo", neutral_hue="slate").set(
        body_text_color_subdued="*neutral_600", body_text_color_subdued_dark="*neutral_400",
        color_accent="*primary_600",
        button_primary_background_fill="*primary_600", button_primary_background_fill_hover="*primary_700",
        button_primary_background_fill_dark="*primary_600", button_primary_background_fill_hover_dark="*primary_700",
        button_cancel_background_fill="#dc2626", button_cancel_background_fill_hover="#b91c1c",
        button_cancel_background_fill_dark="#dc2626", button_cancel_background_fill_hover_dark="#b91c1c",
    )
