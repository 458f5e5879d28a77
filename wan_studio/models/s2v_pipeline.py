"""Our own `WanS2VPipeline` for Wan 2.2 S2V-14B (diffusers has none), in diffusers' reading order.
The pipeline runs clip after clip (80 frames at 16 fps on the real model): each clip is conditioned
on the reference image, its slice of the audio, the prompt, an optional pose video, and (after the
first) the last `motion_frames` frames of the video so far, re-encoded by the VAE. Progress is
reported per step through `callback_on_step_end` (which may raise to stop between steps), with the
clip number in its kwargs.

UMT5 and the Wan 2.1 VAE are the same objects the swap manager shares with the other Wan 2.x
checkpoints; only the transformer and the wav2vec2 audio encoder are S2V's own.
"""

from __future__ import annotations

import html
import math
import re
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DiffusionPipeline, UniPCMultistepScheduler

from wan_studio import catalog
from wan_studio.catalog import S2V_FIRST_CLIP_DROP as FIRST_CLIP_DROP
from wan_studio.errors import ModelNotAvailable
from wan_studio.media.frames import to_uint8_frames
from wan_studio.models.s2v_transformer import (
    WanS2VTransformer3DModel,  # noqa: F401  (diffusers finds the class via sys.modules)
    load_original,
)

INIT_MOTION_FRAMES = 6  # motion frames set to the reference picture when a video starts from it (as upstream)
WAV2VEC_FPS = 50  # wav2vec2 emits one hidden state per 20 ms
AUDIO_FEATURE_FPS = 30  # upstream resamples the states to 30 per second before bucketing to the video


def flow_scheduler(shift: float) -> UniPCMultistepScheduler:
    """The flow-matching UniPC scheduler every diffusers Wan checkpoint ships."""
    return UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=shift)


def _clean(text: str) -> str:
    import ftfy

    text = html.unescape(html.unescape(ftfy.fix_text(text)))
    return re.sub(r"\s+", " ", text).strip()


class WanS2VPipeline(DiffusionPipeline):
    """Reference image + audio (+ prompt, + pose video) -> video, clip by clip."""

    model_cpu_offload_seq = "text_encoder->audio_encoder->transformer->vae"

    def __init__(self, tokenizer, text_encoder, vae, scheduler, transformer, audio_encoder, feature_extractor):
        super().__init__()
        self.register_modules(
            tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, scheduler=scheduler, transformer=transformer,
            audio_encoder=audio_encoder, feature_extractor=feature_extractor,
        )
        self.vae_scale_factor_temporal = vae.config.scale_factor_temporal if vae is not None else 4
        self.vae_scale_factor_spatial = vae.config.scale_factor_spatial if vae is not None else 8

    # -- loading -----------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, folder, **kwargs):
        """A diffusers-format folder (Tiny S2V, a converted copy) or the original Wan2.2-S2V-14B repo."""
        if (Path(folder) / "model_index.json").is_file():
            return super().from_pretrained(folder, **kwargs)
        return cls.from_original(folder, **kwargs)

    @classmethod
    def from_original(cls, folder, dtype=None, text_encoder=None, tokenizer=None, vae=None, scheduler=None,
                      audio_folder: str = "wav2vec2-large-xlsr-53-english", **_ignored):
        """The original repo layout: the transformer's shards with upstream key names (converted on
        load), wav2vec2 as a transformers folder, and no text encoder or VAE of its own in diffusers
        form: those are Wan 2.1's UMT5 and VAE, given by the caller (the swap manager's shared
        copies) or read from any local diffusers Wan checkpoint that has them."""
        from transformers import Wav2Vec2FeatureExtractor, Wav2Vec2Model

        folder = Path(folder)
        dtypes = dtype if isinstance(dtype, dict) else {"default": dtype or torch.float32}
        default = dtypes.get("default", torch.float32)
        if text_encoder is None or tokenizer is None or vae is None:
            found = _shared_wan_components(default, dtypes.get("vae", torch.float32))
            text_encoder, tokenizer, vae = text_encoder or found[0], tokenizer or found[1], vae or found[2]
        audio_path = folder / audio_folder
        if not (audio_path / "config.json").is_file():
            raise FileNotFoundError(f"the S2V folder {folder} has no {audio_folder}/ "
                                    "(the bundled wav2vec2 audio encoder)")
        return cls(
            tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, scheduler=scheduler or flow_scheduler(3.0),
            transformer=load_original(folder, default),
            # upstream runs wav2vec2 in fp32; it is small (0.3 B) and the audio features stay exact
            audio_encoder=Wav2Vec2Model.from_pretrained(audio_path, dtype=torch.float32).eval(),
            feature_extractor=Wav2Vec2FeatureExtractor.from_pretrained(audio_path),
        )

    # -- encoders --------------------------------------------------------------------------------
    def encode_text(self, prompt: str, max_sequence_length: int = 512) -> torch.Tensor:
        """UMT5 states of the prompt, zero-padded to `max_sequence_length` (as diffusers' Wan does)."""
        device = self._execution_device
        inputs = self.tokenizer(
            [_clean(prompt)], padding="max_length", max_length=max_sequence_length, truncation=True,
            add_special_tokens=True, return_attention_mask=True, return_tensors="pt",
        )
        mask = inputs.attention_mask.to(device)
        states = self.text_encoder(inputs.input_ids.to(device), mask).last_hidden_state
        length = int(mask.sum())
        padded = torch.zeros_like(states)
        padded[:, :length] = states[:, :length]
        return padded.to(self.transformer.dtype)

    def encode_audio(self, samples: np.ndarray, sample_rate: int, video_frames: int, fps: int,
                     lead_frames: int = 0) -> torch.Tensor:
        """wav2vec2 states of every layer, one set per video frame: (1, layers, dim, video_frames).

        Frame i gets the audio at (i - lead_frames) / fps: the first clip's first `lead_frames`
        frames are made and dropped, so the kept frame k is driven by the audio at k / fps, the time
        it plays at in the mp4. Frames before the start or past the end of the audio get zeros
        (silence for the model)."""
        device = self._execution_device
        values = self.feature_extractor(samples, sampling_rate=sample_rate, return_tensors="pt").input_values
        encoder_dtype = next(self.audio_encoder.parameters()).dtype
        states = self.audio_encoder(values.to(device, encoder_dtype), output_hidden_states=True).hidden_states
        states = torch.cat(states).float()  # layers, T at 50 Hz, dim
        length = int(states.shape[1] / WAV2VEC_FPS * AUDIO_FEATURE_FPS)
        # layers, dim, T at 30 Hz
        states = F.interpolate(states.transpose(1, 2), size=length, mode="linear", align_corners=True)
        # each video frame takes the 30 fps state nearest its start time
        index = np.round((np.arange(video_frames) - lead_frames) / fps * AUDIO_FEATURE_FPS).astype(int)
        picked = torch.zeros(states.shape[0], states.shape[1], video_frames, device=device)
        inside = (index >= 0) & (index < length)
        targets = torch.from_numpy(np.nonzero(inside)[0]).to(device)
        picked[..., targets] = states[..., torch.from_numpy(index[inside]).to(device)]
        return picked[None]

    def _set_steps(self, scheduler, solver: str, steps: int, device) -> None:
        """The run's sigmas. UniPC gets upstream's FlowUniPC schedule: from 1 - 1/1000 (diffusers'
        default starts at 1) down toward 0, before the shift; DPM-Solver++ keeps diffusers' own
        (it takes no custom sigmas; upstream's first sigma is 1.0 against 0.9997)."""
        if solver == "unipc":
            top = 1 - 1 / scheduler.config.num_train_timesteps
            scheduler.set_timesteps(sigmas=np.linspace(top, 0, steps + 1)[:-1], device=device)
        else:
            scheduler.set_timesteps(steps, device=device)

    def _scheduler_for(self, solver: str):
        """The run's sampler: the pipeline's flow UniPC, or multistep DPM-Solver++ on the same flow
        sigmas and shift (upstream's `dpm++`)."""
        if solver == "unipc":
            return self.scheduler
        if solver != "dpm++":
            raise ValueError(f"unknown solver {solver!r}; use unipc or dpm++")
        from diffusers import DPMSolverMultistepScheduler

        shift = self.scheduler.config.get("flow_shift", 1.0)
        return DPMSolverMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=shift,
                                           algorithm_type="dpmsolver++", solver_order=2)

    def _vae_stats(self, device, dtype):
        config = self.vae.config
        mean = torch.tensor(config.latents_mean).view(1, -1, 1, 1, 1).to(device, dtype)
        std = torch.tensor(config.latents_std).view(1, -1, 1, 1, 1).to(device, dtype)
        return mean, std

    def encode_video(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pixels (B, 3, T, H, W) in [-1, 1] -> normalised latents (the distribution's mean)."""
        latents = self.vae.encode(pixels.to(self._execution_device, self.vae.dtype)).latent_dist.mode()
        mean, std = self._vae_stats(latents.device, latents.dtype)
        return ((latents - mean) / std).to(self.transformer.dtype)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        mean, std = self._vae_stats(latents.device, self.vae.dtype)
        return self.vae.decode(latents.to(self.vae.dtype) * std + mean, return_dict=False)[0].float().clamp(-1, 1)

    # -- the call -----------------------------------------------------------------------------------
    @staticmethod
    def _to_pixels(images) -> torch.Tensor:
        """PIL images (or one) -> (1, 3, T, H, W) in [-1, 1]."""
        images = images if isinstance(images, (list, tuple)) else [images]
        array = np.stack([np.asarray(image.convert("RGB"), dtype=np.float32) for image in images])
        return torch.from_numpy(array).permute(3, 0, 1, 2)[None] / 127.5 - 1.0

    @torch.no_grad()
    def __call__(
        self,
        image,
        audio: np.ndarray,
        prompt: str,
        negative_prompt: str = "",
        height: int = 448,
        width: int = 832,
        num_frames: int | None = None,
        init_first_frame: bool = False,
        solver: str = "unipc",
        clip_frames: int = 80,
        pose_video: list | None = None,
        audio_sample_rate: int = 16000,
        fps: int = 16,
        num_inference_steps: int = 40,
        guidance_scale: float = 4.5,
        generator: torch.Generator | None = None,
        callback_on_step_end=None,
        output_type: str = "np",
        max_sequence_length: int = 512,
    ) -> np.ndarray:
        # 1. check inputs
        granularity = self.vae_scale_factor_spatial * 8  # the 4x FramePack bucket packs 8x8 latents
        if height % granularity or width % granularity:
            raise ValueError(f"height and width must be divisible by {granularity}, got {height} x {width}")
        if clip_frames % self.vae_scale_factor_temporal:
            raise ValueError(f"clip_frames must be a multiple of {self.vae_scale_factor_temporal}, got {clip_frames}")
        audio_frames = max(1, math.ceil(len(audio) / audio_sample_rate * fps - 1e-6))
        num_frames = num_frames or audio_frames
        # the first clip is made after blank motion frames and loses its first frames; starting from the
        # reference image (upstream's init_first_frame) it continues from the picture and keeps them all
        dropped = 0 if init_first_frame else FIRST_CLIP_DROP
        clips = max(1, math.ceil((num_frames + dropped) / clip_frames))
        device = self._execution_device
        transformer = self.transformer
        motion_frames = transformer.config.motion_frames

        # 2. text (the negative prompt is the unconditional branch)
        do_cfg = guidance_scale > 1.0
        text = self.encode_text(prompt, max_sequence_length)
        negative = self.encode_text(negative_prompt or "", max_sequence_length) if do_cfg else None

        # 3. audio, one wav2vec2 state set per output frame of every clip
        # upstream feeds the first clip audio from t=0 and drops its first frames, so its picture leads the
        # sound by FIRST_CLIP_DROP / fps (187.5 ms); ours starts the audio that much later instead
        audio_embeds = self.encode_audio(audio, audio_sample_rate, clips * clip_frames, fps,
                                         lead_frames=dropped).to(transformer.dtype)

        # 4. reference image, the (blank) motion frames, the pose video
        reference_pixels = self._to_pixels(image)
        reference_latents = self.encode_video(reference_pixels)
        motion_pixels = torch.zeros(1, 3, motion_frames, height, width)
        if init_first_frame:  # the newest motion frames show the reference picture
            motion_pixels[:, :, -INIT_MOTION_FRAMES:] = reference_pixels.cpu().float()
        motion_latents = self.encode_video(motion_pixels)
        pose_latents = self._pose_latents(pose_video, clips, clip_frames, height, width)

        # 5. denoise clip by clip, each continuing from the end of the video so far
        scheduler = self._scheduler_for(solver)
        latent_shape = (1, transformer.config.in_channels, clip_frames // self.vae_scale_factor_temporal,
                        height // self.vae_scale_factor_spatial, width // self.vae_scale_factor_spatial)
        seed = generator.initial_seed() if generator is not None else 0
        outputs, step_index = [], 0
        for clip in range(clips):
            first = clip == 0 and not init_first_frame  # a first clip made after blank motion frames
            # clip r's noise from seed + r, as upstream draws it: a seed gives upstream's noise in every clip
            clip_generator = torch.Generator("cpu").manual_seed(seed + clip)
            latents = torch.randn(latent_shape, generator=clip_generator, dtype=torch.float32).to(device)
            clip_audio = audio_embeds[..., clip * clip_frames : (clip + 1) * clip_frames]
            pose = pose_latents[clip] if pose_latents is not None else None
            self._set_steps(scheduler, solver, num_inference_steps, device)
            if transformer.is_cache_enabled:
                transformer._reset_stateful_cache()  # a step cache starts afresh with each clip
            for t in scheduler.timesteps:
                common = dict(
                    reference_latents=reference_latents, motion_latents=motion_latents, pose_latents=pose,
                    drop_motion=first,
                )
                model_input = latents.to(transformer.dtype)
                timestep = t.expand(1).to(device)
                with transformer.cache_context("cond"):  # the step cache keeps one state per pass
                    noise_pred = transformer(model_input, timestep, text, audio_embeds=clip_audio, **common).float()
                if do_cfg:
                    with transformer.cache_context("uncond"):
                        uncond = transformer(model_input, timestep, negative, audio_embeds=clip_audio * 0,
                                             **common).float()
                    noise_pred = uncond + guidance_scale * (noise_pred - uncond)
                latents = scheduler.step(noise_pred, t, latents, return_dict=False)[0]
                if callback_on_step_end is not None:
                    returned = callback_on_step_end(self, step_index, t,
                                                    {"latents": latents, "clip": clip + 1, "clips": clips})
                    latents = (returned or {}).get("latents", latents)
                step_index += 1

            # 6. decode after the motion latents (or the reference for the first clip), keep the new frames
            before = reference_latents if first else motion_latents
            video = self.decode(torch.cat([before, latents.to(before.dtype)], dim=2))[:, :, -clip_frames:].cpu()
            if first:
                video = video[:, :, dropped:]
            outputs.append(video)
            if clip + 1 < clips:
                overlap = min(motion_frames, video.shape[2])
                motion_pixels = torch.cat([motion_pixels[:, :, overlap:], video[:, :, -overlap:]], dim=2)
                motion_latents = self.encode_video(motion_pixels)

        self.maybe_free_model_hooks()
        video = torch.cat(outputs, dim=2)[:, :, :num_frames]
        frames = ((video[0].permute(1, 2, 3, 0) + 1) / 2).numpy()  # F, H, W, 3 in [0, 1]
        return frames if output_type == "np" else to_uint8_frames(frames)

    def _pose_latents(self, pose_video, clips: int, clip_frames: int, height: int, width: int):
        """One latent clip per video clip; frames past the pose video's end are black (-1)."""
        if not pose_video:
            return None
        pixels = self._to_pixels(pose_video)
        needed = clips * clip_frames
        if pixels.shape[2] < needed:
            pad = -torch.ones(1, 3, needed - pixels.shape[2], height, width)
            pixels = torch.cat([pixels, pad], dim=2)
        latents = []
        for clip in range(clips):
            part = pixels[:, :, clip * clip_frames : (clip + 1) * clip_frames]
            # a copy of the first frame in front, so the clip's frames fill whole 4-frame latents
            latents.append(self.encode_video(torch.cat([part[:, :, :1], part], dim=2))[:, :, 1:])
        return latents


def _shared_wan_components(dtype, vae_dtype):
    """UMT5 (+ tokenizer) and the Wan 2.1 VAE from a local diffusers Wan checkpoint, or a clear error."""
    from diffusers import AutoencoderKLWan
    from transformers import AutoTokenizer, UMT5EncoderModel

    from wan_studio.models import hub

    donors = [c for c in catalog.checkpoints() if not c.is_tiny and c.architecture != "s2v"
              and c.shared.get("text_encoder") == "umt5-xxl" and c.shared.get("vae") == "wan2.1-vae"]
    for record in donors:
        folder = hub.find_local(record)
        if folder is not None and (folder / "text_encoder").is_dir() and (folder / "vae").is_dir():
            return (UMT5EncoderModel.from_pretrained(folder / "text_encoder", dtype=dtype).eval(),
                    AutoTokenizer.from_pretrained(folder / "tokenizer"),
                    AutoencoderKLWan.from_pretrained(folder / "vae", dtype=vae_dtype).eval())
    smallest = min(donors, key=lambda c: c.download_gb)
    raise ModelNotAvailable(
        "S2V uses the UMT5 text encoder and Wan 2.1 VAE of the diffusers Wan checkpoints (they are not in the "
        f"S2V repo in diffusers form), and none is on this machine. Download one, e.g.:\n"
        f"    {hub.download_command(smallest)}"
    )
