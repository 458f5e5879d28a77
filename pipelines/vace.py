"""VACE (Wan 2.1 VACE 1.3B / 14B) through WanVACEPipeline: one pipeline, the sub-mode decides
what goes into `video`, `mask` and `reference_images` (conventions in wan_studio.media.vace_controls:
white mask = generate, black = keep, unknown frames mid-grey)."""

from __future__ import annotations

from PIL import Image

from pipelines.common import call_pipeline
from wan_studio import media
from wan_studio.media import vace_controls as vace_inputs


def _window_start(request) -> int:
    """Where a long video's window starts in the input video (0 for a one-pass request)."""
    return getattr(request, "window_start", 0)


def _slice(frames: list, request, count: int) -> list:
    """A window's `count` frames from its start; the last window of a long video may run past the
    input (its extra frames are cut from the result), so the input's last frame stands in there."""
    start = _window_start(request)
    frames = frames[start:]
    if start and 0 < len(frames) < count:
        frames = frames + [frames[-1]] * (count - len(frames))
    return media.fit_frames(frames, count)


def _source_frames(request, record, count: int) -> list:
    frames = media.load_video_frames(request.video, fps=record.fps, max_frames=_window_start(request) + count)
    return media.resize_frames(_slice(frames, request, count), request.width, request.height)


def _hold(video, mask, request, count: int, size) -> tuple[list, list]:
    """A later window of a long video: its first frames are the last ones made (`held_frames`),
    given to VACE as frames to keep (black mask); the rest as the sub-mode made them."""
    held = getattr(request, "held_frames", None)
    if held is None:
        return video, mask
    black, white = Image.new("L", size, 0), Image.new("L", size, 255)
    mask = list(mask) if mask is not None else [white] * count
    video = [Image.fromarray(frame) for frame in held] + list(video[len(held):])
    return video, [black] * len(held) + mask[len(held):]


def first_frame(request, record):
    """The source video's first frame as the run reads it (at the output size): where a click picks
    the object to inpaint, in the output pixels the request's point is given in."""
    return media.resize_frames(media.load_video_frames(request.video, fps=record.fps, max_frames=1),
                               request.width, request.height)[0]


def extraction_frames(request, record, field: str) -> list:
    """The frames an annotator makes the `field` control from: the source video as the run reads
    it (the model's fps, the run's frame count and size), so the control lines up frame for frame."""
    return _source_frames(request, record, request.frames)


def conditioning(request, record) -> tuple[list | None, list | None]:
    """(video, mask) for the request's sub-mode; (None, None) for reference-only. A control made by
    an annotator model is already a control video here (the engine made it first)."""
    kind, size, count = request.vace_mode, (request.width, request.height), request.frames
    if kind in vace_inputs.CONTROL_KINDS:
        control = vace_inputs.control_frames(kind, _source_frames(request, record, count),
                                             source=request.control_source)
        return _hold(control, None, request, count, size)
    if kind == "inpaint":
        frames = _source_frames(request, record, count)
        if request.mask:
            if getattr(request, "_mask_is_video", False):
                # the mask video covers the whole request (checked when prepared): the window's slice of it
                known = min(_window_start(request) + count, getattr(request, "total_frames", request.frames))
                mask = _slice(media.load_mask_video(request.mask, known, *size, fps=record.fps, field="mask"),
                              request, count)
            else:
                mask = media.load_mask_image(request.mask, *size)
        else:
            mask = tuple(request.bbox)
        return _hold(*vace_inputs.inpaint(frames, mask), request, count, size)
    if kind == "outpaint":
        # the source is fitted to the inner area so that, once padded, the frame is the output size
        sx, sy = request.outpaint_scale()
        frames = media.load_video_frames(request.video, fps=record.fps, max_frames=_window_start(request) + count)
        frames = media.resize_frames(_slice(frames, request, count), round(size[0] / sx), round(size[1] / sy))
        video, mask, _, _ = vace_inputs.outpaint(frames, request.outpaint_directions, request.outpaint_ratio, 2)
        return _hold(media.resize_frames(video, *size, crop=False), [m.resize(size) for m in mask],
                     request, count, size)
    if kind == "extension":
        first = media.load_image(request.image) if request.image else None
        last = media.load_image(request.last_image, field="last_image") if request.last_image else None
        clip = None
        if request.extension in ("first_clip", "last_clip"):
            # up to half the output is the given clip: its end leads into the new frames (first_clip),
            # or the new frames lead into its start (last_clip)
            known = (count - 1) // 2
            frames = media.load_video_frames(request.video, fps=record.fps)
            clip = frames[-known:] if request.extension == "first_clip" else frames[:known]
            clip = media.resize_frames(clip, *size)
        return vace_inputs.extension(request.extension, count, *size, first=first, last=last, clip=clip)
    return None, None


def pipeline_kwargs(request, record) -> dict:
    video, mask = conditioning(request, record)
    references = [media.load_image(path, field="reference") for path in request.reference] or None
    kwargs = dict(video=video, mask=mask, reference_images=references, conditioning_scale=request.conditioning_scale,
                  height=request.height, width=request.width, num_frames=request.frames)
    if record.is_moe:
        kwargs["guidance_scale_2"] = request.guidance_2
    return kwargs


def run(pipe, request, record, callback):
    return call_pipeline(pipe, request, callback, **pipeline_kwargs(request, record))
