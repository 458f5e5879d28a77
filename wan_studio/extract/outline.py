"""An object's outline through a video: SAM2 (transformers' `Sam2VideoModel`) prompted with a click,
a box or a mask on a frame, and followed frame by frame from there.

transformers' SAM2 processors need torchvision, which we do not depend on, so the little they do is
here: each frame is resized to the model's square input (1024 on the real checkpoints), scaled to
0-1 and normalised with ImageNet's mean and std, as SAM2 was trained; prompts are scaled to that
square; the low-resolution mask logits are resized to the frame and cut at 0.

Frames are streamed one at a time. A new session starts at each prompted frame and every CHUNK
frames, prompted with the last mask of the one before, so a long video keeps flat memory (a
session holds its frames and its per-frame memories) and SAM2's memory still carries the object.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image

CHUNK = 32
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
OBJECT = 1  # the one object followed


class Segmenter:
    """A SAM2 video model, loaded once per extraction."""

    def __init__(self, folder, device):
        import torch
        from transformers import Sam2VideoModel

        self.torch, self.device = torch, device
        self.model = Sam2VideoModel.from_pretrained(folder).to(device).eval()
        self.size = int(self.model.config.image_size)

    def pixels(self, frame: Image.Image):
        """The frame as the model reads it: size x size, normalised, channels first."""
        square = frame.convert("RGB").resize((self.size, self.size), Image.Resampling.BILINEAR)
        values = (np.asarray(square, np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
        return self.torch.from_numpy(values.transpose(2, 0, 1).astype(np.float32))

    def _new_session(self, width: int, height: int):
        from transformers.models.sam2_video.modeling_sam2_video import Sam2VideoInferenceSession

        return Sam2VideoInferenceSession(video_height=height, video_width=width, inference_device=self.device,
                                         video_storage_device="cpu", inference_state_device=self.device,
                                         dtype=self.torch.float32)

    def _prompt(self, session, index: int, prompt: tuple, width: int, height: int) -> None:
        """Put a ("point", (x, y)), ("box", (x0, y0, x1, y1)) or ("mask", HxW bool) prompt on the
        session's frame `index` (the frame about to be added)."""
        torch = self.torch
        kind, value = prompt
        obj = session.obj_id_to_idx(OBJECT)
        scale = np.array([self.size / width, self.size / height], np.float32)
        if kind == "mask":
            mask = torch.from_numpy(np.asarray(value, np.float32))[None, None]
            mask = torch.nn.functional.interpolate(mask, size=(self.size, self.size), mode="bilinear",
                                                   align_corners=False, antialias=True)
            session.add_mask_inputs(obj, index, (mask >= 0.5).float())
            session.remove_point_inputs(obj, index)
        else:
            # a box is its two corners, labelled 2 and 3; a click is one point labelled 1 (foreground)
            points = np.asarray(value, np.float32).reshape(-1, 2) * scale
            labels = [1] if kind == "point" else [2, 3]
            session.add_point_inputs(obj, index, {
                "point_coords": torch.from_numpy(points)[None, None],
                "point_labels": torch.tensor([[labels]], dtype=torch.int32)})
            session.remove_mask_inputs(obj, index)
        session.obj_with_new_inputs = [OBJECT]

    def outlines(self, frames: list[Image.Image], prompts: dict[int, tuple],
                 progress: Callable[[int, int], None] | None = None) -> list[np.ndarray]:
        """The object's mask (H x W bool) in every frame; empty before the first prompt."""
        width, height = frames[0].size
        first = min(prompts)
        masks = [np.zeros((height, width), bool) for _ in range(first)]
        session, started = None, first
        for i in range(first, len(frames)):
            prompt = prompts.get(i)
            if session is None or prompt is not None or i - started >= CHUNK:
                session, started = self._new_session(width, height), i
                prompt = prompt or ("mask", masks[-1])
            if prompt is not None:
                self._prompt(session, session.num_frames or 0, prompt, width, height)
            with self.torch.no_grad():
                out = self.model(inference_session=session, frame=self.pixels(frames[i]).to(self.device))
            logits = self.torch.nn.functional.interpolate(out.pred_masks[:1].float(), size=(height, width),
                                                          mode="bilinear", align_corners=False)
            masks.append((logits[0, 0] > 0).cpu().numpy())
            if progress is not None and ((i + 1 - first) % CHUNK == 0 or i + 1 == len(frames)):
                progress(i + 1, len(frames))
        return masks


# -- shapes ---------------------------------------------------------------------------------------
def grow_pixels(size: tuple[int, int]) -> int:
    """How far a mask is grown past the outline: 2 % of the short side, at least 4 px (hair and
    motion blur at the edge belong to the object; VACE and Animate repaint inside the mask)."""
    return max(4, round(0.02 * min(size)))


def grown(mask: np.ndarray, by: int) -> np.ndarray:
    """The mask dilated by `by` pixels (a square neighbourhood)."""
    import torch

    values = torch.from_numpy(mask.astype(np.float32))[None, None]
    return torch.nn.functional.max_pool2d(values, 2 * by + 1, stride=1, padding=by)[0, 0].numpy() > 0


def box_of(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """x0, y0, x1, y1 (exclusive) around the mask's pixels, or None for an empty mask."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not len(rows):
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def shaped(masks: list[np.ndarray], shape: str) -> list[np.ndarray]:
    """The control masks (uint8, 255 inside): the grown outline, or ("box") the box around the grown
    outline, as Wan-Animate's replace mode was trained on (its preprocessing fills the box of the
    dilated SAM2 mask). A frame where the object is lost keeps the last one seen."""
    height, width = masks[0].shape
    by = grow_pixels((width, height))
    made, last = [], np.zeros((height, width), bool)
    for mask in masks:
        if mask.any():
            last = grown(mask, by)
            if shape == "box":
                x0, y0, x1, y1 = box_of(last)
                last = np.zeros_like(last)
                last[y0:y1, x0:x1] = True
        made.append(np.where(last, 255, 0).astype(np.uint8))
    return made
