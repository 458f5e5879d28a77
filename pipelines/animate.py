"""Animate (Wan 2.2 Animate-14B) through WanAnimatePipeline, in `animate` or `replace` mode.

Inputs are the pre-processed videos (pose skeletons, face crops; background and mask for
replace; uploaded, or made by the engine from a plain driving video first), resampled to the
model's 30 fps. The pipeline generates long driving videos segment by
segment (`segment_frame_length`, carrying `prev_segment_conditioning_frames` over) and returns one
video as long as the pose video; the engine stitches nothing itself."""

from __future__ import annotations

from pipelines.common import call_pipeline
from wan_studio import media


def _video(path, record, count, size, field, mask=False):
    if mask:
        return media.load_mask_video(path, count, *size, fps=record.fps, field=field)
    frames = media.load_video_frames(path, fps=record.fps, max_frames=count, field=field)
    return media.resize_frames(media.fit_frames(frames, count), *size)


def extraction_frames(request, record, field: str) -> list:
    """The driving video the pose, face, mask and background are made from: at the model's fps and
    the run's length, at its own resolution (sharper face crops; the pose is fitted to the output
    size like an uploaded one)."""
    frames = media.load_video_frames(request.driving_video, fps=record.fps, max_frames=request.frames, field=field)
    return media.fit_frames(frames, request.frames)


def pipeline_kwargs(request, record) -> dict:
    size, count = (request.width, request.height), request.frames
    kwargs = dict(
        image=media.center_crop_resize(media.load_image(request.image), *size),
        pose_video=_video(request.pose_video, record, count, size, "pose_video"),
        face_video=media.load_video_frames(request.face_video, fps=record.fps, max_frames=count, field="face_video")[:count],
        mode=request.animate_mode, height=request.height, width=request.width,
        segment_frame_length=request.segment_frame_length,
        prev_segment_conditioning_frames=request.prev_segment_conditioning_frames,
    )
    if request.animate_mode == "replace":
        kwargs["background_video"] = _video(request.background_video, record, count, size, "background_video")
        kwargs["mask_video"] = _video(request.mask_video, record, count, size, "mask_video", mask=True)
    return kwargs


def run(pipe, request, record, callback):
    return call_pipeline(pipe, request, callback, **pipeline_kwargs(request, record))


def total_steps(request) -> int:
    return request.steps * request.segments
