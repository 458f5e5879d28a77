"""Wan2.2-Animate-2 as a regular pipeline object around diffusers' modular one.

diffusers runs Animate-2 as a modular pipeline (`diffusers.modular_pipelines.wan_animate_2`): it
letterboxes the reference picture and every driving frame into one frame of the asked area, cuts
the driving video into segments (81 frames, the last of each carried into the next) and decodes
them into one video. This class holds the same components as a `DiffusionPipeline`, so the studio
loads, places, offloads and swaps it like every other checkpoint, and on each call hands them to
diffusers' blocks (nothing of the sampling is ours). Its additions: the guidance scale and a
callback after every step, with the step's latents and the segment it belongs to (the blocks have
no callback: the scheduler's step is observed), and the output cropped back to the asked size.

A real download comes as diffusers publishes it (`modular_model_index.json`, loaded by
`ModularPipeline.from_pretrained` and `load_components`); a Tiny twin is saved as a plain
pipeline folder (`model_index.json`)."""

from __future__ import annotations

from contextlib import contextmanager
from functools import partial
from pathlib import Path

import numpy as np
import torch
from diffusers import DiffusionPipeline

COMPONENTS = ("tokenizer", "text_encoder", "image_encoder", "vae", "transformer", "scheduler")


@contextmanager
def _progress_bars(shown: bool):
    """The segment loop draws its own tqdm bar (no pipeline setting reaches it): off when this
    pipeline's bars are off, as the studio keeps them."""
    from diffusers.modular_pipelines.wan_animate_2 import denoise

    if shown:
        yield
        return
    bar = denoise.tqdm
    denoise.tqdm = partial(bar, disable=True)
    try:
        yield
    finally:
        denoise.tqdm = bar


class WanAnimate2Pipeline(DiffusionPipeline):
    model_cpu_offload_seq = "text_encoder->image_encoder->transformer->vae"

    def __init__(self, tokenizer, text_encoder, image_encoder, vae, transformer, scheduler):
        super().__init__()
        self.register_modules(tokenizer=tokenizer, text_encoder=text_encoder, image_encoder=image_encoder, vae=vae,
                              transformer=transformer, scheduler=scheduler)

    @classmethod
    def from_pretrained(cls, folder, dtype=None, **given):
        folder = Path(folder)
        if (folder / "model_index.json").is_file() or not (folder / "modular_model_index.json").is_file():
            return super().from_pretrained(folder, dtype=dtype, **given)
        from diffusers import ModularPipeline

        modular = ModularPipeline.from_pretrained(str(folder))
        modular.update_components(**{k: v for k, v in given.items() if k in COMPONENTS})
        modular.load_components(names=[n for n in COMPONENTS if n not in given],
                                dtype=dtype if isinstance(dtype, (dict, torch.dtype)) else torch.bfloat16)
        return cls(**{name: getattr(modular, name) for name in COMPONENTS})

    def _modular(self, guidance_scale: float):
        from diffusers import WanAnimate2Blocks
        from diffusers.guiders import ClassifierFreeGuidance

        modular = WanAnimate2Blocks().init_pipeline()
        modular.update_components(**{name: getattr(self, name) for name in COMPONENTS},
                                  guider=ClassifierFreeGuidance(guidance_scale=guidance_scale))
        return modular

    @torch.no_grad()
    def __call__(self, prompt: str, image, driving_video: list, height: int, width: int, num_inference_steps: int,
                 guidance_scale: float, generator=None, negative_prompt: str | None = None,
                 segment_frame_length: int = 81, prev_segment_conditioning_frames: int = 1, segments: int = 1,
                 max_sequence_length: int = 512, callback_on_step_end=None) -> np.ndarray:
        """uint8 frames (F, H, W, 3), as many as `driving_video` (already at the model's fps)."""
        modular = self._modular(guidance_scale)
        scheduler = modular.scheduler
        step, done = scheduler.step, [0]

        def observed_step(model_output, timestep, sample, *args, **kwargs):
            out = step(model_output, timestep, sample, *args, **kwargs)
            if callback_on_step_end is not None:
                latents = out[0] if isinstance(out, tuple) else out.prev_sample
                clip = min(segments, done[0] // num_inference_steps + 1)
                callback_on_step_end(self, done[0], timestep, {"latents": latents, "clip": clip, "clips": segments})
            done[0] += 1
            return out

        scheduler.step = observed_step  # this call's own: the blocks call it once a step
        text_len = getattr(self.transformer.config, "text_len", max_sequence_length)
        try:
            with _progress_bars(not getattr(self, "_progress_bar_config", {}).get("disable", False)):
                videos = modular(prompt=prompt, negative_prompt=negative_prompt, image=image,
                                 driving_video=driving_video, driving_video_fps=None, height=height, width=width,
                                 generator=generator, num_inference_steps=num_inference_steps,
                                 segment_frame_length=segment_frame_length,
                                 prev_segment_conditioning_frames=prev_segment_conditioning_frames,
                                 max_sequence_length=min(max_sequence_length, text_len), output_type="np",
                                 output="videos")
        finally:
            del scheduler.step
        frames = np.clip(np.asarray(videos[0]) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return frames
