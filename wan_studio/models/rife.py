"""RIFE frame interpolation: the IFNet of Practical-RIFE 4.22-4.26 (MIT), written here from its
published layout so its `flownet.pkl` loads as it is (parameter names included).

IFNet estimates, coarse to fine over five scales, the flow from the wanted moment t to each of the
two frames and a blend mask; the frames are warped by those flows and blended. Each block sees the
two images (or their warps so far), 16-channel features of each from a small head, t, the mask
and 8 channels it hands to the next block.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

WEIGHTS_FILE = "flownet.pkl"
FEATURES = 16  # channels of the head's features of each frame
HANDOVER = 8  # channels a block hands to the next
SCALES = (16, 8, 4, 2, 1)
ALIGN = 64  # frames are padded to a multiple of this: the coarsest block works at 1/64


def _build(widths: tuple[int, ...]):
    import torch
    from torch import nn
    from torch.nn import functional as F

    def conv(cin: int, cout: int, stride: int):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.LeakyReLU(0.2, True))

    class ResConv(nn.Module):
        def __init__(self, width: int):
            super().__init__()
            self.conv = nn.Conv2d(width, width, 3, 1, 1)
            self.beta = nn.Parameter(torch.ones(1, width, 1, 1))
            self.relu = nn.LeakyReLU(0.2, True)

        def forward(self, x):
            return self.relu(self.conv(x) * self.beta + x)

    class Block(nn.Module):
        def __init__(self, cin: int, width: int):
            super().__init__()
            self.conv0 = nn.Sequential(conv(cin, width // 2, 2), conv(width // 2, width, 2))
            self.convblock = nn.Sequential(*(ResConv(width) for _ in range(8)))
            # 4 flow + 1 mask + 8 handed on, at twice the size, from 4x as many channels
            self.lastconv = nn.Sequential(nn.ConvTranspose2d(width, 4 * (5 + HANDOVER), 4, 2, 1), nn.PixelShuffle(2))

        def forward(self, x, flow, scale: float):
            x = F.interpolate(x, scale_factor=1 / scale, mode="bilinear", align_corners=False)
            if flow is not None:
                x = torch.cat([x, F.interpolate(flow, scale_factor=1 / scale, mode="bilinear", align_corners=False) / scale], 1)
            out = self.lastconv(self.convblock(self.conv0(x)))
            out = F.interpolate(out, scale_factor=scale, mode="bilinear", align_corners=False)
            return out[:, :4] * scale, out[:, 4:5], out[:, 5:]

    class Head(nn.Module):
        def __init__(self):
            super().__init__()
            self.cnn0 = nn.Conv2d(3, FEATURES, 3, 2, 1)
            self.cnn1 = nn.Conv2d(FEATURES, FEATURES, 3, 1, 1)
            self.cnn2 = nn.Conv2d(FEATURES, FEATURES, 3, 1, 1)
            self.cnn3 = nn.ConvTranspose2d(FEATURES, FEATURES, 4, 2, 1)
            self.relu = nn.LeakyReLU(0.2, True)

        def forward(self, x):
            x = self.relu(self.cnn0(x))
            x = self.relu(self.cnn1(x))
            return self.cnn3(self.relu(self.cnn2(x)))

    def warp(image, flow):
        """`image` sampled at each pixel plus its flow (pixels), edges repeated."""
        _, _, height, width = flow.shape
        ys, xs = torch.meshgrid(torch.linspace(-1, 1, height, device=flow.device),
                                torch.linspace(-1, 1, width, device=flow.device), indexing="ij")
        grid = torch.stack([xs + flow[:, 0] * 2 / (width - 1), ys + flow[:, 1] * 2 / (height - 1)], dim=-1)
        return F.grid_sample(image, grid.to(image.dtype), mode="bilinear", padding_mode="border", align_corners=True)

    class IFNet(nn.Module):
        def __init__(self):
            super().__init__()
            first = 3 + 3 + 2 * FEATURES + 1
            later = 3 + 3 + 2 * FEATURES + 1 + 1 + HANDOVER + 4  # warps, features, t, mask, handed on, flow
            for index, width in enumerate(widths):
                self.add_module(f"block{index}", Block(first if index == 0 else later, width))
            self.encode = Head()

        def forward(self, img0, img1, t: float):
            moment = torch.full_like(img0[:, :1], t)
            f0, f1 = self.encode(img0), self.encode(img1)
            flow = mask = handed = None
            warped0, warped1 = img0, img1
            for index, scale in enumerate(SCALES[-len(widths):]):
                block = getattr(self, f"block{index}")
                if flow is None:
                    flow, mask, handed = block(torch.cat([img0, img1, f0, f1, moment], 1), None, scale)
                else:
                    wf0, wf1 = warp(f0, flow[:, :2]), warp(f1, flow[:, 2:4])
                    step, mask, handed = block(torch.cat([warped0, warped1, wf0, wf1, moment, mask, handed], 1),
                                               flow, scale)
                    flow = flow + step
                warped0, warped1 = warp(img0, flow[:, :2]), warp(img1, flow[:, 2:4])
            blend = torch.sigmoid(mask)
            return warped0 * blend + warped1 * (1 - blend)

    return IFNet()


class Interpolator:
    """An IFNet loaded from a folder holding its `flownet.pkl` (real or Tiny)."""

    def __init__(self, folder, device="cpu"):
        import torch

        path = Path(folder) / WEIGHTS_FILE
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = {key.removeprefix("module."): value for key, value in state.items()}  # saved from DataParallel
        widths = []
        while f"block{len(widths)}.conv0.1.0.weight" in state:
            widths.append(int(state[f"block{len(widths)}.conv0.1.0.weight"].shape[0]))
        if not widths:
            raise ValueError(f"{path} is not a RIFE IFNet (no block0)")
        self.torch, self.device = torch, device
        self.model = _build(tuple(widths))
        self.model.load_state_dict(state)
        self.model.to(device).eval()

    def between(self, first: np.ndarray, second: np.ndarray, moments: list[float]) -> list[np.ndarray]:
        """Frames at each of `moments` (0-1) between two uint8 frames (H, W, 3)."""
        torch = self.torch
        height, width = first.shape[:2]
        pad = (0, -width % ALIGN, 0, -height % ALIGN)

        def tensor(frame):
            values = torch.from_numpy(frame).permute(2, 0, 1)[None].float().div(255).to(self.device)
            return torch.nn.functional.pad(values, pad, mode="replicate")

        a, b = tensor(first), tensor(second)
        made = []
        with torch.no_grad():
            for moment in moments:
                out = self.model(a, b, float(moment))[0, :, :height, :width]
                made.append((out.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy())
        return made


class TinyWeights:
    """A Tiny random-weight IFNet, saved as the real one is: `flownet.pkl`, a plain state dict."""

    def __init__(self, widths=(8, 8, 8, 8, 8)):
        self.widths = widths

    def save_pretrained(self, folder) -> None:
        import torch

        torch.manual_seed(0)
        Path(folder).mkdir(parents=True, exist_ok=True)
        torch.save(_build(self.widths).state_dict(), Path(folder) / WEIGHTS_FILE)
