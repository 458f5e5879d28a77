"""Speech to video (Wan 2.2 S2V-14B): the mode wrapper over our `WanS2VPipeline`
(wan_studio/models/s2v_pipeline.py), which runs clip after clip."""

from __future__ import annotations

from pathlib import Path

from pipelines.common import generator_for, set_flow_shift
from wan_studio import media
from wan_studio.media.frames import to_uint8_frames


# -- the mode wrapper --------------------------------------------------------------------------
def run(pipe, request, record, callback):
    from wan_studio.media import audio

    set_flow_shift(pipe, request.flow_shift)
    size = (request.width, request.height)
    image = media.center_crop_resize(media.load_image(request.image), *size)
    sound = audio.load_audio(request.audio)
    pose = None
    if request.pose_video:
        frames = media.load_video_frames(request.pose_video, fps=record.fps,
                                         max_frames=request.clips * request.clip_frames, field="pose_video")
        pose = media.resize_frames(frames, *size)
    video = pipe(
        image=image, audio=sound.samples, audio_sample_rate=sound.sample_rate, prompt=request.prompt,
        negative_prompt=request.negative_prompt, height=request.height, width=request.width, num_frames=request.frames,
        init_first_frame=request.init_first_frame, solver=request.solver,
        clip_frames=request.clip_frames, pose_video=pose, fps=record.fps, num_inference_steps=request.steps,
        guidance_scale=request.guidance, generator=generator_for(request.seed), callback_on_step_end=callback,
    )
    return to_uint8_frames(video)


def total_steps(request) -> int:
    return request.steps * request.clips


def audio_track(request) -> tuple[Path, float]:
    """The sound muxed into the result: the input audio, cut to the video's length."""
    return Path(request.audio), request.frames / request.checkpoint.fps
