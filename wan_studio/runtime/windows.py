"""Long videos: a request past the checkpoint's frame range is made in windows of its native length.

Each later window continues from the end of the one before, in one of four ways:
- "frames" (T2V, TI2V, V2V): its first `overlap` frames are the last `overlap` frames of the window
  before. They are VAE-encoded, and after every denoising step the window's first latents are set
  back to them, noised to the step's level (x = (1 - sigma) x0 + sigma noise, the flow-matching
  path), so the model paints the rest of the window around frames it cannot change;
- "last frame" (I2V, FLF2V): the window before's last frame is the next window's start image (the
  only frame these checkpoints take); FLF2V's last window ends on the request's last image;
- "frames given to VACE to keep" (VACE): the frames before go into VACE's own conditioning with
  a black mask (pipelines/vace.py). V2V and VACE windows read their own slice of the input video;
- "frames Animate carries into its next segment" (Animate): a window is one of its segments; the
  frames before are given to its first segment the way the pipeline gives a later segment the end
  of the one before (pipelines/animate.py). Each reads its slice of the pose, face, background
  and mask videos.
Extend (`continue_from`) treats a finished video as the window before the first.

The overlapping frames are cross-faded, and each later window's colours are pulled toward the
first window's (per-channel mean and spread, by `color_correction`), so brightness cannot drift.
A multi-line prompt gives one line per window, the last line repeating.

Every finished window is saved under the job's key (the prepared request), so a job stopped by a
crash, `kill -9` or Stop continues from its last finished window when it runs again; the files go
once the result is saved.
"""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from wan_studio.errors import Paused
from wan_studio.requests.long_video import (
    DEFAULT_COLOR_CORRECTION,
    FRAMES,
    LAST_FRAME,
    SEGMENT_FRAMES,
    VACE_FRAMES,
    Windows,
)


def prompt_lines(prompt: str) -> list[str]:
    return [line.strip() for line in prompt.splitlines() if line.strip()] or [prompt]


def prompt_for(prompt: str, index: int) -> str:
    """Window `index`'s prompt: its line of a multi-line prompt, the last line repeating."""
    lines = prompt_lines(prompt)
    return lines[min(index, len(lines) - 1)]


# -- stitching ---------------------------------------------------------------------------------------
def match_colors(frames: np.ndarray, reference: np.ndarray, strength: float) -> np.ndarray:
    """`frames` with each channel's mean and spread moved toward `reference`'s by `strength` (0-1)."""
    if strength <= 0:
        return frames
    values = frames.astype(np.float32)
    mean, spread = values.mean(axis=(0, 1, 2)), values.std(axis=(0, 1, 2)) + 1e-3
    target_mean, target_spread = reference.mean(axis=(0, 1, 2)), reference.std(axis=(0, 1, 2)) + 1e-3
    matched = (values - mean) / spread * target_spread + target_mean
    return np.clip(np.rint(values + strength * (matched - values)), 0, 255).astype(np.uint8)


def stitch(windows: list[np.ndarray], overlap: int, total: int) -> np.ndarray:
    """The windows joined, each overlap cross-faded from the window before into the next, cut to `total`."""
    video = windows[0]
    for window in windows[1:]:
        if overlap:
            weights = (np.arange(1, overlap + 1, dtype=np.float32) / (overlap + 1))[:, None, None, None]
            joined = (1 - weights) * video[-overlap:].astype(np.float32) + weights * window[:overlap].astype(np.float32)
            video = np.concatenate([video[:-overlap], np.rint(joined).astype(np.uint8), window[overlap:]])
        else:
            video = np.concatenate([video, window])
    return video[:total]


# -- the frames conditioning -------------------------------------------------------------------------
def encode_frames(pipe, frames: np.ndarray):
    """uint8 frames (F, H, W, 3) -> the pipeline's normalised latents (1, C, F', h, w)."""
    import torch

    vae = pipe.vae
    device = getattr(pipe, "_execution_device", None) or next(vae.parameters()).device
    video = torch.from_numpy(frames).permute(3, 0, 1, 2)[None].to(device=device, dtype=vae.dtype) / 127.5 - 1.0
    with torch.no_grad():
        latents = vae.encode(video).latent_dist.mode()
    mean = torch.tensor(vae.config.latents_mean, device=latents.device, dtype=latents.dtype).view(1, -1, 1, 1, 1)
    std = torch.tensor(vae.config.latents_std, device=latents.device, dtype=latents.dtype).view(1, -1, 1, 1, 1)
    return (latents - mean) / std


def holding_frames(pipe, known, seed: int, callback):
    """A step callback that keeps the first latents at `known`, noised to the next step's level."""
    import torch

    noise = torch.randn(known.shape, generator=torch.Generator("cpu").manual_seed(seed), dtype=torch.float32)

    def on_step_end(pipe_, step, timestep, callback_kwargs):
        latents = callback_kwargs["latents"]
        sigmas = pipe_.scheduler.sigmas
        # the level the latents are at now: the scheduler's own index (V2V starts partway down)
        index = getattr(pipe_.scheduler, "step_index", None)
        sigma = float(sigmas[min(index if index is not None else step + 1, len(sigmas) - 1)])
        count = known.shape[2]
        held = (1 - sigma) * known.float() + sigma * noise.to(known.device)
        latents = latents.clone()
        latents[:, :, :count] = held.to(latents.dtype)
        callback_kwargs["latents"] = latents
        return callback(pipe_, step, timestep, callback_kwargs)

    return on_step_end


# -- saved windows ------------------------------------------------------------------------------------
def job_key(request) -> str:
    """The same prepared request (seed included) gives the same key, across restarts."""
    text = json.dumps(request.to_dict(), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


class SavedWindows:
    """A long job's finished windows, as exact uint8 arrays (the next window reads them back)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def _path(self, index: int) -> Path:
        return self.folder / f"window-{index:03d}.npy"

    def load(self, index: int) -> np.ndarray | None:
        path = self._path(index)
        return np.load(path) if path.exists() else None

    def save(self, index: int, frames: np.ndarray) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        partial = self.folder / f".window-{index:03d}.npy"
        np.save(partial, frames)
        partial.replace(self._path(index))  # a window is there whole or not at all

    def kept(self) -> int:
        """How many windows are saved in a row from the first: a run of the job makes none of them again."""
        count = 0
        while self._path(count).exists():
            count += 1
        return count

    def clear(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def window_request(request, index: int, windows: Windows, start_image: str | None):
    """Window `index` as a request of its own: its length, prompt, seed and (last frame) start image."""
    follows = index > 0 or windows.continuing  # it continues frames made before it
    changes = dict(frames=windows.lengths[index], prompt=prompt_for(request.prompt, index),
                   seed=request.seed + index, continue_from=None)
    if windows.conditioning == LAST_FRAME and follows:
        changes["image"] = start_image
    if request.mode == "flf2v" and index < windows.count - 1:
        changes["last_image"] = None  # only the last window ends on the last image
    if request.mode == "ti2v" and follows:
        changes["image"] = None  # TI2V's later windows hold the frames before instead of an image
    # where it starts in the input video (VACE reads its own slice of the source, control or mask)
    changes["window_start"] = sum(length - windows.overlap for length in windows.lengths[:index])
    changes["total_frames"] = windows.total
    # a copy, not a new request: the job was checked whole (an FLF2V middle window has no last image)
    window = copy.copy(request)
    for name, value in changes.items():
        setattr(window, name, value)
    return window


def continued_frames(request, record) -> np.ndarray:
    """Extend: the video to continue, as the run reads it (the model's fps, the output size)."""
    from wan_studio import media

    frames = media.load_video_frames(request.continue_from, fps=record.fps, field="continue_from")
    return np.stack([np.asarray(frame) for frame in media.resize_frames(frames, request.width, request.height)])


def run(request, record, wrapper, activate, callback, saved: SavedWindows, report_window,
        budget: int | None = None) -> tuple[np.ndarray, dict]:
    """Make every window not already saved, then stitch them (after the video continued, for
    Extend). `activate(mode)` gives the pipeline; `report_window(i, resumed)` is told of each window
    and whether it was kept from an earlier run. With a `budget`, at most that many windows are made
    by this call: past it `Paused` is raised with the rest still to make (the windows made are
    saved, so the next call goes on from there). Returns the frames and the recipe's account."""
    import pipelines

    windows = request.windows(record)
    strength = request.color_correction if request.color_correction is not None else DEFAULT_COLOR_CORRECTION
    before = continued_frames(request, record) if windows.continuing else None
    made, resumed, made_now = [], 0, 0
    for index in range(windows.count):
        kept = saved.load(index)
        report_window(index, kept is not None)
        if kept is not None:
            made.append(kept)
            resumed += 1
            continue
        previous = made[-1] if made else before  # None only for a new video's first window
        start_image = None
        if windows.conditioning == LAST_FRAME and previous is not None:
            start_image = str(saved.folder / f"start-{index:03d}.png")
            saved.folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(previous[-1]).save(start_image)
        window = window_request(request, index, windows, start_image)
        pipe = activate(pipelines.pipeline_mode(wrapper, window))
        step_callback = callback
        if windows.conditioning == FRAMES and previous is not None:
            known = encode_frames(pipe, previous[-windows.overlap:])
            step_callback = holding_frames(pipe, known, window.seed, callback)
        if windows.conditioning in (VACE_FRAMES, SEGMENT_FRAMES) and previous is not None:
            window.held_frames = previous[-windows.overlap:]  # given to the pipeline (pipelines/vace.py, animate.py)
        frames = wrapper.run(pipe, window, record, step_callback)
        if previous is not None:  # toward the first window's colours (the continued video's, for Extend)
            frames = match_colors(frames, before if before is not None else made[0], strength)
        saved.save(index, frames)
        made.append(frames)
        made_now += 1
        if budget is not None and made_now >= budget and index + 1 < windows.count:
            raise Paused(f"Window {index + 1}/{windows.count} made; the next GPU reservation makes window {index + 2}.")
    account = {**windows.as_dict(), "color_correction": strength,
               "prompts": [prompt_for(request.prompt, index) for index in range(windows.count)],
               "resumed_windows": resumed}
    if before is not None:
        account["continued_frames"] = len(before)
        return stitch([before, *made], windows.overlap, len(before) + windows.total), account
    return stitch(made, windows.overlap, windows.total), account
