"""Image super-resolution for upscaling a result frame by frame: the two Real-ESRGAN network
families, written here from their published layouts so their weight files load as they are
(parameter names included). `spandrel`, which recognises many more architectures, needs
torchvision, and PyPI's torchvision does not load beside the CPU build of torch.

- RRDBNet (ESRGAN, Real-ESRGAN x4plus / x2plus / anime_6B): residual-in-residual dense blocks at
  the input's size, then two nearest-neighbour x2 steps. Its x2 and x1 variants first fold each
  2x2 (4x4) patch into channels, so the network is always x4 inside.
- SRVGGNetCompact (realesr-animevideov3, realesr-general-x4v3): a plain stack of 3x3 convolutions
  with PReLU, a pixel shuffle, plus the input enlarged by nearest neighbour.

A file is recognised by its parameter names and shapes (scale, width and depth come from them);
anything else is refused with the families we read.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

WEIGHT_SUFFIXES = (".pth", ".pt", ".safetensors")
FAMILIES = ("Real-ESRGAN's RRDBNet (RealESRGAN_x4plus, x2plus, anime_6B) "
            "or SRVGGNetCompact (realesr-animevideov3, realesr-general-x4v3)")
TINY_FILE = "tiny-upscaler.safetensors"


class NotAnUpscaler(ValueError):
    """The file is not a super-resolution network we can read."""


def _rrdbnet(in_channels: int, features: int, blocks: int, growth: int):
    import torch
    from torch import nn
    from torch.nn import functional as F

    class DenseBlock(nn.Module):
        def __init__(self):
            super().__init__()
            for k in range(1, 5):
                setattr(self, f"conv{k}", nn.Conv2d(features + (k - 1) * growth, growth, 3, 1, 1))
            self.conv5 = nn.Conv2d(features + 4 * growth, features, 3, 1, 1)
            self.lrelu = nn.LeakyReLU(0.2, True)

        def forward(self, x):
            seen = [x]
            for k in range(1, 5):
                seen.append(self.lrelu(getattr(self, f"conv{k}")(torch.cat(seen, 1))))
            return self.conv5(torch.cat(seen, 1)) * 0.2 + x

    class RRDB(nn.Module):
        def __init__(self):
            super().__init__()
            self.rdb1, self.rdb2, self.rdb3 = DenseBlock(), DenseBlock(), DenseBlock()

        def forward(self, x):
            return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x

    fold = {3: 1, 12: 2, 48: 4}[in_channels]  # x4, x2, x1: how much the input is folded first

    class RRDBNet(nn.Module):
        scale = 4 // fold
        align = fold

        def __init__(self):
            super().__init__()
            self.conv_first = nn.Conv2d(in_channels, features, 3, 1, 1)
            self.body = nn.Sequential(*[RRDB() for _ in range(blocks)])
            self.conv_body = nn.Conv2d(features, features, 3, 1, 1)
            self.conv_up1 = nn.Conv2d(features, features, 3, 1, 1)
            self.conv_up2 = nn.Conv2d(features, features, 3, 1, 1)
            self.conv_hr = nn.Conv2d(features, features, 3, 1, 1)
            self.conv_last = nn.Conv2d(features, 3, 3, 1, 1)
            self.lrelu = nn.LeakyReLU(0.2, True)

        def forward(self, x):
            feat = self.conv_first(F.pixel_unshuffle(x, fold) if fold > 1 else x)
            feat = feat + self.conv_body(self.body(feat))
            for up in (self.conv_up1, self.conv_up2):
                feat = self.lrelu(up(F.interpolate(feat, scale_factor=2, mode="nearest")))
            return self.conv_last(self.lrelu(self.conv_hr(feat)))

    return RRDBNet()


def _srvgg(features: int, convs: int, scale: int):
    from torch import nn
    from torch.nn import functional as F

    class SRVGGNetCompact(nn.Module):
        align = 1

        def __init__(self):
            super().__init__()
            self.scale = scale
            layers = [nn.Conv2d(3, features, 3, 1, 1), nn.PReLU(features)]
            for _ in range(convs):
                layers += [nn.Conv2d(features, features, 3, 1, 1), nn.PReLU(features)]
            layers.append(nn.Conv2d(features, 3 * scale * scale, 3, 1, 1))
            self.body = nn.ModuleList(layers)
            self.upsampler = nn.PixelShuffle(scale)

        def forward(self, x):
            out = x
            for layer in self.body:
                out = layer(out)
            return self.upsampler(out) + F.interpolate(x, scale_factor=scale, mode="nearest")

    return SRVGGNetCompact()


def build_from_state(state: dict):
    """The network these weights belong to (not yet loaded), or NotAnUpscaler."""
    shape = {key: tuple(value.shape) for key, value in state.items()}
    if "conv_first.weight" in shape and "conv_last.weight" in shape:
        features, in_channels = shape["conv_first.weight"][:2]
        blocks = 0
        while f"body.{blocks}.rdb1.conv1.weight" in shape:
            blocks += 1
        if in_channels not in (3, 12, 48) or not blocks or shape["conv_last.weight"][0] != 3:
            raise NotAnUpscaler("an RRDBNet with an input or output other than RGB")
        growth = shape["body.0.rdb1.conv1.weight"][0]
        return _rrdbnet(in_channels, features, blocks, growth)
    if "body.0.weight" in shape and len(shape["body.0.weight"]) == 4 and shape.get("body.1.weight", (0, 0))[:1] \
            == shape["body.0.weight"][:1] and len(shape["body.1.weight"]) == 1:
        features = shape["body.0.weight"][0]
        last = max(int(key.split(".")[1]) for key in shape if key.startswith("body."))
        convs = (last - 2) // 2
        out_channels = shape[f"body.{last}.weight"][0]
        scale = math.isqrt(out_channels // 3)
        if shape["body.0.weight"][1] != 3 or scale * scale * 3 != out_channels or scale < 1:
            raise NotAnUpscaler("a VGG-style network with an input or output other than RGB")
        return _srvgg(features, convs, scale)
    raise NotAnUpscaler("no layer of an image super-resolution network")


def read_state(path: Path) -> dict:
    """The weights of a .pth/.pt (a state dict, or Real-ESRGAN's {'params_ema' or 'params': ...}) or a
    .safetensors file."""
    import torch

    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # not a torch file, or one that needs code to unpickle
        raise NotAnUpscaler(f"it cannot be read as PyTorch weights ({type(exc).__name__})") from exc
    if isinstance(loaded, dict):
        for key in ("params_ema", "params", "state_dict"):
            if isinstance(loaded.get(key), dict):
                loaded = loaded[key]
                break
    if not isinstance(loaded, dict) or not all(hasattr(value, "shape") for value in loaded.values()):
        raise NotAnUpscaler("it holds no plain state dict")
    return {key.removeprefix("module."): value for key, value in loaded.items()}


def local_weights(source: str, allow_download: bool = False) -> Path:
    """A weight file named by its path or as hf://owner/repo/path/file.pth, on this machine."""
    if str(source).startswith("hf://"):
        from wan_studio.models.hub import hub_file

        return hub_file(str(source), "upscaler", allow_download)
    return Path(source).expanduser()


def weights_file(folder_or_file: Path) -> Path:
    """The weight file itself, given it or the model folder holding exactly one."""
    path = Path(folder_or_file)
    if path.is_file():
        return path
    found = sorted(p for p in path.iterdir() if p.suffix.lower() in WEIGHT_SUFFIXES) if path.is_dir() else []
    if len(found) != 1:
        raise NotAnUpscaler(f"{path} holds {len(found)} weight files ({', '.join(WEIGHT_SUFFIXES)}); expected one")
    return found[0]


class Upscaler:
    """A super-resolution network on a device, run on uint8 frames in tiles."""

    def __init__(self, folder_or_file, device="cpu"):
        import torch

        path = weights_file(Path(folder_or_file))
        state = read_state(path)
        self.model = build_from_state(state)
        try:
            self.model.load_state_dict(state)
        except RuntimeError as exc:  # right names, wrong shapes or extra layers
            raise NotAnUpscaler(f"its weights do not fit the network their names describe: "
                                f"{str(exc).splitlines()[0]}") from exc
        self.torch, self.device = torch, device
        self.dtype = torch.float16 if str(device).startswith("cuda") else torch.float32
        self.model.to(device=device, dtype=self.dtype).eval()
        self.scale = self.model.scale
        self.features = int(next(self.model.parameters()).shape[0])

    def working_bytes_per_pixel(self) -> int:
        """About how much memory one input pixel of a tile needs while it runs: a few feature maps
        at the output's size dominate (an estimate from the layout, not measured on a GPU)."""
        itemsize = 2 if self.dtype == self.torch.float16 else 4
        return self.features * itemsize * (3 * self.scale * self.scale + 8)

    def tile_for(self, budget_bytes: float) -> int:
        """The tile side (input pixels) that keeps a tile's working memory within the budget."""
        side = int(math.sqrt(max(budget_bytes, 0) / self.working_bytes_per_pixel()))
        return max(64, min(2048, side // 16 * 16))

    def upscale(self, frame: np.ndarray, tile: int, overlap: int = 16) -> np.ndarray:
        """A uint8 (H, W, 3) frame made `self.scale` times larger, `tile` x `tile` input pixels at a
        time, each tile seeing `overlap` more pixels of its neighbours so no seam shows."""
        torch = self.torch
        height, width = frame.shape[:2]
        align = self.model.align
        values = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1)[None].to(self.device)
        values = values.to(self.dtype).div(255)
        scale = self.scale
        out = torch.empty((1, 3, height * scale, width * scale), dtype=self.dtype, device=self.device)
        with torch.no_grad():
            for top in range(0, height, tile):
                for left in range(0, width, tile):
                    bottom, right = min(top + tile, height), min(left + tile, width)
                    y0, x0 = max(top - overlap, 0), max(left - overlap, 0)
                    y1, x1 = min(bottom + overlap, height), min(right + overlap, width)
                    piece = values[:, :, y0:y1, x0:x1]
                    pad_h, pad_w = -(y1 - y0) % align, -(x1 - x0) % align
                    if pad_h or pad_w:  # x2 and x1 networks fold 2x2 (4x4) patches: whole patches only
                        piece = torch.nn.functional.pad(piece, (0, pad_w, 0, pad_h), mode="replicate")
                    made = self.model(piece)
                    out[:, :, top * scale:bottom * scale, left * scale:right * scale] = made[
                        :, :, (top - y0) * scale:(bottom - y0) * scale, (left - x0) * scale:(right - x0) * scale]
        return (out[0].float().clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()


class TinyWeights:
    """A Tiny random-weight SRVGGNetCompact (x2), saved as one .safetensors file as a real one would be.
    Its output is the input enlarged plus a faint random texture, so a Tiny result still looks like
    its parent."""

    def __init__(self, features: int = 8, convs: int = 2, scale: int = 2):
        self.features, self.convs, self.scale = features, convs, scale

    def save_pretrained(self, folder) -> None:
        import torch
        from safetensors.torch import save_file

        torch.manual_seed(0)
        model = _srvgg(self.features, self.convs, self.scale)
        with torch.no_grad():
            model.body[-1].weight.mul_(0.05)  # a faint residual: the enlarged frame shows through
            model.body[-1].bias.zero_()
        Path(folder).mkdir(parents=True, exist_ok=True)
        save_file({key: value.contiguous() for key, value in model.state_dict().items()}, str(Path(folder) / TINY_FILE))
