"""The modes that make a video longer than the checkpoint makes at once (T2V, I2V, TI2V, FLF2V, V2V,
VACE; Animate cuts its own in segments the same way): past the checkpoint's frame range, the
video is made in windows (wan_studio/runtime/windows.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from wan_studio.catalog import Checkpoint
from wan_studio.errors import RequestError
from wan_studio.requests.base import GenerationRequest, is_whole_number
from wan_studio.requests.fields import request_field
from wan_studio.requests.prepared import InputFacts

# how a window continues from the one before (wan_studio/runtime/windows.py does it)
FRAMES, LAST_FRAME, VACE_FRAMES = "frames", "last frame", "frames given to VACE to keep"
SEGMENT_FRAMES = "frames Animate carries into its next segment"
DEFAULT_OVERLAP = {FRAMES: 5, LAST_FRAME: 1, VACE_FRAMES: 5, SEGMENT_FRAMES: 1}
DEFAULT_COLOR_CORRECTION = 0.5
LONG_VIDEO_FIELDS = ("window_overlap", "color_correction")  # how windows join: the page keeps them together


def conditioning_of(request) -> str:
    """How a window continues from the one before, as the mode's class declares it (`window_conditioning`):
    I2V and FLF2V checkpoints take one frame (the next window's start image); VACE takes frames as
    frames to keep (black mask); T2V and TI2V hold them through the latents."""
    return request.window_conditioning


@dataclass(frozen=True)
class Windows:
    """How a long request is cut: each window's frame count (4k+1) and the frames they share."""

    lengths: tuple[int, ...]
    overlap: int
    conditioning: str
    total: int  # new frames asked for (the last window may run past them; the extra is cut)
    continuing: bool = False  # the first window continues a given video too (Extend)

    @property
    def count(self) -> int:
        return len(self.lengths)

    def as_dict(self) -> dict:
        return {"count": self.count, "lengths": list(self.lengths), "overlap": self.overlap,
                "conditioning": self.conditioning, "continuing": self.continuing}


def cut_into_windows(frames: int, window: int, overlap: int, conditioning: str, continuing: bool = False) -> Windows:
    """`frames` new frames in windows of `window` frames (4k+1), each later one starting with the last
    `overlap` frames of the one before; the last only as long as needed, still 4k+1 and at least 5."""
    lengths, covered = [], 0
    while covered < frames:
        held = overlap if lengths or continuing else 0  # frames that come from before
        remaining = frames - covered
        if remaining >= window - held:
            length = window
        else:
            length = max(5, held + remaining + (-(held + remaining - 1)) % 4)
        lengths.append(length)
        covered += length - held
    return Windows(tuple(lengths), overlap, conditioning, frames, continuing)


def max_video_seconds() -> float:
    """The longest video a request may ask for (config.json `max_video_seconds`, default 60)."""
    from wan_studio.settings import load_settings

    return load_settings().max_video_seconds


@dataclass
class LongVideoRequest(GenerationRequest):
    long_video: ClassVar[bool] = True
    window_conditioning: ClassVar[str] = FRAMES  # how a window continues from the one before (see above)

    window_overlap: int | None = request_field(
        label="Window overlap (frames)", bounds=(1, 41, 4),
        help="a video past the checkpoint's length is made in windows; each continues from this many frames "
             "of the one before (T2V/TI2V: 4k+1, default 5; I2V/FLF2V: 1, the last frame as the next start image)")
    color_correction: float | None = request_field(
        label="Colour correction between windows", bounds=(0.0, 1.0, 0.05),
        help="0-1: how far each later window's colours are pulled toward the first's (default 0.5)")
    continue_from: str | None = request_field(
        label="Continue this video", file="video", page=False,
        help="Extend: a video (a result) to continue; `frames` are the frames added after it")

    def is_long(self, record: Checkpoint | None = None) -> bool:
        record = record or self.checkpoint
        if self.continue_from:
            return True  # Extend: windows that follow the given video
        return self.frames is not None and is_whole_number(self.frames) and self.frames > record.frames_max

    def _read_continuation(self, record: Checkpoint, inputs: InputFacts) -> None:
        """Extend: the video to continue must be a video; its length counts toward the longest."""
        if not self.continue_from:
            return
        info = inputs.video_info("continue_from", self.continue_from)
        self._continued_frames = max(1, round(info.duration_s * record.fps))
        self._continued_size = (info.width, info.height)
        longest = int(max_video_seconds() * record.fps)
        if self.frames is not None and self._continued_frames + self.frames > longest:
            raise RequestError("frames", f"The video to continue is {info.duration_s:.1f} s; with {self.frames} more "
                                         f"frames it would pass the studio's longest video "
                                         f"({max_video_seconds():g} s at {record.fps} fps: {longest} frames). "
                                         f"Add at most "
                                         f"{max(0, longest - self._continued_frames)}.")

    def _read_inputs(self, record: Checkpoint, inputs: InputFacts) -> None:
        self._read_continuation(record, inputs)

    def _suggested_size(self, record: Checkpoint) -> tuple[int, int]:
        if self.continue_from:
            from wan_studio.requests.inputs import size_from

            return size_from(record, *self._continued_size)
        return super()._suggested_size(record)

    def windows(self, record: Checkpoint | None = None) -> Windows | None:
        """The windows of a request longer than the checkpoint makes at once (each of its native
        length, the last only as long as needed); None for one that fits in one pass."""
        record = record or self.checkpoint
        if not self.is_long(record):
            return None
        kind = conditioning_of(self)
        overlap = self.window_overlap if self.window_overlap is not None else DEFAULT_OVERLAP[kind]
        return cut_into_windows(self.frames, record.frames_window, overlap, kind, bool(self.continue_from))

    def _check_frames(self, record: Checkpoint) -> None:
        if self.continue_from and (not is_whole_number(self.frames) or self.frames < 1):
            raise RequestError("frames", f"Extend adds frames after the video: at least 1; got {self.frames!r}.")
        longest = int(max_video_seconds() * record.fps)
        if is_whole_number(self.frames) and not self.continue_from and \
                not record.frames_min <= self.frames <= longest:  # one range, low and high, as the page shows it
            raise RequestError("frames", f"Frames must be between {record.frames_min} and {longest} "
                                         f"({max_video_seconds():g} s at {record.fps} fps, the studio's longest "
                                         f"video); got {self.frames}.")
        if not self.is_long(record):
            super()._check_frames(record)
            self._check_window_fields(record, long=False)
            return
        # any count: the windows are 4k+1 each and the last is cut to the frames asked for
        self._check_window_fields(record, long=True)

    def _check_window_fields(self, record: Checkpoint, long: bool) -> None:
        if self.color_correction is not None:
            self._check_range("color_correction", self.color_correction, (0.0, 1.0), "Colour correction")
        overlap = self.window_overlap
        if overlap is None:
            return
        window = record.frames_window
        if not is_whole_number(overlap) or overlap < 1:
            raise RequestError("window_overlap", f"The window overlap must be a whole number of frames, at least 1; "
                                                 f"got {overlap!r}.")
        if conditioning_of(self) in (FRAMES, VACE_FRAMES):
            if overlap >= window:
                raise RequestError("window_overlap", f"The window overlap must be shorter than the window "
                                                     f"({window} frames for {record.name}); got {overlap}.")
            if conditioning_of(self) == FRAMES and (overlap - 1) % 4:
                below = (overlap - 1) // 4 * 4 + 1
                raise RequestError("window_overlap", f"The window overlap must be of the form 4k+1 (whole latents); "
                                                     f"got {overlap}, nearest legal: {below} or {below + 4}.")
        elif overlap != 1:
            raise RequestError("window_overlap", f"{self.mode.upper()} continues each window from one frame (the last, "
                                                 f"as the next start image); the overlap must be 1, got {overlap}.")
