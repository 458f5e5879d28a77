"""Speech to video: a reference image speaks or sings along to an audio file."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from wan_studio import media
from wan_studio.catalog import S2V_FIRST_CLIP_DROP, Checkpoint
from wan_studio.errors import RequestError
from wan_studio.requests.base import GenerationRequest
from wan_studio.requests.fields import request_field
from wan_studio.requests.inputs import native_area
from wan_studio.requests.prepared import InputFacts


S2V_MIN_AUDIO_S = 0.5
S2V_RESOLUTIONS = ("480p", "720p")


@dataclass
class S2VRequest(GenerationRequest):
    """Speech to video (Wan 2.2 S2V-14B): a reference image speaks or sings along to an audio file,
    optionally following a pose video. The output is as long as the audio at the model's 16 fps
    (`frames`, derived from the audio; a smaller value keeps only the start), made clip after
    clip of `clip_frames` frames, each continuing from the last frames of the one before."""

    mode: ClassVar[str] = "s2v"

    image: str | None = request_field(label="Reference character", file="image", help="the person who speaks or sings")
    audio: str | None = request_field(label="Driving audio", file="audio",
                                      help="the speech or song (any format ffmpeg reads); the video is as long as it")
    pose_video: str | None = request_field(label="Optional pose video (else the audio alone drives the motion)",
                                           file="video", help="optional video whose pose drives the body")
    clip_frames: int | None = request_field(label="Clip length", page=False, help="frames per clip (a multiple of 4; 80 on S2V-14B)")
    resolution: str = request_field("480p", label="Resolution", choices=S2V_RESOLUTIONS, page=False, help="area bucket: 480p or 720p; the aspect follows the image")

    def _check_fields(self, record: Checkpoint) -> None:
        if not self.image:
            raise RequestError("image", "Speech to video needs a reference image: the person (or character) who speaks.")
        if not self.audio:
            raise RequestError("audio", "Speech to video needs an audio file: the speech or song that drives the video.")
        if self.clip_frames is None:
            self.clip_frames = record.frames_default
        clip = self.clip_frames
        if not isinstance(clip, int) or isinstance(clip, bool) or clip < 8 or clip % 4 or clip > record.frames_max:
            raise RequestError(
                "clip_frames", f"Clip length must be a multiple of 4 between 8 and {record.frames_max} frames; got {clip!r}.")

    def _read_inputs(self, record: Checkpoint, inputs: InputFacts) -> None:
        from wan_studio import catalog

        self._image_size = inputs.image_size("image", self.image)
        self._audio_s = inputs.audio_seconds("audio", self.audio)
        name = Path(self.audio).name
        if self._audio_s < S2V_MIN_AUDIO_S:
            raise RequestError("audio", f"The audio {name} is {self._audio_s:.2f} s long; S2V needs at least {S2V_MIN_AUDIO_S} s.")
        longest = catalog.raw_record(record.id).get("s2v", {}).get("max_audio_s", 300)
        if self._audio_s > longest:
            raise RequestError(
                "audio", f"The audio {name} is {self._audio_s:.1f} s long; {record.name} takes at most {longest} s. "
                "Cut it into parts and make one video per part.",
            )
        if self.pose_video:
            inputs.video_info("pose_video", self.pose_video)

    def _suggested_size(self, record: Checkpoint) -> tuple[int, int]:
        # 480p: the checkpoint's default area; 720p: its largest; at the image's aspect ratio
        areas = sorted(w * h for w, h in record.sizes)
        area = native_area(record) if self.resolution == "480p" else areas[-1]
        return media.fit_size(*self._image_size, area, record.spatial_granularity)

    def _suggested_frames(self, record: Checkpoint) -> int:
        return self.audio_frames

    def _check_frames_shape(self, record: Checkpoint) -> None:
        if not isinstance(self.frames, int) or isinstance(self.frames, bool) or self.frames < 1:
            raise RequestError("frames", f"Frames must be a whole number of at least 1; got {self.frames!r}. "
                               "Leave it empty to follow the audio.")

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
        return max(1, math.ceil(self._read_fact("_audio_s", "the audio's length") * self.checkpoint.fps - 1e-6))

    @property
    def audio_duration_s(self) -> float:
        return self._read_fact("_audio_s", "the audio's length")

    @property
    def clips(self) -> int:
        """Clips the pipeline runs (each `clip_frames` long; the first loses a few frames)."""
        return max(1, math.ceil((self.frames + S2V_FIRST_CLIP_DROP) / self.clip_frames))
