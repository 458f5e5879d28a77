"""What the modes with input files share: output size from an input's aspect ratio at the
checkpoint's native area, and frame counts from an input video at the checkpoint's fps (trimmed to
a legal 4k+1 count)."""

from __future__ import annotations

from pathlib import Path

from wan_studio import media
from wan_studio.catalog import Checkpoint
from wan_studio.errors import RequestError


def native_area(record: Checkpoint) -> int:
    width, height = record.default_size
    return width * height


def size_from(record: Checkpoint, width: int, height: int) -> tuple[int, int]:
    return media.fit_size(width, height, native_area(record), record.spatial_granularity)


def _seconds(frames: int, fps: float) -> str:
    return f"{frames / fps:.2f} s"


class VideoInput:
    """Mixin: a source video whose length at the model's fps bounds the frame count."""

    def _require_video(self, name: str) -> None:
        if not getattr(self, name):
            raise RequestError(name, f"{self.mode.upper()} needs an input video ({name.replace('_', ' ')}).")

    @staticmethod
    def _available_frames(info: media.VideoInfo, record: Checkpoint) -> int:
        if info.frames and abs(info.fps - record.fps) < 0.01:
            # at the model's own rate every decoded frame is one of ours (the container's duration is
            # rounded to 10 ms: 9 frames at 16 fps read as 0.56 s, 8.96 frames)
            return info.frames
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


def looks_like_video(path: str) -> bool:
    return Path(path).suffix.lower() in media.VIDEO_SUFFIXES
