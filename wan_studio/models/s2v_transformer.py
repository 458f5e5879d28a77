"""The Wan 2.2 S2V transformer in diffusers style, written from the model's math, plus a converter
from the original checkpoint's keys.

diffusers 0.42 has no S2V model and the upstream `wan` package cannot run on CPU or MPS (CUDA at
import, flash-attention calls), so this is our own `ModelMixin` + `ConfigMixin`. It reuses
diffusers' Wan pieces where the math is the same (attention with its backend dispatch, the
feed-forward, fp32 layer norms, the adaptive norm) so memory plans (layerwise casting, group
offload, compile of the repeated block) apply as they do to `WanTransformer3DModel`.

What S2V adds to a Wan 2.1 transformer:
- the sequence is [noisy video tokens | reference image tokens | motion tokens]; each part is
  tagged with a learned embedding (0, 1, 2) and gets its own 3D rotary positions: the reference
  sits at frame 30, the motion frames at negative times (so "in the past");
- the motion latents (the last 73 frames of the previous clip) are packed FramePack-style: the
  newest latent frame at full resolution, the 2 before it at 2x, the 16 before those at 4x;
- with `zero_timestep` the reference and motion tokens are modulated as clean (timestep 0);
- audio: wav2vec2 hidden states (all layers, mixed by learned weights) go through a causal 1D
  conv encoder to a few tokens per latent frame, and cross-attention blocks after some of the
  transformer layers add them to each frame's tokens, with an adaptive norm driven by a global
  audio token;
- an optional pose video, encoded by the VAE, is added to the patch embedding.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.hooks._helpers import TransformerBlockMetadata, TransformerBlockRegistry
from diffusers.models.cache_utils import CacheMixin
from diffusers.models.modeling_utils import ModelMixin
from diffusers.models.normalization import AdaLayerNorm, FP32LayerNorm
from diffusers.models.transformers.transformer_wan import WanAttention, WanAttnProcessor, WanTransformerBlock

# where the reference image sits on the time axis of the rotary embedding (upstream's choice)
REFERENCE_FRAME_POSITION = 30


# -- rotary positions --------------------------------------------------------------------------
def _axis_splits(head_dim: int) -> tuple[int, int, int]:
    """Complex channel pairs given to time, height and width (Wan's split of the head)."""
    pairs = head_dim // 2
    return pairs - 2 * (pairs // 3), pairs // 3, pairs // 3


def _inverse_frequencies(pairs: int, theta: float = 10000.0) -> torch.Tensor:
    dim = 2 * pairs
    return 1.0 / torch.pow(theta, torch.arange(0, dim, 2, dtype=torch.float64) / dim)


def _spread(count: int, extent: int) -> np.ndarray:
    """`count` integer positions spread over `extent` (a coarser grid covering the same area)."""
    return np.linspace(0, extent - 1, count).astype(int)


def grid_positions(times, heights, widths) -> torch.Tensor:
    """(N, 3) positions of a (t, h, w) grid in token order."""
    t, h, w = np.meshgrid(np.asarray(times), np.asarray(heights), np.asarray(widths), indexing="ij")
    return torch.from_numpy(np.stack([t.ravel(), h.ravel(), w.ravel()], axis=1).astype(np.int64))


def rotary_cos_sin(positions: torch.Tensor, head_dim: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin (1, N, 1, head_dim), each value repeated for its channel pair, as diffusers'
    Wan attention processor expects. Angles are computed in float64 on the CPU, then kept in fp32."""
    angles = []
    for axis, pairs in enumerate(_axis_splits(head_dim)):
        angles.append(positions[:, axis : axis + 1].double() * _inverse_frequencies(pairs)[None])
    angle = torch.cat(angles, dim=1).repeat_interleave(2, dim=1)
    cos, sin = angle.cos().float(), angle.sin().float()
    return cos[None, :, None].to(device), sin[None, :, None].to(device)


# -- audio -------------------------------------------------------------------------------------
class CausalConv1d(nn.Conv1d):
    """A 1D convolution that only looks back in time (left padding by repeating the first frame)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, (self.kernel_size[0] - 1, 0), mode="replicate"))


class WanS2VAudioEncoder(nn.Module):
    """wav2vec2 hidden states of every layer -> a few audio tokens per latent frame.

    The layers are mixed with learned softmax-free weights (SiLU, normalised to sum 1); then causal
    convs bring the rate down 4x (one step per latent frame) and split the channels into
    `num_tokens` local tokens (plus a learned padding token). With `global_token`, a second
    branch (sharing the later convs) gives one global token per frame for the adaptive norms."""

    def __init__(self, audio_dim: int, num_audio_layers: int, dim: int, num_tokens: int, global_token: bool):
        super().__init__()
        self.num_tokens = num_tokens
        self.layer_weights = nn.Parameter(torch.full((1, num_audio_layers, 1, 1), 0.01))
        self.conv1_local = CausalConv1d(audio_dim, dim // 4 * num_tokens, 3)
        self.conv1_global = CausalConv1d(audio_dim, dim // 4, 3) if global_token else None
        self.conv2 = CausalConv1d(dim // 4, dim // 2, 3, stride=2)
        self.conv3 = CausalConv1d(dim // 2, dim, 3, stride=2)
        self.norm1 = nn.LayerNorm(dim // 4, eps=1e-6, elementwise_affine=False)
        self.norm2 = nn.LayerNorm(dim // 2, eps=1e-6, elementwise_affine=False)
        self.norm3 = nn.LayerNorm(dim, eps=1e-6, elementwise_affine=False)
        self.final_linear = nn.Linear(dim, dim) if global_token else None
        self.padding_tokens = nn.Parameter(torch.zeros(1, 1, 1, dim))

    def _downsample(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, T) after the first conv -> (N, T/4, dim)."""
        x = F.silu(self.norm1(x.transpose(1, 2)))
        x = F.silu(self.norm2(self.conv2(x.transpose(1, 2)).transpose(1, 2)))
        return F.silu(self.norm3(self.conv3(x.transpose(1, 2)).transpose(1, 2)))

    def forward(self, features: torch.Tensor):
        """features (B, layers, audio_dim, T) -> local (B, T/4, tokens+1, dim), global (B, T/4, 1, dim) or None."""
        features = features.float()
        weights = F.silu(self.layer_weights.float())
        mixed = (features * weights / weights.sum(dim=1, keepdim=True)).sum(dim=1)  # B, audio_dim, T
        batch = mixed.shape[0]
        local = self.conv1_local(mixed)  # B, tokens * dim/4, T
        local = local.unflatten(1, (self.num_tokens, -1)).flatten(0, 1)  # B*tokens, dim/4, T
        local = self._downsample(local)
        local = local.unflatten(0, (batch, self.num_tokens)).permute(0, 2, 1, 3)  # B, T', tokens, dim
        local = torch.cat([local, self.padding_tokens.expand(batch, local.shape[1], 1, -1)], dim=2)
        if self.conv1_global is None:
            return local, None
        glob = self.final_linear(self._downsample(self.conv1_global(mixed)))
        return local, glob[:, :, None]


class WanS2VAudioInjector(nn.Module):
    """Cross-attention from one latent frame's video tokens to that frame's audio tokens."""

    def __init__(self, dim: int, num_heads: int, eps: float, adaptive_norm: bool):
        super().__init__()
        self.adain = AdaLayerNorm(dim, output_dim=2 * dim, chunk_dim=1) if adaptive_norm else None
        self.norm = nn.LayerNorm(dim, eps=eps, elementwise_affine=False)
        self.attn = WanAttention(
            dim=dim, heads=num_heads, dim_head=dim // num_heads, eps=eps,
            cross_attention_dim_head=dim // num_heads, processor=WanAttnProcessor(),
        )

    def forward(self, frames: torch.Tensor, audio_tokens: torch.Tensor, audio_global: torch.Tensor | None,
                compute: torch.dtype) -> torch.Tensor:
        """frames: fp32 residual stream; the norm stays fp32, the attention computes in `compute`."""
        if self.adain is not None:
            normed = self.adain(frames, temb=audio_global.to(compute))
        else:
            normed = self.norm(frames)
        return self.attn(normed.to(compute), audio_tokens.to(compute), None, None)


# -- motion frames -----------------------------------------------------------------------------
class WanS2VFramePack(nn.Module):
    """Packs the motion latents: the newest `buckets[0]` latent frames at the model's patch size,
    the `buckets[1]` before them 2x coarser, the `buckets[2]` before those 4x coarser."""

    def __init__(self, in_channels: int, dim: int, buckets=(1, 2, 16), drop_mode: str = "drop"):
        super().__init__()
        self.buckets = tuple(buckets)
        self.drop_mode = drop_mode
        self.proj = nn.Conv3d(in_channels, dim, kernel_size=(1, 2, 2), stride=(1, 2, 2))
        self.proj_2x = nn.Conv3d(in_channels, dim, kernel_size=(2, 4, 4), stride=(2, 4, 4))
        self.proj_4x = nn.Conv3d(in_channels, dim, kernel_size=(4, 8, 8), stride=(4, 8, 8))

    def forward(self, motion_latents: torch.Tensor, keep: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
        """motion_latents (B, C, T, H, W) -> tokens (B, N, dim), positions (N, 3).

        `keep` says how many of the near buckets to use: 2 all, 1 without the newest frame,
        0 the 4x bucket only (dropped, or zeroed when `drop_mode` is "padd")."""
        batch, channels, frames, height, width = motion_latents.shape
        total = sum(self.buckets)
        packed = motion_latents.new_zeros(batch, channels, total, height, width)
        overlap = min(total, frames)
        if overlap:
            packed[:, :, -overlap:] = motion_latents[:, :, -overlap:]
        if keep < 2 and self.drop_mode != "drop":
            packed[:, :, -sum(self.buckets[: len(self.buckets) - keep - 1]) :] = 0
        far, middle, near = packed.split(list(self.buckets)[::-1], dim=2)
        parts, positions = [], []
        start = 0  # going back in time from the newest frame
        levels = ((near, self.proj, 1), (middle, self.proj_2x, 2), (far, self.proj_4x, 4))
        for index, (latents, proj, scale) in enumerate(levels):
            length = self.buckets[index]
            start += length
            if self.drop_mode == "drop" and index < 2 and keep < 2 - index:
                continue
            parts.append(proj(latents).flatten(2).transpose(1, 2))
            times = -np.linspace(start, start - length + 1, length // scale).astype(int)
            rows, cols = height // 2, width // 2  # the full-resolution token grid these cover
            positions.append(grid_positions(times, _spread(height // (2 * scale), rows),
                                            _spread(width // (2 * scale), cols)))
        return torch.cat(parts, dim=1), torch.cat(positions, dim=0)


# -- the transformer ---------------------------------------------------------------------------
def _modulate(x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, split: int) -> torch.Tensor:
    """x * (1 + scale) + shift with the first modulation for tokens before `split`, the second after."""
    return torch.cat([x[:, :split] * (1 + scale[:, 0:1]) + shift[:, 0:1],
                      x[:, split:] * (1 + scale[:, 1:2]) + shift[:, 1:2]], dim=1)


def _gate(y: torch.Tensor, gate: torch.Tensor, split: int) -> torch.Tensor:
    return torch.cat([y[:, :split] * gate[:, 0:1], y[:, split:] * gate[:, 1:2]], dim=1)


class WanS2VTransformerBlock(WanTransformerBlock):
    """A Wan 2.1 block whose modulation has two rows: one for the noisy tokens, one for the
    reference and motion tokens after them (timestep 0 with `zero_timestep`).

    The residual stream stays fp32 whatever the weights' dtype, as in upstream's autocast run (its
    gated sums happen in an fp32 region); each sub-layer computes in the weights' dtype, which the
    text context carries (the text embedder made it)."""

    def forward(self, hidden_states, encoder_hidden_states, temb, rotary_emb, split: int):
        # temb: (B, 6, 2, dim) fp32
        compute = encoder_hidden_states.dtype
        hidden_states = hidden_states.float()
        shift, scale, gate, c_shift, c_scale, c_gate = (self.scale_shift_table.unsqueeze(2) + temb.float()).unbind(1)

        normed = _modulate(self.norm1(hidden_states), scale, shift, split).to(compute)
        attn_output = self.attn1(normed, None, None, rotary_emb)
        hidden_states = hidden_states + _gate(attn_output.float(), gate, split)

        normed = self.norm2(hidden_states).to(compute)
        hidden_states = hidden_states + self.attn2(normed, encoder_hidden_states, None, None).float()

        normed = _modulate(self.norm3(hidden_states), c_scale, c_shift, split).to(compute)
        ff_output = self.ffn(normed)
        return hidden_states + _gate(ff_output.float(), c_gate, split)


class FP32Linear(nn.Linear):
    """A linear layer that computes in fp32 whatever its weights' dtype: upstream runs the time
    projection and the output head in an fp32 autocast region. The fp32 copy of the weights is
    transient (made after any offload or casting hook has placed them)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias.float()
        return F.linear(x.float(), self.weight.float(), bias)


def timestep_features(timesteps: torch.Tensor, dim: int) -> torch.Tensor:
    """Wan's sinusoidal features [cos | sin], in float64 where the device has it."""
    dtype = torch.float32 if timesteps.device.type == "mps" else torch.float64
    half = dim // 2
    position = timesteps.to(dtype)
    angle = torch.outer(position, torch.pow(10000, -torch.arange(half, device=timesteps.device, dtype=dtype) / half))
    return torch.cat([torch.cos(angle), torch.sin(angle)], dim=1).float()


# diffusers' step caches look blocks up by their exact class: ours returns the hidden states alone, as Wan's does
TransformerBlockRegistry.register(WanS2VTransformerBlock, TransformerBlockMetadata(
    return_hidden_states_index=0, return_encoder_hidden_states_index=None))


class WanS2VTransformer3DModel(ModelMixin, ConfigMixin, CacheMixin):
    """Wan 2.2 S2V-14B's denoiser (`dim` = heads x head_dim).

    forward(hidden_states (B, C, F, H, W) noisy latents of one clip, timestep (B,),
            encoder_hidden_states (B, text_len, text_dim) UMT5 states padded with zeros,
            reference_latents (B, C, 1, H, W), motion_latents (B, C, T_m, H, W),
            audio_embeds (B, layers, audio_dim, frames) wav2vec2 states at the video fps for the
            clip's frames, pose_latents (B, cond_dim, F, H, W) or None, drop_motion)
    -> (B, C, F, H, W) flow prediction.
    """

    _supports_gradient_checkpointing = False
    _skip_layerwise_casting_patterns = ["patch_embedding", "text_embedder", "time_embedder", "time_proj",
                                        "cond_encoder", "frame_pack", "audio_encoder", "cond_mask", "norm"]
    _keep_in_fp32_modules = ["time_embedder", "scale_shift_table", "norm1", "norm2", "norm3", "audio_encoder"]
    _no_split_modules = ["WanS2VTransformerBlock"]
    _repeated_blocks = ["WanS2VTransformerBlock"]

    @register_to_config
    def __init__(
        self,
        patch_size: tuple[int, int, int] = (1, 2, 2),
        num_attention_heads: int = 40,
        attention_head_dim: int = 128,
        in_channels: int = 16,
        out_channels: int = 16,
        text_dim: int = 4096,
        text_len: int = 512,
        freq_dim: int = 256,
        ffn_dim: int = 13824,
        num_layers: int = 40,
        cross_attn_norm: bool = True,
        eps: float = 1e-6,
        audio_dim: int = 1024,
        num_audio_layers: int = 25,
        num_audio_tokens: int = 4,
        audio_inject_layers: tuple[int, ...] = (0, 4, 8, 12, 16, 20, 24, 27, 30, 33, 36, 39),
        enable_adain: bool = True,
        cond_dim: int = 16,
        zero_timestep: bool = True,
        add_last_motion: bool = True,
        framepack_buckets: tuple[int, int, int] = (1, 2, 16),
        framepack_drop_mode: str = "padd",
        motion_frames: int = 73,
    ):
        super().__init__()
        dim = num_attention_heads * attention_head_dim
        self.patch_embedding = nn.Conv3d(in_channels, dim, kernel_size=patch_size, stride=patch_size)
        self.text_embedder = nn.Sequential(nn.Linear(text_dim, dim), nn.GELU(approximate="tanh"), nn.Linear(dim, dim))
        self.time_embedder = nn.Sequential(FP32Linear(freq_dim, dim), nn.SiLU(), FP32Linear(dim, dim))
        self.time_proj = FP32Linear(dim, dim * 6)
        self.cond_encoder = nn.Conv3d(cond_dim, dim, kernel_size=patch_size, stride=patch_size) if cond_dim else None
        self.cond_mask_embedding = nn.Embedding(3, dim)  # 0 noisy, 1 reference, 2 motion
        self.audio_encoder = WanS2VAudioEncoder(audio_dim, num_audio_layers, dim, num_audio_tokens, enable_adain)
        self.frame_pack = WanS2VFramePack(in_channels, dim, framepack_buckets, framepack_drop_mode)
        self.blocks = nn.ModuleList(
            WanS2VTransformerBlock(dim, ffn_dim, num_attention_heads, cross_attn_norm=cross_attn_norm, eps=eps)
            for _ in range(num_layers)
        )
        self.audio_injectors = nn.ModuleList(
            WanS2VAudioInjector(dim, num_attention_heads, eps, enable_adain) for _ in audio_inject_layers
        )
        self.norm_out = FP32LayerNorm(dim, eps, elementwise_affine=False)
        self.proj_out = FP32Linear(dim, out_channels * math.prod(patch_size))
        self.scale_shift_table = nn.Parameter(torch.randn(1, 2, dim) / dim**0.5)

    @property
    def motion_latent_frames(self) -> int:
        return (self.config.motion_frames + 3) // 4

    def forward(
        self,
        hidden_states: torch.Tensor,
        timestep: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        reference_latents: torch.Tensor,
        motion_latents: torch.Tensor,
        audio_embeds: torch.Tensor,
        pose_latents: torch.Tensor | None = None,
        drop_motion: bool = False,
    ) -> torch.Tensor:
        cfg = self.config
        batch, _, frames, height, width = hidden_states.shape
        p_t, p_h, p_w = cfg.patch_size
        grid = (frames // p_t, height // p_h, width // p_w)
        head_dim = cfg.attention_head_dim
        device = hidden_states.device

        # 1. audio tokens: the clip's audio after the first frame repeated over the motion frames,
        #    encoded, then the motion part dropped again -> one set of tokens per latent frame
        audio = torch.cat([audio_embeds[..., :1].expand(-1, -1, -1, cfg.motion_frames), audio_embeds], dim=-1)
        audio_tokens, audio_global = self.audio_encoder(audio)
        audio_tokens = audio_tokens[:, self.motion_latent_frames :]
        if audio_global is not None:
            audio_global = audio_global[:, self.motion_latent_frames :]
        if audio_tokens.shape[1] != grid[0]:
            raise ValueError(f"audio gives {audio_tokens.shape[1]} latent frames but the video has {grid[0]}")

        # 2. tokens: noisy video (+ pose), reference, motion; each with its positions and tag
        video = self.patch_embedding(hidden_states)
        if self.cond_encoder is not None:
            pose = pose_latents if pose_latents is not None else torch.zeros_like(hidden_states)
            video = video + self.cond_encoder(pose.to(video.dtype))
        tokens = [video.flatten(2).transpose(1, 2)]
        positions = [grid_positions(np.arange(grid[0]), np.arange(grid[1]), np.arange(grid[2]))]
        tokens.append(self.patch_embedding(reference_latents.to(video.dtype)).flatten(2).transpose(1, 2))
        positions.append(grid_positions([REFERENCE_FRAME_POSITION], np.arange(grid[1]), np.arange(grid[2])))
        keep = 2 if cfg.add_last_motion else 0
        if not drop_motion:
            motion, motion_positions = self.frame_pack(motion_latents.to(video.dtype), keep)
            tokens.append(motion)
            positions.append(motion_positions)
        counts = [t.shape[1] for t in tokens]
        hidden = torch.cat(tokens, dim=1)
        tags = torch.cat([torch.full((n,), i, dtype=torch.long, device=device) for i, n in enumerate(counts)])
        hidden = hidden + self.cond_mask_embedding(tags)[None].to(hidden.dtype)
        rotary = rotary_cos_sin(torch.cat(positions), head_dim, device)
        video_len = counts[0]

        # 3. timestep modulation: the noisy tokens at t, the others at 0 (zero_timestep) or t
        steps = timestep.reshape(-1).expand(batch) if timestep.numel() == 1 else timestep.reshape(-1)
        if cfg.zero_timestep:
            steps = torch.cat([steps, steps.new_zeros(1)])
        temb = self.time_embedder(timestep_features(steps, cfg.freq_dim))  # fp32, as upstream
        modulation = self.time_proj(F.silu(temb)).unflatten(1, (6, -1))
        if cfg.zero_timestep:
            temb = temb[:-1]
            modulation = torch.stack([modulation[:-1], modulation[-1:].expand(batch, -1, -1)], dim=2)
            split = video_len
        else:
            modulation = torch.stack([modulation, modulation], dim=2)
            split = hidden.shape[1]

        # 4. text, zero-padded to the full context like upstream (the padding is attended to)
        missing = cfg.text_len - encoder_hidden_states.shape[1]
        if missing > 0:
            encoder_hidden_states = F.pad(encoder_hidden_states, (0, 0, 0, missing))
        context = self.text_embedder(encoder_hidden_states.to(self.text_embedder[0].weight.dtype))

        # 5. blocks, with audio added to the video tokens after the chosen ones
        injector_of = {layer: i for i, layer in enumerate(cfg.audio_inject_layers)}
        frame_audio = audio_tokens.flatten(0, 1)
        frame_global = audio_global.flatten(0, 2) if audio_global is not None else None
        hidden = hidden.float()  # the residual stream (see WanS2VTransformerBlock)
        for index, block in enumerate(self.blocks):
            hidden = block(hidden, context, modulation, rotary, split)
            if index in injector_of:
                frames_view = hidden[:, :video_len].reshape(batch * grid[0], -1, hidden.shape[-1])
                added = self.audio_injectors[injector_of[index]](frames_view, frame_audio, frame_global, context.dtype)
                hidden = torch.cat([hidden[:, :video_len] + added.reshape(batch, video_len, -1),
                                    hidden[:, video_len:]], dim=1)

        # 6. output head on the video tokens, then unpatchify
        shift, scale = (self.scale_shift_table + temb[:, None]).unbind(1)
        out = self.norm_out(hidden[:, :video_len].float()) * (1 + scale[:, None]) + shift[:, None]
        out = self.proj_out(out)
        out = out.reshape(batch, *grid, p_t, p_h, p_w, -1).permute(0, 7, 1, 4, 2, 5, 3, 6)
        return out.flatten(6, 7).flatten(4, 5).flatten(2, 3)


# -- the original checkpoint -------------------------------------------------------------------
_BLOCK_RENAMES = (
    ("self_attn.q.", "attn1.to_q."), ("self_attn.k.", "attn1.to_k."), ("self_attn.v.", "attn1.to_v."),
    ("self_attn.o.", "attn1.to_out.0."), ("self_attn.norm_q.", "attn1.norm_q."),
    ("self_attn.norm_k.", "attn1.norm_k."),
    ("cross_attn.q.", "attn2.to_q."), ("cross_attn.k.", "attn2.to_k."), ("cross_attn.v.", "attn2.to_v."),
    ("cross_attn.o.", "attn2.to_out.0."), ("cross_attn.norm_q.", "attn2.norm_q."),
    ("cross_attn.norm_k.", "attn2.norm_k."),
    ("norm3.", "norm2."), ("ffn.0.", "ffn.net.0.proj."), ("ffn.2.", "ffn.net.2."), ("modulation", "scale_shift_table"),
)
_INJECTOR_RENAMES = (
    ("q.", "attn.to_q."), ("k.", "attn.to_k."), ("v.", "attn.to_v."), ("o.", "attn.to_out.0."),
    ("norm_q.", "attn.norm_q."), ("norm_k.", "attn.norm_k."),
)
_TOP_RENAMES = {
    "text_embedding.0.": "text_embedder.0.", "text_embedding.2.": "text_embedder.2.",
    "time_embedding.0.": "time_embedder.0.", "time_embedding.2.": "time_embedder.2.",
    "time_projection.1.": "time_proj.", "head.head.": "proj_out.", "head.modulation": "scale_shift_table",
    "trainable_cond_mask.": "cond_mask_embedding.", "frame_packer.": "frame_pack.",
    "casual_audio_encoder.weights": "audio_encoder.layer_weights",
    "patch_embedding.": "patch_embedding.", "cond_encoder.": "cond_encoder.",
}


def _rename(key: str) -> str | None:
    if key.startswith("blocks."):
        index, rest = key[len("blocks."):].split(".", 1)
        for old, new in _BLOCK_RENAMES:
            if rest.startswith(old):
                return f"blocks.{index}.{new}{rest[len(old):]}"
        return None
    found = re.match(r"audio_injector\.injector\.(\d+)\.(.+)", key)
    if found:
        for old, new in _INJECTOR_RENAMES:
            if found.group(2).startswith(old):
                return f"audio_injectors.{found.group(1)}.{new}{found.group(2)[len(old):]}"
        return None
    found = re.match(r"audio_injector\.injector_adain_layers\.(\d+)\.linear\.(.+)", key)
    if found:
        return f"audio_injectors.{found.group(1)}.adain.linear.{found.group(2)}"
    found = re.match(r"casual_audio_encoder\.encoder\.(conv1_local|conv1_global|conv2|conv3)\.conv\.(.+)", key)
    if found:
        return f"audio_encoder.{found.group(1)}.{found.group(2)}"
    found = re.match(r"casual_audio_encoder\.encoder\.(final_linear\..+|padding_tokens)$", key)
    if found:
        return f"audio_encoder.{found.group(1)}"
    for old, new in _TOP_RENAMES.items():
        if key.startswith(old):
            return new + key[len(old):]
    return None


def convert_original_state_dict(original: dict) -> dict:
    """Original (upstream `wan`) S2V keys -> ours. Raises on a key it does not know."""
    converted, unknown = {}, []
    for key, tensor in original.items():
        new = _rename(key)
        if new is None:
            unknown.append(key)
        else:
            converted[new] = tensor
    if unknown:
        raise ValueError(f"{len(unknown)} keys of the original S2V checkpoint have no place in our model, "
                         f"e.g. {unknown[:5]}")
    return converted


def config_from_original(original: dict) -> dict:
    """Our config from the original checkpoint's config.json (the fields that shape the model)."""
    dim, heads = original["dim"], original["num_heads"]
    ours = dict(
        num_attention_heads=heads, attention_head_dim=dim // heads, in_channels=original.get("in_dim", 16),
        out_channels=original.get("out_dim", 16), text_dim=original.get("text_dim", 4096),
        text_len=original.get("text_len", 512), freq_dim=original.get("freq_dim", 256), ffn_dim=original["ffn_dim"],
        num_layers=original["num_layers"], cross_attn_norm=original.get("cross_attn_norm", True),
        eps=original.get("eps", 1e-6), audio_dim=original.get("audio_dim", 1024),
        num_audio_tokens=original.get("num_audio_token", 4),
        audio_inject_layers=tuple(original.get("audio_inject_layers", (0, 4, 8, 12, 16, 20, 24, 27))),
        enable_adain=original.get("enable_adain", False), cond_dim=original.get("cond_dim", 0),
        zero_timestep=original.get("zero_timestep", False), add_last_motion=original.get("add_last_motion", True),
        framepack_drop_mode=original.get("framepack_drop_mode", "drop"),
        motion_frames=original.get("motion_frames", 73),
    )
    if "patch_size" in original:
        ours["patch_size"] = tuple(original["patch_size"])
    if original.get("enable_motioner", False) or not original.get("enable_framepack", True):
        raise ValueError("only the FramePack motion variant of S2V (Wan2.2-S2V-14B) is supported")
    return ours


def load_original(folder: Path, dtype=None) -> WanS2VTransformer3DModel:
    """Build the transformer from an original-layout folder (config.json + *.safetensors shards)."""
    from safetensors.torch import load_file

    folder = Path(folder)
    config = config_from_original(json.loads((folder / "config.json").read_text()))
    # torch's device mode is thread-local; accelerate's init_empty_weights patches nn.Module for every
    # thread, so a model another thread builds meanwhile would get meta tensors. Every tensor of ours
    # (buffers too) is in the state dict, so nothing is left on meta.
    with torch.device("meta"):
        model = WanS2VTransformer3DModel(**config)
    shards = sorted(folder.glob("*.safetensors"))
    if not shards:
        raise FileNotFoundError(f"no .safetensors weights in {folder}")
    expected, loaded = set(model.state_dict()), set()
    for shard in shards:  # one shard at a time, so peak memory stays near the model's own size
        converted = convert_original_state_dict(load_file(shard))
        if dtype is not None:  # like diffusers' from_pretrained: the precision-critical parts stay fp32
            keep = set(model._keep_in_fp32_modules)
            converted = {k: v.to(torch.float32 if keep & set(k.split(".")) else dtype) for k, v in converted.items()}
        unexpected = sorted(set(converted) - expected)
        if unexpected:
            raise ValueError(f"S2V checkpoint does not fit our model: unexpected {unexpected[:5]}")
        model.load_state_dict(converted, strict=False, assign=True)
        loaded |= set(converted)
    missing = sorted(expected - loaded)
    if missing:
        raise ValueError(f"S2V checkpoint does not fit our model: missing {missing[:5]}")
    return model.eval()


def full_size_config() -> dict:
    """The 14B transformer's config, as recorded on the catalog record (for memory estimates)."""
    from wan_studio.catalog import CATALOG_FILE

    for raw in json.loads(CATALOG_FILE.read_text())["checkpoints"]:
        if raw.get("architecture") == "s2v" and "transformer_config" in raw:
            return dict(raw["transformer_config"])
    raise KeyError("no S2V record with a transformer_config in the catalog")
