"""Finishing a result: frame interpolation (RIFE) and upscaling (Real-ESRGAN) make a new result
from a finished one, as queued jobs (`requests/finishing.py`) the engine runs like a generation.

The new result keeps its parent's request (what made the frames) and says what was done after:
`"parent"` (the result it was made from) and `"finishing"` (the operation, the model and its
settings); the parent is left as it is. A sound track (S2V) is carried over as it plays. Frames
stream from the parent through the model into the encoder, so a long video never has to fit in
memory; a stop is honoured between frames and leaves nothing behind.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from wan_studio.errors import Cancelled, RequestError
from wan_studio.queue.status import JobStatus

GIB = 2**30
CPU_TILE_BUDGET = 2 * GIB  # a tile's working memory on a machine without a GPU


def helper_of(kind: str, model_id: str | None, tiny: bool, scale: int = 0):
    """The named helper model (the request checked its kind), or the default one for a (Tiny)
    result: for an upscaler, the one whose own factor is the scale asked for when there is one."""
    from wan_studio import catalog

    if model_id:
        return catalog.annotator(model_id)
    fitting = [record for record in catalog.annotators() if record.kind == kind and record.tiny == tiny]
    return next((record for record in fitting if record.scale == scale), None) or catalog.annotator_for(kind, tiny)


def finish(library, request, settings, device: str = "cpu", report: Callable[[JobStatus], None] | None = None,
           cancel=None, make_room: Callable[[float], None] | None = None):
    """Run a finishing request (prepared or not) and save its result."""
    from wan_studio.media.recipe import read_embedded_recipe

    request = request.prepare()
    recipe = read_embedded_recipe(Path(request.result)) or {}
    report = report or (lambda status: None)
    started = time.perf_counter()
    report(JobStatus("loading"))
    if request.mode == "upscale":
        # rate: how many times the parent's frame rate the new result plays at
        stream, rate, finishing = _upscaled(request, settings, device, make_room)
    else:
        stream, rate, finishing = _interpolated(request, settings, device)
    stream = _reporting(stream, request, report, cancel, started)
    output = recipe.get("output", {})
    fps = (output.get("fps") or request.video.fps) * rate
    audio = (Path(request.result), output["audio"]["duration_s"]) if output.get("audio") else None
    made = {key: value for key, value in recipe.items() if key not in ("format", "id", "output", "parent", "finishing")}
    made.update(parent=request.parent, created=time.strftime("%Y-%m-%dT%H:%M:%S%z"), finishing=finishing)
    from wan_studio.runtime.library import new_result_id

    result_id = new_result_id(recipe.get("mode", "video"))
    try:
        result = library.save_video(stream, fps, made, result_id, audio=audio)
    except BaseException:
        library.delete(result_id)  # a stop or a failure leaves no half-made result
        raise
    report(JobStatus("done", step=stream.count, total=stream.count, elapsed_s=round(time.perf_counter() - started, 3),
                     remaining_s=0.0))
    return result


def _reporting(stream, request, report, cancel, started: float):
    """The stream, reporting each frame made and stopping between frames when asked."""
    from wan_studio.runtime.library import FrameStream

    task = {"upscale": "upscaling", "interpolate": "smoothing"}[request.mode]

    def frames():
        for index, frame in enumerate(stream.frames, 1):
            if cancel is not None and cancel.is_set():
                raise Cancelled("Stopped; nothing was saved.")
            yield frame
            elapsed = time.perf_counter() - started
            report(JobStatus("finishing", task=task, step=index, total=stream.count, elapsed_s=round(elapsed, 3),
                             remaining_s=round(elapsed / index * (stream.count - index), 1)))

    return FrameStream(stream.count, stream.width, stream.height, frames())


def _frames_of(path: Path):
    from wan_studio import media

    for frame in media.iter_video_frames(path, field="result"):
        yield np.array(frame)  # writable: torch takes it as it is


# -- interpolation ------------------------------------------------------------------------------
def _interpolated(request, settings, device: str):
    """factor - 1 new frames between each two (n frames -> factor x (n - 1) + 1, the same duration)."""
    from wan_studio import models
    from wan_studio.models.rife import Interpolator, NotAnInterpolator
    from wan_studio.runtime.library import FrameStream

    video, factor = request.video, request.factor
    if request.model_is_file():  # a release's flownet.pkl named by its path
        source, model_name = Path(request.model).expanduser(), Path(request.model).name
    else:
        record = helper_of("interpolator", request.model or None, request.parent_tiny)
        source, model_name = models.resolve(record, settings), record.id
    try:
        model = Interpolator(source, device)
    except NotAnInterpolator as exc:  # the sentence says what the file holds and which releases are read
        raise RequestError("model", str(exc)) from None
    moments = [k / factor for k in range(1, factor)]

    def frames():
        previous = None
        for frame in _frames_of(Path(request.result)):
            if previous is not None:
                yield from model.between(previous, frame, moments)
            yield frame
            previous = frame

    count = factor * (video.frames - 1) + 1
    return (FrameStream(count, video.width, video.height, frames()), factor,
            {"operation": "interpolate", "factor": factor, "model": model_name})


# -- upscaling ----------------------------------------------------------------------------------
def _upscaled(request, settings, device: str, make_room):
    """Each frame through the super-resolution model, in tiles sized to the memory there is; then a
    resize to the size asked for when the model's factor does not give it exactly (a target size,
    or a model of another factor than the scale): area averaging to shrink, bicubic to enlarge."""
    import cv2

    from wan_studio import models
    from wan_studio.models.upscaler import NotAnUpscaler, Upscaler
    from wan_studio.runtime.library import FrameStream

    video, scale = request.video, request.scale
    if request.model_is_file():  # a path, or a Hub file (hf://owner/repo/file.pth)
        from wan_studio.models.upscaler import local_weights

        source, model_name = local_weights(request.model, settings.auto_download), Path(request.model).name
    else:
        record = helper_of("upscaler", request.model or None, request.parent_tiny, scale)
        source, model_name = models.resolve(record, settings), record.id
    try:
        upscaler = Upscaler(source, device)
    except NotAnUpscaler as exc:
        raise RequestError("model", f"{model_name} is not an image upscaling model we can read: {exc}. "
                                    f"We read {_families()}.") from None
    if make_room is not None:
        make_room(upscaler.working_bytes_per_pixel() * 512 * 512 / GIB)  # room for a 512 px tile at least
    tile = request.tile or upscaler.tile_for(_tile_budget(device))
    width, height = request.output_size

    def frames():
        for frame in _frames_of(Path(request.result)):
            made = upscaler.upscale(frame, tile)
            # to the exact size: a target between the model's factors, or an x4 model asked for x2 (or the other way)
            if made.shape[:2] != (height, width):
                shrink = made.shape[0] > height
                made = cv2.resize(made, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
            yield made

    finishing = {"operation": "upscale", "scale": scale, "model": model_name, "model_scale": upscaler.scale,
                 "tile": tile}
    if request.target is not None:
        finishing.update(target=request.target, size=f"{width}x{height}")
    return FrameStream(video.frames, width, height, frames()), 1, finishing


def _tile_budget(device: str) -> float:
    """Bytes a tile may use: most of the GPU's free memory, or a fixed share on the CPU."""
    if str(device).startswith("cuda"):
        import torch

        free, _ = torch.cuda.mem_get_info()
        return free * 0.6
    return CPU_TILE_BUDGET


def _families() -> str:
    from wan_studio.models.upscaler import FAMILIES

    return FAMILIES
