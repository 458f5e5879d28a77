"""Animate (Wan 2.2 Animate-14B) through WanAnimatePipeline, in `animate` or `replace` mode; and
Wan 2.2 Animate-2, which reads the plain driving video itself (`run_animate2`).

Inputs are the pre-processed videos (pose skeletons, face crops; background and mask for
replace; uploaded, or made by the engine from a plain driving video first), resampled to the
model's 30 fps. A driving video longer than one segment (`segment_frame_length`) is made in the
long-video windows (wan_studio/runtime/windows.py), one segment each, reading its slice of the
inputs: the pipeline would make them all in one call, but a window is kept when it is done, so a
stopped or crashed job continues from the last one. A later window's first segment starts from
the end of the window before (`held_frames`), as the pipeline starts a later segment of its own."""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
from PIL import Image

from pipelines.common import call_pipeline, generator_for, set_flow_shift
from wan_studio import media


def _padded(frames: list, count: int) -> list:
    """Exactly `count` frames: a window's 4k+1 length may run past the inputs' end by a few frames,
    which repeat the last (they are cut from the result)."""
    return list(frames[:count]) + [frames[-1]] * max(0, count - len(frames))


def _video(path, record, count, size, field, start=0, end=None, mask=False):
    """`count` frames of an input from frame `start` (the frames past `end`, the run's last, repeat it)."""
    wanted = start + count if end is None else min(start + count, end)
    if mask:
        return _padded(media.load_mask_video(path, wanted, *size, fps=record.fps, field=field)[start:], count)
    frames = media.load_video_frames(path, fps=record.fps, max_frames=wanted, field=field)[start:]
    return media.resize_frames(_padded(frames, count), *size)


def extraction_frames(request, record, field: str) -> list:
    """The driving video the pose, face, mask and background are made from: at the model's fps and
    the run's length, at its own resolution (sharper face crops; the pose is fitted to the output
    size like an uploaded one)."""
    frames = media.load_video_frames(request.driving_video, fps=record.fps, max_frames=request.frames, field=field)
    return media.fit_frames(frames, request.frames)


def pipeline_kwargs(request, record) -> dict:
    size, count = (request.width, request.height), request.frames
    start = getattr(request, "window_start", None)  # a window: its slice of the inputs, one segment
    first, end = start or 0, getattr(request, "total_frames", None)
    wanted = first + count if end is None else min(first + count, end)
    face = media.load_video_frames(request.face_video, fps=record.fps, max_frames=wanted, field="face_video")
    kwargs = dict(
        image=media.center_crop_resize(media.load_image(request.image), *size),
        pose_video=_video(request.pose_video, record, count, size, "pose_video", first, end),
        face_video=_padded(face[first:], count),
        mode=request.animate_mode, height=request.height, width=request.width,
        segment_frame_length=count if start is not None else request.segment_frame_length,
        prev_segment_conditioning_frames=request.prev_segment_conditioning_frames,
    )
    if request.animate_mode == "replace":
        kwargs["background_video"] = _video(request.background_video, record, count, size, "background_video",
                                            first, end)
        kwargs["mask_video"] = _video(request.mask_video, record, count, size, "mask_video", first, end, mask=True)
    return kwargs


@contextmanager
def continuing_from(pipe, held: np.ndarray):
    """The pipeline's first segment conditioned on `held` (uint8 frames, the end of the window
    before) as it conditions a later segment on the end of the one before: the frames in its own
    form ((1, 3, k, H, W) in [-1, 1]) and marked as given (a start past 0)."""
    import torch

    original = pipe.prepare_prev_segment_cond_latents
    frames = torch.from_numpy(np.ascontiguousarray(held)).permute(3, 0, 1, 2)[None].float().div(127.5).sub(1)

    def first_segment_continues(prev_segment_cond_video=None, *args, **kwargs):
        if prev_segment_cond_video is None:
            prev_segment_cond_video = frames.to(kwargs.get("device"))
            kwargs["start_frame"] = len(held)
        return original(prev_segment_cond_video, *args, **kwargs)

    pipe.prepare_prev_segment_cond_latents = first_segment_continues
    try:
        yield
    finally:
        del pipe.prepare_prev_segment_cond_latents  # the class's own again


def run_animate2(pipe, request, record, callback) -> np.ndarray:
    """Animate-2 reads the plain driving video itself (at the model's 24 fps here) and makes its
    segments in one call: the picture and every frame letterboxed into the asked area, the result
    cropped back to the picture's aspect and brought to the asked size."""
    driving = media.fit_frames(media.load_video_frames(request.driving_video, fps=record.fps,
                                                       max_frames=request.frames, field="driving_video"),
                               request.frames)
    set_flow_shift(pipe, request.flow_shift)
    frames = pipe(prompt=request.prompt, negative_prompt=request.negative_prompt, image=media.load_image(request.image),
                  driving_video=driving, height=request.height, width=request.width,
                  num_inference_steps=request.steps, guidance_scale=request.guidance,
                  generator=generator_for(request.seed), segment_frame_length=request.segment_frame_length,
                  prev_segment_conditioning_frames=request.prev_segment_conditioning_frames,
                  segments=request.segments, callback_on_step_end=callback)
    if frames.shape[1:3] != (request.height, request.width):  # the crop to the picture is a few pixels off
        frames = np.stack([np.asarray(media.resize_to(Image.fromarray(f), request.width, request.height))
                           for f in frames])
    return frames


def run(pipe, request, record, callback):
    if request.reads_driving_video(record):
        return run_animate2(pipe, request, record, callback)
    held = getattr(request, "held_frames", None)
    if held is None:
        return call_pipeline(pipe, request, callback, **pipeline_kwargs(request, record))
    with continuing_from(pipe, held):
        return call_pipeline(pipe, request, callback, **pipeline_kwargs(request, record))


def total_steps(request) -> int:
    # one segment a call (a long video's windows are counted by the engine); Animate-2: all its segments
    return request.steps * (request.segments if request.reads_driving_video(request.checkpoint) else 1)
