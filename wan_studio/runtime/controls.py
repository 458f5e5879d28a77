"""A control video made from a plain one, written as a file: for `python -m wan_studio extract` and
the API's `/extract`. (A generation job that needs a control makes it itself: Engine.generate.)"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

from wan_studio.errors import RequestError


def annotator_of(kind: str, annotator_id: str | None, point=None):
    """The named annotator (it must make `kind`), or the real one for `kind`."""
    from wan_studio import catalog
    from wan_studio.media.extract import KINDS, annotator_for

    if kind not in KINDS:
        raise RequestError("kind", f"No annotator makes {kind!r} controls; these can be made: {', '.join(KINDS)}.")
    if point is not None and kind not in ("mask", "background"):
        raise RequestError("point", f"A point picks the object of a mask or background; {kind} does not take one.")
    default = annotator_for(kind, tiny=False, point=point)
    annotator = catalog.annotator(annotator_id) if annotator_id else default
    if annotator.kind != default.kind:
        raise RequestError("annotator", f"{annotator.name} makes {annotator.kind} controls, not {kind}.")
    return annotator


def parse_point(value) -> tuple[int, int] | None:
    """'X,Y' or [x, y] -> (x, y) whole pixels, or a clear error."""
    if value is None or value == "":
        return None
    parts = value.split(",") if isinstance(value, str) else list(value) if isinstance(value, (list, tuple)) else [value]
    try:
        x, y = (int(str(part).strip()) for part in parts)
    except ValueError:
        raise RequestError("point", f"A point is two whole numbers X,Y in pixels of the first frame; got {value!r}.") from None
    return x, y


def extract_to_file(kind: str, video, output: Path, annotator, device: str, settings,
                    progress: Callable[[int, int], None] | None = None, point=None, character=None) -> Path:
    """The `kind` control of `video` (same frame count and fps) written to `output` (.mp4)."""
    import numpy as np

    from wan_studio import media
    from wan_studio.media.extract import control
    from wan_studio.runtime.library import write_mp4

    if Path(output).suffix.lower() != ".mp4":
        raise RequestError("output", f"The control video is written as MP4; name it .mp4, not {Path(output).name!r}.")
    info = media.probe_video(video)
    frames = media.load_video_frames(video)
    if character is not None and kind != "pose":
        raise RequestError("character", f"Fitting to a character's proportions is for pose videos, not {kind}.")
    made = control(kind, frames, annotator, device=device, settings=settings, name=Path(video).name, progress=progress,
                   point=point, character=character)
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    write_mp4(Path(output), np.stack([np.asarray(frame) for frame in made]), info.fps)
    return Path(output)


def extract_in_studio(studio, kind: str, video, annotator_id: str | None = None, point=None) -> Path:
    """For the API: waits for the running job and holds the accelerator (through the queue worker)
    while the annotator runs, so a video job never starts beside it. Written to OUTPUT/controls/."""
    point = parse_point(point)
    annotator = annotator_of(kind, annotator_id, point)
    output = studio.settings.output_dir / "controls" / f"{Path(video).stem}-{kind}-{secrets.token_hex(3)}.mp4"
    with studio.worker.accelerator_between_jobs():
        return extract_to_file(kind, video, output, annotator, studio.engine.swap.backend.device, studio.settings,
                               point=point)


def make_controls_in_studio(studio, request) -> tuple[dict, dict]:
    """The page's "Make the controls now": what the run would make from plain videos, made now (for
    a look before generating), in OUTPUT/controls/. Holds the accelerator between jobs like /extract."""
    if not request.controls_to_extract():
        raise RequestError("driving_video" if request.mode == "animate" else "video", NOTHING_TO_MAKE[request.mode])
    with studio.worker.accelerator_between_jobs():
        return studio.engine.make_controls(request, studio.settings.output_dir / "controls")


NOTHING_TO_MAKE = {
    "animate": "Nothing to make: give a driving video (a plain video of a person), or your own pose and face videos.",
    "vace": "Nothing to make: depth, pose and layout are made from a normal video, and an inpaint mask from a point "
            "on the object; the other sub-modes need no annotator.",
}
