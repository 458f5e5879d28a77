"""Typed requests for the modes that take pictures, videos or masks.

Each request loads and checks its files when it is built (so a missing, unreadable or too short
input is refused before it reaches the queue), then suggests the output size and frame count
from those inputs: the size follows the input image or video, keeping its aspect ratio, at the
checkpoint's native area and spatial granularity; the frame count follows the input video at
the checkpoint's fps, trimmed to a legal 4k+1 count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from wan_studio import media
from wan_studio.catalog import Checkpoint
from wan_studio.errors import RequestError
from wan_studio.requests import GenerationRequest

MAX_REFERENCES = 3


def native_area(record: Checkpoint) -> int:
    width, height = record.default_size
    return width * height


def size_from(record: Checkpoint, width: int, height: int) -> tuple[int, int]:
    return media.fit_size(width, height, native_area(record), record.spatial_granularity)


def _seconds(frames: int, fps: float) -> str:
    return f"{frames / fps:.2f} s"


class _VideoInput:
    """Mixin: a source video whose length at the model's fps bounds the frame count."""

    def _probe(self, name: str, record: Checkpoint, required: bool = True) -> media.VideoInfo | None:
        path = getattr(self, name)
        if not path:
            if required:
                raise RequestError(name, f"{self.mode.upper()} needs an input video ({name.replace('_', ' ')}).")
            return None
        return media.probe_video(path, field=name)

    @staticmethod
    def _available_frames(info: media.VideoInfo, record: Checkpoint) -> int:
        return int(info.duration_s * record.fps + 1e-6) if info.duration_s else info.frames

    def _frames_from_video(self, name: str, info: media.VideoInfo, record: Checkpoint) -> int:
        available = self._available_frames(info, record)
        count = media.legal_frame_count(available, record.frames_min, record.frames_max)
        if count == 0:
            raise RequestError(
                name,
                f"The video {Path(getattr(self, name)).name} is {info.duration_s:.2f} s long ({available} frames at "
                f"{record.fps} fps); {self.mode.upper()} needs at least {record.frames_min} frames "
                f"({_seconds(record.frames_min, record.fps)}).",
            )
        return count

    def _check_frames_fit(self, name: str, info: media.VideoInfo, record: Checkpoint) -> None:
        available = self._available_frames(info, record)
        if self.frames is not None and isinstance(self.frames, int) and self.frames > available:
            raise RequestError(
                "frames",
                f"Frames is {self.frames} but the video {Path(getattr(self, name)).name} gives only {available} "
                f"frames at {record.fps} fps; use at most "
                f"{media.legal_frame_count(available, record.frames_min, record.frames_max)}.",
            )


@dataclass
class I2VRequest(GenerationRequest):
    mode: ClassVar[str] = "i2v"
    file_fields: ClassVar[tuple[str, ...]] = ("image",)

    image: str | None = None

    def _check_inputs(self, record: Checkpoint) -> None:
        if not self.image:
            raise RequestError("image", "Image to video needs an input image: the picture the video starts from.")
        self._image_size = media.load_image(self.image, field="image").size

    def _suggested_size(self, record: Checkpoint) -> tuple[int, int]:
        return size_from(record, *self._image_size)


@dataclass
class TI2VRequest(I2VRequest):
    """Wan 2.2 TI2V-5B: text to video, or text + image when an image is given."""

    mode: ClassVar[str] = "ti2v"

    def _check_inputs(self, record: Checkpoint) -> None:
        self._image_size = media.load_image(self.image, field="image").size if self.image else None

    def _suggested_size(self, record: Checkpoint) -> tuple[int, int]:
        if self._image_size is None:
            return record.default_size
        width, height = self._image_size
        return record.default_size if width >= height else tuple(reversed(record.default_size))


@dataclass
class FLF2VRequest(GenerationRequest):
    mode: ClassVar[str] = "flf2v"
    file_fields: ClassVar[tuple[str, ...]] = ("image", "last_image")

    image: str | None = None
    last_image: str | None = None

    def _check_inputs(self, record: Checkpoint) -> None:
        if not self.image:
            raise RequestError("image", "First-last frame to video needs a first frame image.")
        if not self.last_image:
            raise RequestError("last_image", "First-last frame to video needs a last frame image.")
        self._image_size = media.load_image(self.image, field="image").size
        media.load_image(self.last_image, field="last_image")

    def _suggested_size(self, record: Checkpoint) -> tuple[int, int]:
        # the output takes the first frame's aspect ratio; the last frame is centre-cropped to it
        return size_from(record, *self._image_size)


@dataclass
class V2VRequest(_VideoInput, GenerationRequest):
    mode: ClassVar[str] = "v2v"
    file_fields: ClassVar[tuple[str, ...]] = ("video",)

    video: str | None = None
    strength: float = 0.8

    def _check_inputs(self, record: Checkpoint) -> None:
        self._info = self._probe("video", record)
        self._check_frames_fit("video", self._info, record)
        if isinstance(self.strength, bool) or not isinstance(self.strength, (int, float)) or not 0 < self.strength <= 1:
            raise RequestError(
                "strength",
                f"Strength must be a number above 0 and at most 1 (how much of the input is repainted); got {self.strength!r}.",
            )

    def _suggested_size(self, record: Checkpoint) -> tuple[int, int]:
        return size_from(record, self._info.width, self._info.height)

    def _suggested_frames(self, record: Checkpoint) -> int:
        return self._frames_from_video("video", self._info, record)


VACE_MODES = ("depth", "pose", "flow", "scribble", "edges", "grayscale", "layout", "inpaint", "outpaint",
              "extension", "reference")
VACE_CONTROL_MODES = VACE_MODES[:7]


@dataclass
class VACERequest(_VideoInput, GenerationRequest):
    """VACE: control video, masking (inpaint / outpaint / extension) or reference-only, plus up to
    three reference images with any of them."""

    mode: ClassVar[str] = "vace"
    file_fields: ClassVar[tuple[str, ...]] = ("video", "mask", "image", "last_image", "reference")

    vace_mode: str = "reference"
    video: str | None = None
    control_source: str = "raw"  # raw: extract the control from a normal video; control: it already is one
    mask: str | None = None  # mask image (all frames) or mask video
    bbox: list[int] | None = None  # inpaint box x0, y0, x1, y1 in output pixels
    outpaint_directions: list[str] = field(default_factory=lambda: ["left", "right"])
    outpaint_ratio: float = 0.25
    extension: str = "first_frame"
    image: str | None = None  # first frame for extension
    last_image: str | None = None  # last frame for extension
    reference: list[str] = field(default_factory=list)
    conditioning_scale: float = 1.0

    def _check_inputs(self, record: Checkpoint) -> None:
        from wan_studio import vace_inputs

        if self.vace_mode not in VACE_MODES:
            raise RequestError("vace_mode", f"Unknown VACE sub-mode {self.vace_mode!r}; choose one of: {', '.join(VACE_MODES)}.")
        if self.control_source not in ("raw", "control"):
            raise RequestError("control_source", f"control_source must be 'raw' or 'control'; got {self.control_source!r}.")
        refs = list(self.reference or [])
        if len(refs) > MAX_REFERENCES:
            raise RequestError("reference", f"VACE takes at most {MAX_REFERENCES} reference images; got {len(refs)}.")
        for path in refs:
            media.load_image(path, field="reference")
        self._info = None
        self._image_size = None
        kind = self.vace_mode
        if kind == "reference" and not refs:
            raise RequestError("reference", "Reference mode needs 1 to 3 reference images (a face, an object, a style).")
        if kind in VACE_CONTROL_MODES or kind in ("inpaint", "outpaint") or (
            kind == "extension" and self.extension in ("first_clip", "last_clip")
        ):
            self._info = self._probe("video", record)
            self._check_frames_fit("video", self._info, record)
        if kind in ("depth", "pose", "layout") and self.control_source == "raw":
            vace_inputs.check_annotator(kind, self._annotators_dir())
        if kind == "inpaint":
            self._check_inpaint_mask()
        if kind == "outpaint":
            bad = [d for d in self.outpaint_directions or [] if d not in vace_inputs.OUTPAINT_DIRECTIONS]
            if bad or not self.outpaint_directions:
                raise RequestError(
                    "outpaint_directions",
                    f"Outpaint directions must be some of {', '.join(vace_inputs.OUTPAINT_DIRECTIONS)}; got {self.outpaint_directions!r}.",
                )
            if isinstance(self.outpaint_ratio, bool) or not isinstance(self.outpaint_ratio, (int, float)) or not 0 < self.outpaint_ratio <= 2:
                raise RequestError("outpaint_ratio", f"Outpaint ratio must be above 0 and at most 2; got {self.outpaint_ratio!r}.")
        if kind == "extension":
            self._check_extension()
        if isinstance(self.conditioning_scale, bool) or not isinstance(self.conditioning_scale, (int, float)) or not 0 <= self.conditioning_scale <= 2:
            raise RequestError("conditioning_scale", f"Conditioning scale must be between 0 and 2; got {self.conditioning_scale!r}.")

    def _annotators_dir(self) -> Path:
        from wan_studio.settings import load_settings

        return load_settings().models_dir / "annotators"

    def _check_inpaint_mask(self) -> None:
        if not self.mask and not self.bbox:
            raise RequestError("mask", "Inpaint needs a mask (an image for all frames, or a mask video) or a bounding box.")
        if self.bbox is not None:
            box = list(self.bbox)
            if len(box) != 4 or not all(isinstance(v, int) and not isinstance(v, bool) for v in box) or box[0] >= box[2] or box[1] >= box[3] or min(box) < 0:
                raise RequestError("bbox", f"The bounding box must be four whole numbers x0, y0, x1, y1 with x0 < x1 and y0 < y1; got {self.bbox!r}.")
        if self.mask:
            self._mask_is_video = _looks_like_video(self.mask)
            if self._mask_is_video:
                info = media.probe_video(self.mask, field="mask")
                needed = self.frames if isinstance(self.frames, int) else None
                mask_frames = self._available_frames(info, self.checkpoint)
                if needed and mask_frames < needed:
                    raise RequestError("mask", f"The mask video gives {mask_frames} frames at {self.checkpoint.fps} fps but the video needs {needed}.")
            else:
                media.load_image(self.mask, field="mask")

    def _check_extension(self) -> None:
        from wan_studio import vace_inputs

        if self.extension not in vace_inputs.EXTENSION_KINDS:
            raise RequestError("extension", f"Unknown extension {self.extension!r}; choose one of: {', '.join(vace_inputs.EXTENSION_KINDS)}.")
        needs_first = self.extension in ("first_frame", "first_last")
        needs_last = self.extension in ("last_frame", "first_last")
        if needs_first and not self.image:
            raise RequestError("image", f"The {self.extension.replace('_', ' ')} extension needs a first frame image.")
        if needs_last and not self.last_image:
            raise RequestError("last_image", f"The {self.extension.replace('_', ' ')} extension needs a last frame image.")
        if self.image:
            self._image_size = media.load_image(self.image, field="image").size
        if self.last_image:
            size = media.load_image(self.last_image, field="last_image").size
            self._image_size = self._image_size or size

    def outpaint_scale(self) -> tuple[float, float]:
        """How much wider and taller the outpainted frame is than the source."""
        sides = set(self.outpaint_directions or [])
        return (1 + self.outpaint_ratio * len(sides & {"left", "right"}),
                1 + self.outpaint_ratio * len(sides & {"up", "down"}))

    def _suggested_size(self, record: Checkpoint) -> tuple[int, int]:
        if self._info is not None and self.vace_mode == "outpaint":
            sx, sy = self.outpaint_scale()
            return size_from(record, round(self._info.width * sx), round(self._info.height * sy))
        if self._info is not None:
            return size_from(record, self._info.width, self._info.height)
        if self._image_size is not None:
            return size_from(record, *self._image_size)
        return record.default_size

    def _suggested_frames(self, record: Checkpoint) -> int:
        clip_extension = self.vace_mode == "extension" and self.extension in ("first_clip", "last_clip")
        if self._info is not None and not clip_extension:
            return self._frames_from_video("video", self._info, record)
        return record.frames_default


ANIMATE_MODES = ("animate", "replace")
PREPROCESS_HINT = (
    "Turning a raw driving video into these needs Wan-Animate's preprocessing models (ViTPose-H, YOLOv10, SAM2 from "
    "Wan-AI/Wan2.2-Animate-14B process_checkpoint), which are not installed here: make them with the Wan 2.2 "
    "preprocessing script and upload the resulting videos."
)


@dataclass
class AnimateRequest(_VideoInput, GenerationRequest):
    """Wan-Animate: a character image driven by pre-processed pose and face videos (animate), or
    put into a background video where the mask is white (replace). Long driving videos run in
    segments of `segment_frame_length` frames, each conditioned on the end of the previous one."""

    mode: ClassVar[str] = "animate"
    file_fields: ClassVar[tuple[str, ...]] = ("image", "pose_video", "face_video", "background_video", "mask_video")

    image: str | None = None
    pose_video: str | None = None
    face_video: str | None = None
    background_video: str | None = None
    mask_video: str | None = None
    animate_mode: str = "animate"
    segment_frame_length: int | None = None
    prev_segment_conditioning_frames: int = 1

    def _check_inputs(self, record: Checkpoint) -> None:
        if self.animate_mode not in ANIMATE_MODES:
            raise RequestError("animate_mode", f"Animate mode must be 'animate' or 'replace'; got {self.animate_mode!r}.")
        if not self.image:
            raise RequestError("image", "Animate needs a character image: the person or figure to bring to life.")
        self._image_size = media.load_image(self.image, field="image").size
        for name, what in (("pose_video", "pose video (skeleton renders)"), ("face_video", "face video (face crops)")):
            if not getattr(self, name):
                raise RequestError(name, f"Animate needs a pre-processed {what}. {PREPROCESS_HINT}")
        self._pose = self._probe("pose_video", record)
        self._available = self._available_frames(self._pose, record)
        if self._available < 5:
            raise RequestError("pose_video", f"The pose video gives {self._available} frames at {record.fps} fps; Animate needs at least 5.")
        extra = ("background_video", "mask_video") if self.animate_mode == "replace" else ()
        if self.animate_mode == "replace":
            for name, what in (("background_video", "background video"), ("mask_video", "mask video (white = the character to replace)")):
                if not getattr(self, name):
                    raise RequestError(name, f"Replace mode needs a pre-processed {what}. {PREPROCESS_HINT}")
        for name in ("face_video", *extra):
            info = self._probe(name, record)
            count = self._available_frames(info, record)
            if count < min(self._available, self.frames or self._available):
                raise RequestError(name, f"The {name.replace('_', ' ')} gives {count} frames at {record.fps} fps but the pose video needs {self._available}.")
        if self.prev_segment_conditioning_frames not in (1, 5):
            raise RequestError("prev_segment_conditioning_frames", f"Frames carried between segments must be 1 or 5; got {self.prev_segment_conditioning_frames!r}.")
        if self.segment_frame_length is None:
            self.segment_frame_length = record.frames_default
        seg = self.segment_frame_length
        if not isinstance(seg, int) or isinstance(seg, bool) or seg < 5 or (seg - 1) % 4 or seg > record.frames_max:
            raise RequestError("segment_frame_length", f"Segment length must be of the form 4k+1 between 5 and {record.frames_max}; got {seg!r}.")

    def _suggested_size(self, record: Checkpoint) -> tuple[int, int]:
        return size_from(record, *self._image_size)

    def _suggested_frames(self, record: Checkpoint) -> int:
        return self._available

    def _check_frames(self, record: Checkpoint) -> None:
        # the output is as long as the driving video: any length, made segment by segment
        if not isinstance(self.frames, int) or isinstance(self.frames, bool) or not 1 <= self.frames <= self._available:
            raise RequestError("frames", f"Frames must be between 1 and {self._available} (the pose video's length at {record.fps} fps); got {self.frames!r}.")

    @property
    def segments(self) -> int:
        effective = self.segment_frame_length - self.prev_segment_conditioning_frames
        return max(1, -(-(self.frames - self.prev_segment_conditioning_frames) // effective))


S2V_MIN_AUDIO_S = 0.5
S2V_RESOLUTIONS = ("480p", "720p")
S2V_FIRST_CLIP_DROP = 3  # frames the first clip loses (decoded after the reference latent; upstream drops them)


@dataclass
class S2VRequest(GenerationRequest):
    """Speech to video (Wan 2.2 S2V-14B): a reference image speaks or sings along to an audio file,
    optionally following a pose video. The output is as long as the audio at the model's 16 fps
    (`frames`, derived from the audio; a smaller value keeps only the start), made clip after
    clip of `clip_frames` frames, each continuing from the last frames of the one before."""

    mode: ClassVar[str] = "s2v"
    file_fields: ClassVar[tuple[str, ...]] = ("image", "audio", "pose_video")

    image: str | None = None
    audio: str | None = None
    pose_video: str | None = None
    clip_frames: int | None = None
    resolution: str = "480p"  # the area bucket; the aspect ratio follows the image

    def _check_inputs(self, record: Checkpoint) -> None:
        from wan_studio import audio, catalog

        if self.resolution not in S2V_RESOLUTIONS:
            raise RequestError("resolution", f"Resolution must be one of {', '.join(S2V_RESOLUTIONS)}; got {self.resolution!r}.")

        facts = catalog.raw_record(record.id).get("s2v", {})
        if not self.image:
            raise RequestError("image", "Speech to video needs a reference image: the person (or character) who speaks.")
        self._image_size = media.load_image(self.image, field="image").size
        if not self.audio:
            raise RequestError("audio", "Speech to video needs an audio file: the speech or song that drives the video.")
        self._audio_s = audio.audio_duration(self.audio, field="audio")
        name = Path(self.audio).name
        if self._audio_s < S2V_MIN_AUDIO_S:
            raise RequestError("audio", f"The audio {name} is {self._audio_s:.2f} s long; S2V needs at least {S2V_MIN_AUDIO_S} s.")
        longest = facts.get("max_audio_s", 300)
        if self._audio_s > longest:
            raise RequestError(
                "audio", f"The audio {name} is {self._audio_s:.1f} s long; {record.name} takes at most {longest} s. "
                "Cut it into parts and make one video per part.",
            )
        if self.pose_video:
            media.probe_video(self.pose_video, field="pose_video")
        if self.clip_frames is None:
            self.clip_frames = record.frames_default
        clip = self.clip_frames
        if not isinstance(clip, int) or isinstance(clip, bool) or clip < 8 or clip % 4 or clip > record.frames_max:
            raise RequestError(
                "clip_frames", f"Clip length must be a multiple of 4 between 8 and {record.frames_max} frames; got {clip!r}.")

    def _suggested_size(self, record: Checkpoint) -> tuple[int, int]:
        # 480p: the checkpoint's default area; 720p: its largest; at the image's aspect ratio
        areas = sorted(w * h for w, h in record.sizes)
        area = native_area(record) if self.resolution == "480p" else areas[-1]
        return media.fit_size(*self._image_size, area, record.spatial_granularity)

    def _suggested_frames(self, record: Checkpoint) -> int:
        return self.audio_frames

    def _check_frames(self, record: Checkpoint) -> None:
        most = self.audio_frames
        if not isinstance(self.frames, int) or isinstance(self.frames, bool) or not 1 <= self.frames <= most:
            raise RequestError(
                "frames", f"Frames must be between 1 and {most} (the audio's {self._audio_s:.2f} s at {record.fps} fps); "
                f"got {self.frames!r}. Leave it empty to follow the audio.",
            )

    @property
    def audio_frames(self) -> int:
        """Frames that cover the whole audio at the model's fps."""
        return max(1, math.ceil(self._audio_s * self.checkpoint.fps - 1e-6))

    @property
    def audio_duration_s(self) -> float:
        return self._audio_s

    @property
    def clips(self) -> int:
        """Clips the pipeline runs (each `clip_frames` long; the first loses a few frames)."""
        return max(1, math.ceil((self.frames + S2V_FIRST_CLIP_DROP) / self.clip_frames))


def _looks_like_video(path: str) -> bool:
    return Path(path).suffix.lower() in {".mp4", ".webm", ".mov", ".mkv", ".avi", ".gif", ".m4v"}


MEDIA_REQUESTS = (I2VRequest, TI2VRequest, FLF2VRequest, V2VRequest, VACERequest, AnimateRequest, S2VRequest)
