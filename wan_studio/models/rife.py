"""RIFE frame interpolation: the IFNet of Practical-RIFE 4.0 to 4.26 (MIT), written here from its
published layouts so each release's `flownet.pkl` loads as it is (parameter names included).

IFNet estimates, coarse to fine over four or five scales, the flow from the wanted moment t to each
of the two frames and a blend mask; the frames are warped by those flows and blended. Each block
sees the two images (or their warps so far), t, and from the second block on the mask and the flow
so far. The releases differ in what else a block sees and how it is built, and all of it shows in
the weights' names and shapes, so the architecture is read from the file (`layout_of`):

| releases         | block body                  | block output             | feature head  | mask     |
|------------------|-----------------------------|--------------------------|---------------|----------|
| 4.0-4.1          | conv+PReLU x8, one residual | 5 ch at 1/2 (no shuffle) | none          | adds up  |
| 4.2-4.4          | conv+LeakyReLU x8           | 5 ch at 1/2              | none          | adds up  |
| 4.5-4.6          | ResConv x8                  | 5-6 ch, pixel shuffle    | none          | adds up  |
| 4.7-4.20, 4.24   | ResConv x8                  | 6 ch, pixel shuffle      | 2 or 4 layers | replaced |
| 4.21-4.23, 4.25+ | ResConv x8                  | 5 + 8 handed on          | 4 layers      | replaced |

4.21+ hand 8 channels from each block to the next; 4.25-4.26 add a fifth block at 1/16. Checked
against upstream's own IFNet (vs-rife's copies of every 4.x release, random weights): the same
output to float precision, including 4.0's second look at large motion.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

WEIGHTS_FILE = "flownet.pkl"
WEIGHT_SUFFIXES = (".pkl", ".pth", ".pt")  # a release's file named by its path (interpolate --model FILE)
READS = ("RIFE 4.0 to 4.26 (Practical-RIFE's IFNet: 4.0-4.6 without a feature head, 4.7-4.26 with one, "
         "lite and heavy variants included)")
# releases whose scales are not the usual halving (4.25 lite skips the 1/2 scale)
SCALES_BY_WIDTHS = {(192, 128, 96, 64, 24): (32.0, 16.0, 8.0, 4.0, 1.0)}
LARGE_MOTION_PX = 32  # 4.0-4.1: a second block's step past this redoes the coarse pass at twice the scale


class NotAnInterpolator(ValueError):
    """The file is not a RIFE IFNet we can read; the message says what was found and what is read."""


@dataclass(frozen=True)
class Layout:
    """An IFNet's architecture, as its weights show it."""

    widths: tuple[int, ...]  # each block's channels
    in_channels: tuple[int, ...]  # each block's input channels
    body: int  # convolutions in each block's body
    prelu: bool  # 4.0-4.1: PReLU activations and a residual around the body
    res_conv: bool  # 4.5+: ResConv layers (a learnt scale and a residual each)
    groups: int  # of the body's convolutions (2 in 4.14 lite)
    shuffle: bool  # 4.5+: the last layer ends in a pixel shuffle (output at the block's scale)
    out_channels: int  # a block's output channels: 4 flow + 1 mask (+ 1 unused, or + the handed-on ones)
    head: tuple[tuple[str, int, int, int], ...]  # the feature head's layers: (name, in, out, kernel)
    head_activated: bool  # a LeakyReLU between the head's layers (4.10+)
    features: int  # channels of the head's features of each frame (0: no head)
    handover: int  # channels a block hands to the next (4.21+)
    scales: tuple[float, ...]

    @property
    def releases(self) -> str:
        """The Practical-RIFE releases built this way."""
        if self.prelu:
            return "4.0-4.1"
        if not self.res_conv:
            return "4.2-4.4"
        if not self.features:
            return "4.5" if self.out_channels == 5 else "4.6"
        if self.handover:
            return "4.25-4.26" if len(self.widths) == 5 else "4.21-4.23"
        if len(self.head) == 2:
            return "4.7-4.9"
        return "4.13-4.20, 4.24" if self.head[0][0] == "cnn0" else "4.10-4.12"

    @property
    def align(self) -> int:
        """Frames are padded to a multiple of this: the coarsest block works at 1/(4 x its scale)."""
        return int(4 * max(self.scales) * (2 if self.prelu else 1))

    def describe(self) -> str:
        head = f"a {self.features}-channel feature head" if self.features else "no feature head"
        return (f"{len(self.widths)} blocks of {'/'.join(map(str, self.widths))} channels, {head}, "
                f"block0 taking {self.in_channels[0]} channels")


def layout_of(state: dict) -> Layout:
    """The architecture the weights belong to, read from their names and shapes; NotAnInterpolator
    (what was found) when they are not an IFNet of a 4.x release."""
    shape = {key: tuple(value.shape) for key, value in state.items()}
    blocks = 0
    while f"block{blocks}.conv0.0.0.weight" in shape and f"block{blocks}.conv0.1.0.weight" in shape:
        blocks += 1
    if not blocks:
        sample = ", ".join(list(shape)[:3]) or "nothing"
        raise NotAnInterpolator(f"it holds {len(shape)} tensors ({sample}...) and no IFNet block (block0.conv0)")
    widths = tuple(shape[f"block{i}.conv0.1.0.weight"][0] for i in range(blocks))
    in_channels = tuple(shape[f"block{i}.conv0.0.0.weight"][1] for i in range(blocks))
    res_conv = "block0.convblock.0.conv.weight" in shape
    body = 0
    while f"block0.convblock.{body}.{'conv' if res_conv else '0'}.weight" in shape:
        body += 1
    groups = widths[0] // shape["block0.convblock.0.conv.weight"][1] if res_conv else 1
    shuffle = "block0.lastconv.0.weight" in shape
    last = shape.get("block0.lastconv.0.weight" if shuffle else "block0.lastconv.weight")
    if not body or last is None:
        raise NotAnInterpolator(f"block0 has {body} body layers and {'a' if last else 'no'} last layer")
    head, head_activated = _head_of(shape)
    features = head[-1][2] if head else 0
    found = Layout(widths, in_channels, body, prelu="block0.conv0.0.1.weight" in shape, res_conv=res_conv,
                   groups=groups, shuffle=shuffle, out_channels=last[1] // (4 if shuffle else 1), head=head,
                   head_activated=head_activated, features=features,
                   handover=in_channels[1] - 12 - 2 * features if blocks > 1 else 0,
                   scales=SCALES_BY_WIDTHS.get(widths, tuple(2.0 ** k for k in reversed(range(blocks)))))
    # two frames (3 each), their features, t; later blocks add the mask, the handed-on channels and the flow
    if in_channels[0] == 6 + 2 * features:
        raise NotAnInterpolator(f"{found.describe()}, without the moment t as an input: RIFE 2.x or 3.x")
    if in_channels[0] != 7 + 2 * features or len(set(in_channels[1:])) > 1 or found.handover < 0 \
            or found.out_channels < 5 + found.handover or (found.handover and not shuffle):
        raise NotAnInterpolator(f"{found.describe()}, which no 4.x release has")
    return found


def _head_of(shape: dict) -> tuple[tuple[tuple[str, int, int, int], ...], bool]:
    """The feature head's layers in order, and whether an activation sits between them: 4.7-4.9 a
    plain pair (encode.0, encode.1), 4.10-4.12 a Sequential with LeakyReLUs (encode.0, .2, .4, .6),
    4.13+ named layers (encode.cnn0 ... cnn3)."""
    names = [key[len("encode."):-len(".weight")] for key in shape if re.fullmatch(r"encode\.(cnn)?\d+\.weight", key)]
    if not names:
        return (), False
    names.sort(key=lambda name: int(name.removeprefix("cnn")))
    layers = []
    for index, name in enumerate(names):
        weight = shape[f"encode.{name}.weight"]
        transposed = index == len(names) - 1  # the last layer brings the features back to full size
        cin, cout = (weight[0], weight[1]) if transposed else (weight[1], weight[0])
        layers.append((name, cin, cout, weight[-1]))
    numbers = [int(name.removeprefix("cnn")) for name in names]
    activated = names[0].startswith("cnn") or numbers != list(range(len(numbers)))
    return tuple(layers), activated


def _build(layout: Layout):
    import torch
    from torch import nn
    from torch.nn import functional as F

    def resize(x, factor: float):
        return F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)

    def conv(cin: int, cout: int, stride: int = 1):
        activation = nn.PReLU(cout) if layout.prelu else nn.LeakyReLU(0.2, True)
        return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), activation)

    class ResConv(nn.Module):
        def __init__(self, width: int):
            super().__init__()
            self.conv = nn.Conv2d(width, width, 3, 1, 1, groups=layout.groups)
            self.beta = nn.Parameter(torch.ones(1, width, 1, 1))
            self.relu = nn.LeakyReLU(0.2, True)

        def forward(self, x):
            return self.relu(self.conv(x) * self.beta + x)

    class Block(nn.Module):
        def __init__(self, cin: int, width: int):
            super().__init__()
            self.conv0 = nn.Sequential(conv(cin, width // 2, 2), conv(width // 2, width, 2))
            layer = ResConv if layout.res_conv else (lambda c: conv(c, c))
            self.convblock = nn.Sequential(*(layer(width) for _ in range(layout.body)))
            if layout.shuffle:  # 4x the channels at twice the size, shuffled to 4x the size
                self.lastconv = nn.Sequential(nn.ConvTranspose2d(width, 4 * layout.out_channels, 4, 2, 1),
                                              nn.PixelShuffle(2))
            else:
                self.lastconv = nn.ConvTranspose2d(width, layout.out_channels, 4, 2, 1)

        def forward(self, x, flow, scale: float):
            x = resize(x, 1 / scale)
            if flow is not None:
                x = torch.cat([x, resize(flow, 1 / scale) / scale], 1)
            feat = self.conv0(x)
            body = self.convblock(feat)
            out = self.lastconv(body + feat if layout.prelu else body)
            up = scale if layout.shuffle else scale * 2
            out = resize(out, up)
            return out[:, :4] * up, out[:, 4:5], out[:, 5:5 + layout.handover]

    class Head(nn.Module):
        def __init__(self):
            super().__init__()
            for index, (name, cin, cout, kernel) in enumerate(layout.head):
                if index == len(layout.head) - 1:
                    layer = nn.ConvTranspose2d(cin, cout, kernel, 2, 1)
                else:
                    layer = nn.Conv2d(cin, cout, kernel, 2 if index == 0 else 1, 1)
                self.add_module(name, layer)

        def forward(self, x):
            layers = list(self.children())
            for layer in layers[:-1]:
                x = layer(x)
                x = F.leaky_relu(x, 0.2) if layout.head_activated else x
            return layers[-1](x)

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
            for index, (cin, width) in enumerate(zip(layout.in_channels, layout.widths)):
                self.add_module(f"block{index}", Block(cin, width))
            if layout.head:
                self.encode = Head()

        def forward(self, img0, img1, t: float):
            moment = torch.full_like(img0[:, :1], t)
            f0, f1 = (self.encode(img0), self.encode(img1)) if layout.head else (img0[:, :0], img1[:, :0])
            blocks = [getattr(self, f"block{index}") for index in range(len(layout.widths))]
            scales = list(layout.scales)

            def first_pass():
                flow, mask, handed = blocks[0](torch.cat([img0, img1, f0, f1, moment], 1), None, scales[0])
                return flow, mask, handed, warp(img0, flow[:, :2]), warp(img1, flow[:, 2:4])

            def refine(index, flow, mask, handed, warped0, warped1):
                wf0, wf1 = (warp(f0, flow[:, :2]), warp(f1, flow[:, 2:4])) if layout.head else (f0, f1)
                return blocks[index](torch.cat([warped0, warped1, wf0, wf1, moment, mask, handed], 1), flow,
                                     scales[index])

            flow, mask, handed, warped0, warped1 = first_pass()
            for index in range(1, len(blocks)):
                step, new_mask, handed = refine(index, flow, mask, handed, warped0, warped1)
                if layout.prelu and index == 1 and step[:, :2].abs().max() > LARGE_MOTION_PX \
                        and step[:, 2:4].abs().max() > LARGE_MOTION_PX:
                    scales = [scale * 2 for scale in scales]  # 4.0-4.1: large motion, look again coarser
                    flow, mask, handed, warped0, warped1 = first_pass()
                    step, new_mask, handed = refine(index, flow, mask, handed, warped0, warped1)
                flow = flow + step
                mask = new_mask if layout.features else mask + new_mask  # 4.7+ replace the mask
                warped0, warped1 = warp(img0, flow[:, :2]), warp(img1, flow[:, 2:4])
            blend = torch.sigmoid(mask)
            return warped0 * blend + warped1 * (1 - blend)

    return IFNet()


def read_state(path: Path) -> dict:
    """The plain state dict of a flownet.pkl (saved from DataParallel or not); NotAnInterpolator
    when the file cannot be read as PyTorch weights."""
    import torch

    if not path.is_file():
        raise FileNotFoundError(path)
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, not a pickle, not weights: say so in one line
        raise NotAnInterpolator(f"it cannot be read as PyTorch weights ({type(exc).__name__}; "
                                f"{path.stat().st_size} bytes)") from None
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict) or not all(hasattr(value, "shape") for value in loaded.values()):
        raise NotAnInterpolator(f"it holds a {type(loaded).__name__}, not a plain state dict")
    return {str(key).removeprefix("module."): value for key, value in loaded.items()}


def weights_path(folder_or_file) -> Path:
    path = Path(folder_or_file).expanduser()
    return path / WEIGHTS_FILE if path.is_dir() else path


class Interpolator:
    """An IFNet of any 4.x release, loaded from its `flownet.pkl` (or the folder holding it)."""

    def __init__(self, folder_or_file, device="cpu"):
        import torch

        path = weights_path(folder_or_file)
        try:
            state = read_state(path)
            self.layout = layout_of(state)
            self.model = _build(self.layout)
            own = self.model.state_dict()
            for key, value in own.items():  # every tensor there and of its shape (4.0's training-only parts left out)
                if key not in state:
                    raise NotAnInterpolator(f"{self.layout.describe()}, but without {key}")
                if tuple(state[key].shape) != tuple(value.shape):
                    raise NotAnInterpolator(f"{self.layout.describe()}, but {key} of shape {list(state[key].shape)} "
                                            f"where that layout has {list(value.shape)}")
            self.model.load_state_dict({key: state[key] for key in own})
        except NotAnInterpolator as exc:
            raise NotAnInterpolator(f"{path.name} is not a RIFE model we can read: {exc}. We read {READS}.") from None
        self.torch, self.device = torch, device
        self.model.to(device).eval()

    def between(self, first: np.ndarray, second: np.ndarray, moments: list[float]) -> list[np.ndarray]:
        """Frames at each of `moments` (0-1) between two uint8 frames (H, W, 3)."""
        torch = self.torch
        height, width = first.shape[:2]
        align = self.layout.align
        pad = (0, -width % align, 0, -height % align)

        def tensor(frame):
            values = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1)[None].float().div(255)
            return torch.nn.functional.pad(values.to(self.device), pad, mode="replicate")

        a, b = tensor(first), tensor(second)
        made = []
        with torch.no_grad():
            for moment in moments:
                out = self.model(a, b, float(moment))[0, :, :height, :width]
                made.append((out.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy())
        return made


# the 4.25 layout at toy width: a 16-channel head giving 4 features a frame, 8 handed on, five blocks
TINY_LAYOUT = Layout(widths=(8, 8, 8, 8, 8), in_channels=(15,) + (28,) * 4, body=8, prelu=False, res_conv=True,
                     groups=1,
                     shuffle=True, out_channels=13, head=(("cnn0", 3, 16, 3), ("cnn1", 16, 16, 3),
                                                          ("cnn2", 16, 16, 3), ("cnn3", 16, 4, 4)),
                     head_activated=True, features=4, handover=8, scales=(16.0, 8.0, 4.0, 2.0, 1.0))


class TinyWeights:
    """A Tiny random-weight IFNet, saved as the real one is: `flownet.pkl`, a plain state dict."""

    def __init__(self, layout: Layout = TINY_LAYOUT):
        self.layout = layout

    def save_pretrained(self, folder) -> None:
        import torch

        torch.manual_seed(0)
        Path(folder).mkdir(parents=True, exist_ok=True)
        torch.save(_build(self.layout).state_dict(), Path(folder) / WEIGHTS_FILE)
