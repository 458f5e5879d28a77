"""VACE (Wan 2.1 VACE 1.3B / 14B) through WanVACEPipeline: one pipeline, the sub-mode decides
what goes into `video`, `mask` and `reference_images` (conventions in wan_studio.media.vace_controls:
white mask = generate, black = keep, unknown frames mid-grey)."""

from __future__ import annotations

from pipelines.common import call_pipeline
from wan_studio import media
from wan_studio.media import vace_controls as vace_inputs


def _source_frames(request, record, count: int) -> list:
    frames = media.load_video_frames(request.video, fps=record.fps, max_frames=count)
    return media.resize_frames(media.fit_frames(frames, count), request.width, request.height)


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
        return vace_inputs.control_frames(kind, _source_frames(request, record, count), source=request.control_source), None
    if kind == "inpaint":
        frames = _source_frames(request, record, count)
        if request.mask:
            if getattr(request, "_mask_is_video", False):
                mask = media.load_mask_video(request.mask, count, *size, fps=record.fps, field="mask")
            else:
                mask = media.load_mask_image(request.mask, *size)
        else:
            mask = tuple(request.bbox)
        return vace_inputs.inpaint(frames, mask)
    if kind == "outpaint":
        # the source is fitted to the inner area so that, once padded, the frame is the output size
        sx, sy = request.outpaint_scale()
        frames = media.load_video_frames(request.video, fps=record.fps, max_frames=count)
        frames = media.resize_frames(media.fit_frames(frames, count), round(size[0] / sx), round(size[1] / sy))
        video, mask, _, _ = vace_inputs.outpaint(frames, request.outpaint_directions, request.outpaint_ratio, 2)
        return media.resize_frames(video, *size, crop=False), [m.resize(size) for m in mask]
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
