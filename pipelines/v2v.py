"""V2V (restyle): WanVideoToVideoPipeline noises the input video by `strength` and denoises it
with the new prompt. The input is resampled to the model's fps, cut to the request's 4k+1 frame
count and fitted to the output size."""

from __future__ import annotations

from pipelines.common import call_pipeline
from wan_studio import media


def load_source(request, record) -> list:
    """The input as the run reads it; a long video's window reads its own slice (the last window may
    run past the input: its last frame stands in there, and the extra is cut from the result)."""
    start = getattr(request, "window_start", 0)
    frames = media.load_video_frames(request.video, fps=record.fps, max_frames=start + request.frames)[start:]
    if start and 0 < len(frames) < request.frames:
        frames = frames + [frames[-1]] * (request.frames - len(frames))
    return media.resize_frames(media.fit_frames(frames, request.frames), request.width, request.height)


def pipeline_kwargs(request, record) -> dict:
    return dict(video=load_source(request, record), height=request.height, width=request.width,
                strength=request.strength)


def run(pipe, request, record, callback):
    return call_pipeline(pipe, request, callback, **pipeline_kwargs(request, record))


def total_steps(request) -> int:
    # the pipeline skips the first (1 - strength) of the schedule
    return max(1, min(request.steps, int(request.steps * request.strength)))
