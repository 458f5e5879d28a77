"""A control video made from a plain one, written as a file: for `python -m wan_studio extract` and
the API's `/extract`. (A generation job that needs a control makes it itself: Engine.generate.)"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

import numpy as np

from wan_studio.errors import RequestError


def annotator_of(kind: str, annotator_id: str | None, options: dict | None = None):
    """The named annotator (it must make `kind`), or the real one for `kind`; `options` (point,
    box, mask_shape, character) must be ones `kind` takes."""
    from wan_studio import catalog
    from wan_studio.extract import KINDS, annotator_for

    if kind not in KINDS:
        raise RequestError("kind", f"No annotator makes {kind!r} controls; these can be made: {', '.join(KINDS)}.")
    for option, value in (options or {}).items():
        if value is not None and kind not in OPTION_KINDS[option]:
            raise RequestError(option, OPTION_USE[option].format(kind=kind))
    default = annotator_for(kind, tiny=False)
    annotator = catalog.annotator(annotator_id) if annotator_id else default
    if annotator.kind != default.kind:
        raise RequestError("annotator", f"{annotator.name} makes {annotator.kind} controls, not {kind}.")
    return annotator


OPTION_KINDS = {"point": ("mask", "background"), "box": ("mask", "background"), "mask_shape": ("mask", "background"),
                "character": ("pose",)}
OPTION_USE = {"point": "A point picks the object of a mask or background; {kind} does not take one.",
              "box": "A box picks the object of a mask or background; {kind} does not take one.",
              "mask_shape": "The shape (outline or box) is for mask and background videos, not {kind}.",
              "character": "Fitting to a character's proportions is for pose videos, not {kind}."}


def parse_point(value) -> tuple[int, int] | None:
    """'X,Y' or [x, y] -> (x, y) whole pixels, or a clear error."""
    return _numbers(value, 2, "point", "A point is two whole numbers X,Y in pixels of the first frame")


def parse_box(value) -> tuple[int, int, int, int] | None:
    """'X0,Y0,X1,Y1' or a list of four -> whole pixels, or a clear error."""
    return _numbers(value, 4, "box", "A box is four whole numbers X0,Y0,X1,Y1 in pixels of the first frame")


def _numbers(value, count: int, field: str, what: str) -> tuple | None:
    if value is None or value == "":
        return None
    parts = value.split(",") if isinstance(value, str) else list(value) if isinstance(value, (list, tuple)) else [value]
    try:
        numbers = tuple(int(str(part).strip()) for part in parts)
    except ValueError:
        numbers = ()
    if len(numbers) != count:
        raise RequestError(field, f"{what}; got {value!r}.")
    return numbers


def extract_to_file(kind: str, video, output: Path, annotator, device: str, settings,
                    progress: Callable[[int, int], None] | None = None, **options) -> Path:
    """The `kind` control of `video` (same frame count and fps) written to `output` (.mp4);
    `options` as extract.controls() takes them (point, box, mask_shape, character)."""
    from wan_studio import media
    from wan_studio.extract import control
    from wan_studio.runtime.library import write_mp4

    if Path(output).suffix.lower() != ".mp4":
        raise RequestError("output", f"The control video is written as MP4; name it .mp4, not {Path(output).name!r}.")
    info = media.probe_video(video)
    frames = media.load_video_frames(video)
    options = {name: value for name, value in options.items() if value is not None}
    made = control(kind, frames, annotator, device=device, settings=settings, name=Path(video).name, progress=progress,
                   **options)
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    write_mp4(Path(output), np.stack([np.asarray(frame) for frame in made]), info.fps)
    return Path(output)


def extract_in_studio(studio, kind: str, video, annotator_id: str | None = None, point=None, box=None,
                      mask_shape: str | None = None) -> Path:
    """For the API: waits for the running job and holds the accelerator (through the queue worker)
    while the annotator runs, so a video job never starts beside it. Written to OUTPUT/controls/."""
    options = {"point": parse_point(point), "box": parse_box(box), "mask_shape": mask_shape or None}
    annotator = annotator_of(kind, annotator_id, options)
    output = studio.settings.output_dir / "controls" / f"{Path(video).stem}-{kind}-{secrets.token_hex(3)}.mp4"
    with studio.worker.accelerator_between_jobs():
        return extract_to_file(kind, video, output, annotator, studio.engine.swap.backend.device, studio.settings,
                               **options)


def first_frame_to_click(request, folder: Path) -> Path:
    """VACE inpaint: the source video's first frame at the output size, written as a PNG in `folder`,
    for the page to take a click on the object (its pixels are the point's output pixels)."""
    import pipelines.vace

    frame = pipelines.vace.first_frame(request, request.checkpoint)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{Path(request.video).stem}-first-frame-{request.width}x{request.height}.png"
    frame.save(path)
    return path


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
