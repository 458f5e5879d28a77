"""What every diffusers-based mode does the same way: flow shift, seeded generator, the call."""

from __future__ import annotations

import numpy as np


def set_flow_shift(pipe, shift: float) -> None:
    """Wan schedulers take the shift from their config; rebuild the scheduler when it differs."""
    config = pipe.scheduler.config
    key = "flow_shift" if "flow_shift" in config else "shift"
    if config.get(key) != shift:
        pipe.scheduler = type(pipe.scheduler).from_config(config, **{key: shift})


def flow_scheduler(shift: float):
    """The flow-matching UniPC scheduler every diffusers Wan checkpoint ships."""
    from diffusers import UniPCMultistepScheduler

    return UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=shift)


def generator_for(seed: int):
    """A CPU generator: the same seed gives the same noise on CUDA, MPS and CPU."""
    import torch

    return torch.Generator("cpu").manual_seed(seed)


def to_uint8_frames(video) -> np.ndarray:
    """diffusers' np output (F, H, W, 3) floats in [0, 1] -> uint8."""
    frames = np.asarray(video)
    if frames.dtype != np.uint8:
        scaled = np.clip(frames, 0.0, 1.0)  # one float copy, then scaled and rounded in place
        scaled *= 255.0
        frames = np.rint(scaled, out=scaled).astype(np.uint8)
    return frames


def call_pipeline(pipe, request, callback, **kwargs) -> np.ndarray:
    """Run the pipeline with the request's shared fields plus the mode's own kwargs."""
    set_flow_shift(pipe, request.flow_shift)
    output = pipe(
        prompt=request.prompt,
        negative_prompt=request.negative_prompt,
        num_inference_steps=request.steps,
        guidance_scale=request.guidance,
        generator=generator_for(request.seed),
        output_type="np",
        callback_on_step_end=callback,
        **kwargs,
    )
    return to_uint8_frames(output.frames[0])
