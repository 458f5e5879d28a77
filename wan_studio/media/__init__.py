"""User images and videos in, normalised: RGB PIL images at the size a model wants.

- Images come as paths, PIL images or numpy arrays. Whatever the file holds (EXIF rotation,
  transparency, 16-bit or float grey, palette, CMYK) comes out as upright 8-bit RGB;
  transparency is composited on white.
- Videos are probed with PyAV (FFmpeg's own libraries): the container's fields, and one pass
  over the video packets counts the frames as a stream copy would. Decoding pipes raw RGB frames
  out of the ffmpeg binary bundled in imageio-ffmpeg, whose filters also resample and resize.
  Rotation metadata and non-square pixels are applied, so frames look as a player shows them.
  With a target fps, frames are resampled by timestamp (ffmpeg's `fps` filter), so variable
  and odd frame rates come out at a constant rate.
- Masks are mode "L" and binary: 255 = area to generate, 0 = keep (the VACE convention).
- Every bad user file raises `RequestError(field, ...)` whose message names the file, the
  problem and what to do. Programming errors (a negative size) raise plain ValueError.
"""

from __future__ import annotations

import math
import subprocess
import tempfile
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from wan_studio.errors import RequestError

VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".webm", ".mov", ".mkv", ".avi", ".gif", ".mpg", ".mpeg", ".wmv", ".flv",
                            ".ts"})
SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
PROBE_TIMEOUT_S = 120


# -- images ---------------------------------------------------------------------------------------
def _name(source) -> str:
    return Path(source).name or str(source)


def _open_path(path: Path, field: str) -> Image.Image:
    name = _name(path)
    if not path.exists():
        raise RequestError(field, f"The image file {name} was not found; upload it again.")
    if path.is_dir():
        raise RequestError(field, f"{name} is a folder, not an image file; choose an image file.")
    if path.stat().st_size == 0:
        raise RequestError(field, f"The image file {name} is empty (0 bytes); upload it again.")
    try:
        with Image.open(path) as opened:
            opened.load()
            image = opened.copy()
    except Image.DecompressionBombError as exc:
        limit = (Image.MAX_IMAGE_PIXELS or 0) * 2 // 1_000_000
        raise RequestError(
            field, f"The image file {name} is too large to open safely; use an image under {limit} megapixels."
        ) from exc
    except Exception as exc:  # Pillow's decoders raise many types on a damaged or foreign file
        if path.suffix.lower() in VIDEO_SUFFIXES:
            raise RequestError(
                field, f"The file {name} is a video, not an image; choose a still image (PNG, JPEG or WebP)."
            ) from exc
        raise RequestError(field, f"{name} isn't an image we can read: PNG, JPEG or WebP. It is not an image, "
                                  "or it is damaged.") from exc
    return image


def _from_array(array: np.ndarray, field: str) -> Image.Image:
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)) or 0 in array.shape:
        raise RequestError(field, f"The {field} array must be H x W, H x W x 3 or H x W x 4; got shape {array.shape}.")
    if array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    elif array.dtype == np.uint16:
        array = _sixteen_to_eight(array)
    elif np.issubdtype(array.dtype, np.floating):
        array = _float_to_eight(array)
    elif array.dtype != np.uint8:
        array = _int_to_eight(array)
    return Image.fromarray(np.ascontiguousarray(array))


def _open_image(source, field: str) -> Image.Image:
    """The source as a loaded, upright PIL image in its own mode (alpha and bit depth kept)."""
    if isinstance(source, Image.Image):
        image = source
    elif isinstance(source, np.ndarray):
        image = _from_array(source, field)
    elif isinstance(source, (str, Path)):
        if not str(source):
            raise RequestError(field, f"No {field} was given; upload an image.")
        image = _open_path(Path(source), field)
    else:
        raise RequestError(field, f"The {field} must be an image file, a PIL image or a numpy array; "
                                  f"got {type(source).__name__}.")
    try:
        return ImageOps.exif_transpose(image)
    except Exception:  # a broken EXIF block should not cost the user the picture
        return image


def _sixteen_to_eight(array: np.ndarray) -> np.ndarray:
    # 65535 / 257 == 255: the full 16-bit range maps onto the full 8-bit range, rounding to nearest
    return np.round(array.astype(np.float32) / 257.0).astype(np.uint8)


def _int_to_eight(array: np.ndarray) -> np.ndarray:
    low, high = int(array.min()), int(array.max())
    if low >= 0 and high <= 255:
        return array.astype(np.uint8)
    if low >= 0 and high <= 65535:
        return _sixteen_to_eight(array)
    return np.round((array.astype(np.float64) - low) * 255.0 / max(high - low, 1)).astype(np.uint8)


def _float_to_eight(array: np.ndarray) -> np.ndarray:
    array = np.nan_to_num(array.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    low, high = float(array.min()), float(array.max())
    if low >= 0.0 and high <= 1.0:
        return np.round(array * 255.0).astype(np.uint8)
    if low >= 0.0 and high <= 255.0:
        return np.round(array).astype(np.uint8)
    return np.round((array - low) * 255.0 / max(high - low, 1e-12)).astype(np.uint8)


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ALPHA_MODES or (image.mode in ("P", "L", "RGB") and "transparency" in image.info)


def _to_rgb(image: Image.Image, field: str, name: str) -> Image.Image:
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in SIXTEEN_BIT_MODES:
        return Image.fromarray(_sixteen_to_eight(np.asarray(image))).convert("RGB")
    if mode == "I":
        return Image.fromarray(_int_to_eight(np.asarray(image))).convert("RGB")
    if mode == "F":
        return Image.fromarray(_float_to_eight(np.asarray(image))).convert("RGB")
    try:
        if _has_alpha(image):
            rgba = image.convert("RGBA")
            canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            canvas.alpha_composite(rgba)
            return canvas.convert("RGB")
        return image.convert("RGB")
    except ValueError as exc:
        raise RequestError(
            field, f"The image {name + ' ' if name else ''}uses the {mode} colour mode, which cannot be converted "
                   "to RGB; save it as an RGB PNG or JPEG."
        ) from exc


def load_image(source, field: str = "image") -> Image.Image:
    """Any picture a user gives as upright 8-bit RGB (see the module docstring for the rules)."""
    image = _open_image(source, field)
    name = _name(source) if isinstance(source, (str, Path)) else ""
    return _to_rgb(image, field, name)


def fit_size(width: int, height: int, max_area: int, granularity: int) -> tuple[int, int]:
    """The largest size of the same aspect ratio with width * height <= max_area, each side snapped
    down to a multiple of `granularity` (at least 2 * granularity). Small images are scaled up."""
    if width <= 0 or height <= 0 or max_area <= 0 or granularity <= 0:
        raise ValueError(f"fit_size needs positive numbers; got {width}x{height}, area {max_area}, "
                         f"granularity {granularity}")
    scale = math.sqrt(max_area / (width * height))
    smallest = 2 * granularity

    def snap(value: float) -> int:
        return max(smallest, int(math.floor(value / granularity + 1e-9)) * granularity)

    fitted_w, fitted_h = snap(width * scale), snap(height * scale)
    # a very thin picture: the short side was raised to its minimum, so shrink the long side to fit
    if fitted_w * fitted_h > max_area:
        if fitted_h == smallest:
            fitted_w = snap(max_area / fitted_h)
        else:
            fitted_h = snap(max_area / fitted_w)
    return fitted_w, fitted_h


def _as_pil(image) -> Image.Image:
    return image if isinstance(image, Image.Image) else load_image(image)


def resize_to(image, width: int, height: int) -> Image.Image:
    """Resize to exactly width x height (aspect ratio not kept), LANCZOS. Same size: returned as is."""
    image = _as_pil(image)
    if image.size == (width, height):
        return image
    return image.resize((width, height), Image.Resampling.LANCZOS)


def _cover_box(size: tuple[int, int], width: int, height: int) -> tuple[float, float, float, float]:
    """The centred region of a `size` image that has the aspect ratio of width x height."""
    src_w, src_h = size
    scale = max(width / src_w, height / src_h)
    crop_w, crop_h = width / scale, height / scale
    left, top = (src_w - crop_w) / 2, (src_h - crop_h) / 2
    return left, top, left + crop_w, top + crop_h


def cover_transform(size: tuple[int, int], width: int, height: int) -> tuple[float, float, float]:
    """(scale, left, top) of center_crop_resize: a point p of a `size` picture lands at
    (p - (left, top)) * scale in the width x height result."""
    left, top, right, _ = _cover_box(size, width, height)
    return width / (right - left), left, top


def center_crop_resize(image, width: int, height: int) -> Image.Image:
    """Scale to cover width x height, then crop the centre: exactly width x height, nothing stretched."""
    image = _as_pil(image)
    if image.size == (width, height):
        return image
    return image.resize((width, height), Image.Resampling.LANCZOS, box=_cover_box(image.size, width, height))


# -- videos ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class VideoInfo:
    width: int  # as displayed: rotation and pixel aspect applied
    height: int
    fps: float  # average frame rate
    frames: int
    duration_s: float  # of the video stream
    has_audio: bool


def _ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _check_video_path(path, field: str) -> Path:
    if path is None or not str(path):
        raise RequestError(field, f"No {field.replace('_', ' ')} was given; upload a video.")
    path = Path(path)
    name = _name(path)
    if not path.exists():
        raise RequestError(field, f"The video file {name} was not found; upload it again.")
    if path.is_dir():
        raise RequestError(field, f"{name} is a folder, not a video file; choose a video file.")
    if path.stat().st_size == 0:
        raise RequestError(field, f"The video file {name} is empty (0 bytes); upload it again.")
    return path


def _is_still_image_format(format_name: str | None) -> bool:
    names = (format_name or "").split(",")
    return any(n.strip() == "image2" or n.strip().endswith("_pipe") for n in names)


def _first_video_stream(container):
    """The stream ffmpeg's `-map 0:V:0` takes: the first video stream with pictures that is not cover art."""
    import av

    for stream in container.streams.video:
        if stream.width and not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    return None


def _displayed_size(stream, rotation: float) -> tuple[int, int]:
    """The stream's size as a player shows it: non-square pixels stretched, a quarter turn applied."""
    width, height = stream.width, stream.height
    sar = stream.sample_aspect_ratio
    if sar and sar != 1:
        width = max(2, round(width * sar / 2) * 2)
    if round(abs(rotation)) % 180 == 90:
        width, height = height, width
    return width, height


def _count_packets(container, stream, name: str, field: str) -> tuple[int, float]:
    """(frames, rotation): one pass over the stream's packets, as ffmpeg's stream copy counts them; the
    first decoded picture carries the display rotation (the stream's display matrix)."""
    import av

    frames, rotation, deadline = 0, None, time.monotonic() + PROBE_TIMEOUT_S
    try:
        for packet in container.demux(stream):
            if packet.size:  # the last packet is the demuxer's end-of-stream flush, not a frame
                frames += 1
            if rotation is None:
                try:
                    # a decoder may hold its first pictures back until the flush packet
                    decoded = stream.decode(packet if packet.size else None)
                except av.error.FFmpegError:
                    decoded, rotation = [], 0.0  # an undecodable first picture: assume upright
                if decoded:
                    rotation = float(decoded[0].rotation)
            if time.monotonic() > deadline:
                raise RequestError(
                    field, f"Reading the video {name} took over {PROBE_TIMEOUT_S} s; it may be damaged. "
                           "Try another file.")
    except av.error.FFmpegError as exc:
        if frames == 0:
            raise RequestError(
                field, f"The video {name} could not be read ({exc.strerror or exc}); it may be damaged. "
                       "Try another file."
            ) from exc
        # a damaged tail: the frames before it still count, as they do for ffmpeg
    return frames, rotation or 0.0


def probe_video(path, field: str = "video") -> VideoInfo:
    """Size, frame rate, frame count, duration and audio of a video file, or RequestError."""
    import av

    path = _check_video_path(path, field)
    name = _name(path)
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        raise RequestError(
            field,
            f"The file {name} is not a video ffmpeg can read: it is damaged or not a video. "
            "Upload an MP4, WebM, MOV, MKV, AVI or GIF.",
        ) from exc
    with container:
        format_name = container.format.name
        has_audio = bool(container.streams.audio)
        container_s = container.duration / 1_000_000 if container.duration else None  # in AV_TIME_BASE units
        stream = _first_video_stream(container)
        if stream is None:
            what = "only audio" if has_audio else "no pictures"
            raise RequestError(field, f"The file {name} has no video stream ({what}); upload a video file.")
        rate = stream.average_rate or stream.base_rate
        frames, rotation = _count_packets(container, stream, name, field)
        width, height = _displayed_size(stream, rotation)
    if _is_still_image_format(format_name) and frames <= 1:
        kind = format_name.split("_pipe")[0].split(",")[0].upper()
        raise RequestError(
            field, f"The file {name} is a still image ({kind}), not a video; upload a video, or use it as an "
                   "image input."
        )
    if frames == 0:
        raise RequestError(field, f"The video {name} has no frames; upload a video with at least one frame.")
    fps = float(rate) if rate else 0.0
    if fps:
        # frames / average fps is the video stream's own length; the container may be longer (audio)
        duration = frames / fps if not container_s else min(container_s, frames / fps)
    else:
        duration = container_s or 0.0
        fps = frames / duration if duration else 0.0
    return VideoInfo(width, height, fps, frames, float(duration), has_audio)


def load_video_frames(path, fps: float | None = None, max_frames: int | None = None,
                      field: str = "video") -> list[Image.Image]:
    """RGB frames of a video as displayed; resampled by timestamp to `fps` when given; at most `max_frames`."""
    return list(iter_video_frames(path, fps, max_frames, field))


def iter_video_frames(path, fps: float | None = None, max_frames: int | None = None, field: str = "video"):
    """`load_video_frames` one frame at a time, so a long video never has to fit in memory at once."""
    if fps is not None and not fps > 0:
        raise ValueError(f"fps must be positive; got {fps}")
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be at least 1; got {max_frames}")
    info = probe_video(path, field)
    width, height = info.width, info.height
    filters = []
    if fps is not None:
        filters.append(f"fps={Fraction(fps).limit_denominator(1001)}")
    # fixes the output size to what was probed (rotation, pixel aspect), so every frame has it
    filters.append(f"scale={width}:{height}:flags=bicubic,setsar=1")
    command = [_ffmpeg(), "-v", "error", "-nostdin", "-i", str(path), "-map", "0:V:0", "-an", "-sn",
               "-vf", ",".join(filters), "-fps_mode", "passthrough"]
    if max_frames is not None:
        command += ["-frames:v", str(max_frames)]
    command += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    frame_bytes = width * height * 3
    count = 0
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors)
        try:
            while max_frames is None or count < max_frames:
                data = process.stdout.read(frame_bytes)
                if len(data) < frame_bytes:
                    break
                count += 1
                yield Image.frombytes("RGB", (width, height), data)
        finally:
            process.stdout.close()
            if process.poll() is None:
                process.terminate()
            process.wait()
        if not count:
            errors.seek(0)
            problem = (errors.read().decode("utf-8", "replace").strip().splitlines() or ["no frames decoded"])[-1]
            raise RequestError(field, f"The video {_name(path)} could not be decoded ({problem}); "
                                      "try re-encoding it as H.264 MP4.")


def legal_frame_count(available: int, frames_min: int, frames_max: int) -> int:
    """The largest 4k+1 count <= min(available, frames_max); 0 when that is below frames_min."""
    limit = min(available, frames_max)
    if limit < 1:
        return 0
    count = (limit - 1) // 4 * 4 + 1
    return count if count >= frames_min else 0


def fit_frames(frames: list, count: int) -> list:
    """Exactly `count` frames: the first `count` of a longer list; ValueError for a shorter one."""
    if len(frames) < count:
        raise ValueError(f"need {count} frames, got {len(frames)}")
    return list(frames[:count])


def resize_frames(frames: list, width: int, height: int, crop: bool = True) -> list:
    resize = center_crop_resize if crop else resize_to
    return [resize(frame, width, height) for frame in frames]


# -- masks ----------------------------------------------------------------------------------------
def _fit_mask(mask: Image.Image, width: int, height: int, crop: bool) -> Image.Image:
    if mask.size == (width, height):
        return mask
    box = _cover_box(mask.size, width, height) if crop else None
    return mask.resize((width, height), Image.Resampling.NEAREST, box=box)


def _binary(selected: np.ndarray) -> Image.Image:
    return Image.fromarray(np.where(selected, 255, 0).astype(np.uint8), "L")


def load_mask_image(source, width: int, height: int, field: str = "mask", *, crop: bool = True) -> Image.Image:
    """A binary "L" mask of width x height: 255 = generate, 0 = keep.

    An image with real transparency (some alpha below 255) is read by its alpha: opaque = generate,
    which is what a brush layer painted over a transparent canvas gives. Otherwise luminance > 127
    is generate. Like `resize_frames`, a mask of another aspect ratio is centre-cropped (crop=True)
    or stretched (crop=False), always with NEAREST so it stays binary.
    """
    image = _open_image(source, field)
    alpha = None
    if _has_alpha(image):
        alpha = np.asarray(image.convert("RGBA"))[..., 3]
        if alpha.min() == 255:
            alpha = None
    if alpha is not None:
        mask = _binary(alpha > 127)
    else:
        name = _name(source) if isinstance(source, (str, Path)) else ""
        mask = _binary(np.asarray(_to_rgb(image, field, name).convert("L")) > 127)
    return _fit_mask(mask, width, height, crop)


def load_mask_video(path, count: int, width: int, height: int, fps: float | None = None,
                    field: str = "mask_video", *, crop: bool = True) -> list[Image.Image]:
    """`count` binary mask frames (luminance > 127 = generate), or RequestError when the video is shorter."""
    frames = load_video_frames(path, fps=fps, max_frames=count, field=field)
    if len(frames) < count:
        rate = f" at {fps:g} fps" if fps else ""
        raise RequestError(
            field,
            f"The mask video {_name(path)} has {len(frames)} frames{rate}; this needs {count} "
            "(one mask per video frame). "
            "Use a longer mask video, a single mask image, or fewer frames.",
        )
    return [_fit_mask(_binary(np.asarray(frame.convert("L")) > 127), width, height, crop) for frame in frames]
