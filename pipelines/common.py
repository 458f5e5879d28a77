"""What every diffusers-based mode does the same way: flow shift, seeded generator, the call."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from wan_studio.media.frames import to_uint8_frames


def set_flow_shift(pipe, shift: float) -> None:
    """Wan schedulers take the shift from their config; rebuild the scheduler when it differs."""
    config = pipe.scheduler.config
    key = "flow_shift" if "flow_shift" in config else "shift"
    if config.get(key) != shift:
        pipe.scheduler = type(pipe.scheduler).from_config(config, **{key: shift})


def few_step_scheduler(timesteps, shift: float, generator):
    """FastWan's distilled sampling as its maintainer runs it (FastVideo's DmdDenoisingStage): the
    transformer denoises once from each of `timesteps`; the clean latent it predicts is noised
    again, with fresh noise from the run's own generator, to the next timestep's level; the last
    prediction is the result. A timestep's noise level is the nearest on the 1000-step grid bent
    by `shift` (so t/1000 to within 0.001), as FastVideo looks it up."""
    scheduler = _few_step_class()(shift=shift, stochastic_sampling=True)
    scheduler.denoising_timesteps, scheduler.noise_generator = tuple(timesteps), generator
    return scheduler


@lru_cache(maxsize=1)
def _few_step_class():
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler

    class FewStepScheduler(FlowMatchEulerDiscreteScheduler):
        denoising_timesteps: tuple[int, ...] = ()
        noise_generator = None

        def set_timesteps(self, num_inference_steps=None, device=None, **_):
            wanted = list(self.denoising_timesteps)
            if num_inference_steps not in (None, len(wanted)):
                raise ValueError(f"this distilled checkpoint runs {len(wanted)} steps (timesteps "
                                 f"{', '.join(map(str, wanted))}); got {num_inference_steps}")
            n, shift = self.config.num_train_timesteps, self.config.shift
            grid = np.linspace(1, n, n)[::-1] / n
            grid = shift * grid / (1 + (shift - 1) * grid)
            sigmas = [float(grid[np.abs(grid * n - t).argmin()]) for t in wanted]
            self.timesteps = torch.tensor(wanted, dtype=torch.float32, device=device)
            self.sigmas = torch.tensor([*sigmas, 0.0], dtype=torch.float32, device=device)
            self.num_inference_steps, self._step_index, self._begin_index = len(wanted), None, None

        def step(self, model_output, timestep, sample, *args, **kwargs):
            kwargs.setdefault("generator", self.noise_generator)
            return super().step(model_output, timestep, sample, *args, **kwargs)

    return FewStepScheduler


def euler_scheduler(shift: float):
    """Flow Euler as the Lightning and LightX2V distills sample: `n` steps at sigmas evenly spaced
    from 1 down (1, 0.75, 0.5, 0.25 at four steps), bent by `shift`; at shift 5 that is timesteps
    1000, 937.5, 833.3 and 625, the ones they were distilled at."""
    return _even_euler_class()(shift=shift)


@lru_cache(maxsize=1)
def _even_euler_class():
    from diffusers import FlowMatchEulerDiscreteScheduler

    class EvenEuler(FlowMatchEulerDiscreteScheduler):
        def set_timesteps(self, num_inference_steps=None, device=None, sigmas=None, **kwargs):
            if sigmas is None and num_inference_steps:  # the pipelines pass only a step count
                sigmas = np.linspace(1.0, 0.0, num_inference_steps + 1)[:-1]
            return super().set_timesteps(num_inference_steps, device=device, sigmas=sigmas, **kwargs)

    return EvenEuler


def own_scheduler(pipe):
    """The scheduler the checkpoint loaded with, kept aside the first time a run swaps it, so a
    Quality run after a distill preset's samples as the checkpoint does."""
    if "_studio_own_scheduler" not in pipe.__dict__:
        pipe.__dict__["_studio_own_scheduler"] = pipe.scheduler
    return pipe.__dict__["_studio_own_scheduler"]


def generator_for(seed: int):
    """A CPU generator: the same seed gives the same noise on CUDA, MPS and CPU."""
    import torch

    return torch.Generator("cpu").manual_seed(seed)


def call_pipeline(pipe, request, callback, **kwargs) -> np.ndarray:
    """Run the pipeline with the request's shared fields plus the mode's own kwargs."""
    generator = generator_for(request.seed)
    record, sampler, own = request.checkpoint, request.sampler, own_scheduler(pipe)
    if sampler == "dmd":  # the run's one generator draws the start noise and each step's new noise
        pipe.scheduler = few_step_scheduler(record.timesteps, request.flow_shift, generator)
    elif sampler == "euler":
        pipe.scheduler = euler_scheduler(request.flow_shift)
    else:
        pipe.scheduler = own
        set_flow_shift(pipe, request.flow_shift)
    output = pipe(
        prompt=request.prompt,
        negative_prompt=request.negative_prompt,
        num_inference_steps=request.steps,
        guidance_scale=request.guidance,
        generator=generator,
        output_type="np",
        callback_on_step_end=callback,
        **kwargs,
    )
    return to_uint8_frames(output.frames[0])
