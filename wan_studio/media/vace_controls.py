"""What WanVACEPipeline needs for each VACE sub-mode: `video` frames and `mask` frames.

Conventions, as diffusers' WanVACEPipeline reads them (pipeline_wan_vace.py):
- `video` is a list of RGB PIL frames. With `mask=None` every pixel is "reactive" (the pipeline
  uses an all-ones mask): that is how a control video (depth, pose, flow, ...) is passed.
- `mask` is a list of PIL frames, one per video frame (check_inputs refuses other lengths).
  The pipeline maps it to [0, 1] and thresholds at 0.5: white (255) = generate, black (0) = keep.
  It splits the video into inactive = video * (1 - mask) and reactive = video * mask latents.
- Unknown pixels (frames to extend, padding to outpaint, the area to inpaint) are mid grey,
  (128, 128, 128): 0 in the VAE's [-1, 1] range up to rounding (the original code uses 127.5 on
  float arrays; diffusers' own example uses 128 in PIL). Painting the inpaint area grey, as VACE's
  own inpainting annotator does, keeps the old content there from steering the result.
- Reference images are not handled here: the pipeline takes them as RGB PIL images as they are.

Controls without weights are built with OpenCV (grayscale, edges, scribble, optical flow); depth,
pose and layout are made by annotator models before the run (wan_studio.extract), or the
user uploads a ready-made control video (source="control").
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from wan_studio import media
from wan_studio.errors import RequestError

CONTROL_KINDS = ("depth", "pose", "flow", "scribble", "edges", "grayscale", "layout")
EXTENSION_KINDS = ("first_frame", "last_frame", "first_last", "first_clip", "last_clip")
OUTPAINT_DIRECTIONS = ("left", "right", "up", "down")
CONTROL_SOURCES = ("raw", "control")

GREY = (128, 128, 128)
KEEP, GENERATE = 0, 255

# made by annotator models before the run (the engine's extraction stage), not here
MADE_BY_MODELS = ("depth", "pose", "layout")


# -- controls -------------------------------------------------------------------------------------
def _arrays(frames: list) -> list[np.ndarray]:
    return [np.asarray(media.load_image(frame, field="video")) for frame in frames]


def _to_images(arrays) -> list[Image.Image]:
    return [Image.fromarray(np.ascontiguousarray(a)) for a in arrays]


def _grey_planes(arrays: list[np.ndarray]) -> list[np.ndarray]:
    import cv2

    return [cv2.cvtColor(a, cv2.COLOR_RGB2GRAY) for a in arrays]


def _clip_median(planes: list[np.ndarray]) -> float:
    """Median brightness of the whole clip (sampled): one threshold for all frames, so edges don't flicker."""
    step = max(1, len(planes) // 8)
    return float(np.median(np.stack([p[::4, ::4] for p in planes[::step]])))


def _grayscale(arrays):
    return [np.repeat(p[..., None], 3, axis=2) for p in _grey_planes(arrays)]


def _edges(arrays):
    import cv2

    planes = [cv2.GaussianBlur(p, (3, 3), 0) for p in _grey_planes(arrays)]
    median = _clip_median(planes)
    # the usual "auto Canny" band around the median, kept away from 0 so flat dark frames stay clean
    low = int(np.clip(0.67 * median, 20, 200))
    high = int(np.clip(1.33 * median, low + 40, 255))
    return [np.repeat(cv2.Canny(p, low, high)[..., None], 3, axis=2) for p in planes]


def _scribble(arrays):
    import cv2

    height, width = arrays[0].shape[:2]
    short = min(height, width)
    blur = max(3, short // 80) | 1  # odd kernel, about 1% of the short side: drops texture, keeps shapes
    thickness = max(3, short // 120) | 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (thickness, thickness))
    planes = [cv2.GaussianBlur(p, (blur, blur), 0) for p in _grey_planes(arrays)]
    median = _clip_median(planes)
    low = int(np.clip(0.8 * median, 40, 200))
    high = int(np.clip(1.6 * median, low + 60, 255))
    return [np.repeat(cv2.dilate(cv2.Canny(p, low, high), kernel)[..., None], 3, axis=2) for p in planes]


def _flow(arrays):
    """Farneback optical flow between consecutive frames as a colour-wheel image: hue = direction,
    saturation = speed, white = still (the look of the RAFT flow images VACE was trained on)."""
    import cv2

    height, width = arrays[0].shape[:2]
    scale = min(1.0, 512 / max(height, width))  # flow at <= 512 px is plenty and several times faster
    planes = _grey_planes(arrays)
    if scale < 1.0:
        small = (max(8, round(width * scale)), max(8, round(height * scale)))
        planes = [cv2.resize(p, small, interpolation=cv2.INTER_AREA) for p in planes]
    if len(planes) == 1:
        return [np.full_like(arrays[0], 255)]
    flows = [
        cv2.calcOpticalFlowFarneback(a, b, None, pyr_scale=0.5, levels=3, winsize=15, iterations=3,
                                     poly_n=5, poly_sigma=1.2, flags=0)
        for a, b in zip(planes[:-1], planes[1:])
    ]
    flows = [flows[0], *flows]  # frame 0 shows the motion 0 -> 1, so the count is unchanged
    polar = [cv2.cartToPolar(f[..., 0], f[..., 1], angleInDegrees=True) for f in flows]
    # one scale for the whole clip, so speeds compare across frames: the 95th percentile of the
    # moving pixels (a few very fast ones do not wash the rest out); under a pixel is noise, not motion
    speeds = np.concatenate([mag[mag > 0.5] for mag, _ in polar])
    top = max(1.0, float(np.percentile(speeds, 95)) if speeds.size else 0.0)
    out = []
    for magnitude, angle in polar:
        hsv = np.empty((*magnitude.shape, 3), np.uint8)
        hsv[..., 0] = (angle / 2).astype(np.uint8) % 180  # OpenCV hue is 0-179: right = red, down = yellow-green
        hsv[..., 1] = np.clip(magnitude / top * 255, 0, 255).astype(np.uint8)
        hsv[..., 2] = 255
        rgb = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
        if rgb.shape[:2] != (height, width):
            rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_LINEAR)
        out.append(rgb)
    return out


_EXTRACTORS = {"grayscale": _grayscale, "edges": _edges, "scribble": _scribble, "flow": _flow}


def control_frames(kind: str, frames: list, source: str = "raw") -> list[Image.Image]:
    """The control video for `kind`: extracted from a normal video (source="raw") or the frames
    themselves when they already are a control video (source="control"). Count and size unchanged."""
    if kind not in CONTROL_KINDS:
        raise RequestError("vace_mode", f"Unknown VACE control {kind!r}; choose one of: {', '.join(CONTROL_KINDS)}.")
    if source not in CONTROL_SOURCES:
        raise RequestError("control_source", f"control_source must be 'raw' or 'control'; got {source!r}.")
    if not frames:
        raise RequestError("video", f"{kind.capitalize()} control needs a video with at least one frame; "
                                    "the video is empty.")
    if source == "control":
        return [media.load_image(frame, field="video") for frame in frames]
    if kind in MADE_BY_MODELS:
        raise ValueError(f"{kind} controls are made by annotator models before the run (wan_studio.extract)")
    return _to_images(_EXTRACTORS[kind](_arrays(frames)))


# -- masks ----------------------------------------------------------------------------------------
def _binarised(mask) -> Image.Image:
    mask = mask if isinstance(mask, Image.Image) else media.load_image(mask, field="mask")
    return Image.fromarray(np.where(np.asarray(mask.convert("L")) > 127, GENERATE, KEEP).astype(np.uint8), "L")


def _bbox_mask(bbox, size: tuple[int, int]) -> Image.Image:
    width, height = size
    try:
        x0, y0, x1, y1 = (int(round(float(v))) for v in bbox)
    except (TypeError, ValueError) as exc:
        raise RequestError("bbox", f"The bounding box must be four numbers x0, y0, x1, y1; got {bbox!r}.") from exc
    if x0 >= x1 or y0 >= y1:
        raise RequestError("bbox", f"The bounding box needs x0 < x1 and y0 < y1; got {bbox!r}.")
    cx0, cy0, cx1, cy1 = max(0, x0), max(0, y0), min(width, x1), min(height, y1)
    if cx0 >= cx1 or cy0 >= cy1:
        raise RequestError("bbox", f"The bounding box {bbox!r} lies outside the {width}x{height} frame; "
                                   "draw it inside the picture.")
    plane = np.zeros((height, width), np.uint8)
    plane[cy0:cy1, cx0:cx1] = GENERATE
    return Image.fromarray(plane, "L")


def _grey_out(frame: Image.Image, mask: Image.Image) -> Image.Image:
    return Image.composite(Image.new("RGB", frame.size, GREY), frame, mask)


def inpaint(frames: list, mask) -> tuple[list, list]:
    """(video, masks) to regenerate the white area of `mask` in every frame.

    `mask` is one "L" image for all frames, a list of them (one per frame) or a box (x0, y0, x1, y1)
    in pixels (x1, y1 exclusive). The area to generate is painted grey in the video."""
    if not frames:
        raise RequestError("video", "Inpainting needs a video with at least one frame; the video is empty.")
    frames = [media.load_image(frame, field="video") for frame in frames]
    size = frames[0].size
    if isinstance(mask, Image.Image):
        masks = [_binarised(mask)] * len(frames)
    elif (isinstance(mask, (tuple, list)) and len(mask) == 4
          and all(isinstance(v, (int, float, np.number)) for v in mask)):
        masks = [_bbox_mask(mask, size)] * len(frames)
    elif isinstance(mask, (tuple, list)):
        if len(mask) != len(frames):
            raise RequestError(
                "mask", f"The mask video has {len(mask)} frames but the video has {len(frames)}; they must match "
                        "(one mask per frame)."
            )
        masks = [_binarised(m) for m in mask]
    else:
        raise RequestError("mask", "Inpainting needs a mask image, a list of masks or a box (x0, y0, x1, y1); "
                                   f"got {type(mask).__name__}.")
    for m in masks:
        if m.size != size:
            raise RequestError(
                "mask", f"The mask is {m.size[0]}x{m.size[1]} pixels but the video is {size[0]}x{size[1]}; "
                        "they must be the same size."
            )
    return [_grey_out(f, m) for f, m in zip(frames, masks)], masks


def _directions(directions) -> set[str]:
    chosen = [directions] if isinstance(directions, str) else list(directions or [])
    unknown = [d for d in chosen if d not in OUTPAINT_DIRECTIONS]
    if unknown or not chosen:
        raise RequestError(
            "outpaint_directions",
            f"Outpaint directions must be one or more of {', '.join(OUTPAINT_DIRECTIONS)}; got {directions!r}.",
        )
    return set(chosen)


def _split(total: int, before: bool, after: bool) -> tuple[int, int]:
    """Share `total` extra pixels between the two ends of an axis, favouring the ends being padded."""
    if before == after:
        return total // 2, total - total // 2
    return (total, 0) if before else (0, total)


def outpaint(frames: list, directions, ratio: float, granularity: int) -> tuple[list, list, int, int]:
    """(video, masks, width, height): each frame padded on the chosen sides by ratio x that dimension,
    the total snapped up to a multiple of `granularity`. Padding is grey in the video and white
    (generate) in the mask; the original picture is black (keep)."""
    sides = _directions(directions)
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio <= 2:
        raise RequestError("outpaint_ratio", "Outpaint ratio must be above 0 and at most 2 (2 = twice the side); "
                                             f"got {ratio!r}.")
    if granularity < 1:
        raise ValueError(f"granularity must be at least 1; got {granularity}")
    if not frames:
        raise RequestError("video", "Outpainting needs a video with at least one frame; the video is empty.")
    frames = [media.load_image(frame, field="video") for frame in frames]
    src_w, src_h = frames[0].size
    left = round(ratio * src_w) if "left" in sides else 0
    right = round(ratio * src_w) if "right" in sides else 0
    top = round(ratio * src_h) if "up" in sides else 0
    bottom = round(ratio * src_h) if "down" in sides else 0
    width = -(-(src_w + left + right) // granularity) * granularity
    height = -(-(src_h + top + bottom) // granularity) * granularity
    extra_left, extra_right = _split(width - (src_w + left + right), "left" in sides, "right" in sides)
    extra_top, extra_bottom = _split(height - (src_h + top + bottom), "up" in sides, "down" in sides)
    left, top = left + extra_left, top + extra_top

    mask = Image.new("L", (width, height), GENERATE)
    mask.paste(KEEP, (left, top, left + src_w, top + src_h))
    video = []
    for frame in frames:
        if frame.size != (src_w, src_h):
            frame = media.center_crop_resize(frame, src_w, src_h)
        canvas = Image.new("RGB", (width, height), GREY)
        canvas.paste(frame, (left, top))
        video.append(canvas)
    return video, [mask] * len(video), width, height


# -- extension ------------------------------------------------------------------------------------
def extension(kind: str, num_frames: int, width: int, height: int, first=None, last=None,
              clip: list | None = None) -> tuple[list, list]:
    """(video, masks) of `num_frames` where the known frames are kept (black mask) and the rest
    are grey and generated (white mask):
    first_frame  [first, grey ...]           last_frame  [grey ..., last]
    first_last   [first, grey ..., last]     first_clip  [clip ..., grey ...]   last_clip [grey ..., clip ...]
    Images and clip frames are centre-cropped to width x height."""
    if kind not in EXTENSION_KINDS:
        raise RequestError("extension", f"Unknown extension {kind!r}; choose one of: {', '.join(EXTENSION_KINDS)}.")
    if num_frames < 2:
        raise RequestError("frames", "Extension needs at least 2 frames (one known, one to generate); "
                                     f"got {num_frames}.")
    label = kind.replace("_", " ")
    needs_first = kind in ("first_frame", "first_last")
    needs_last = kind in ("last_frame", "first_last")
    if (needs_first and first is None) or (needs_last and last is None):
        images = (("a first image", needs_first), ("a last image", needs_last))
        wanted = " and ".join(w for w, needed in images if needed)
        field = "image" if needs_first and first is None else "last_image"
        raise RequestError(field, f"The {label} extension needs {wanted}.")

    def fitted(image, field: str) -> Image.Image:
        return media.center_crop_resize(media.load_image(image, field=field), width, height)

    if kind in ("first_clip", "last_clip"):
        if not clip:
            raise RequestError("video", f"The {label} extension needs a video clip to continue; upload a video.")
        if len(clip) >= num_frames:
            raise RequestError(
                "video",
                f"The clip has {len(clip)} frames but the video is {num_frames}; the clip must be shorter so there is "
                f"something to generate. Use at most {num_frames - 1} clip frames, or ask for more frames.",
            )
        known = [fitted(frame, "video") for frame in clip]
    else:
        known = []

    grey = Image.new("RGB", (width, height), GREY)
    keep, generate = Image.new("L", (width, height), KEEP), Image.new("L", (width, height), GENERATE)
    video, masks = [grey] * num_frames, [generate] * num_frames
    if kind == "first_clip":
        video[:len(known)], masks[:len(known)] = known, [keep] * len(known)
    elif kind == "last_clip":
        video[num_frames - len(known):], masks[num_frames - len(known):] = known, [keep] * len(known)
    if needs_first:
        video[0], masks[0] = fitted(first, "image"), keep
    if needs_last:
        video[-1], masks[-1] = fitted(last, "last_image"), keep
    return video, masks
