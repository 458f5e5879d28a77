"""Video to video: restyle an input video."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from wan_studio.catalog import Checkpoint
from wan_studio.errors import RequestError
from wan_studio.memory.step_cache import no_step_cache
from wan_studio.requests.fields import request_field
from wan_studio.requests.inputs import VideoInput, size_from
from wan_studio.requests.long_video import LongVideoRequest, max_video_seconds
from wan_studio.requests.modes import ExampleFile, ModeInfo, Placement, extendable_modes, register_mode
from wan_studio.requests.prepared import InputFacts


@register_mode
@dataclass
class V2VRequest(VideoInput, LongVideoRequest):
    mode: ClassVar[str] = "v2v"
    mode_info: ClassVar[ModeInfo] = ModeInfo(
        label="Video to video (restyle)", short="V2V", words="Video → Restyled video",
        order=50, prompt_label="Prompt (the new look)",
        placeholder="The same scene as a watercolour painting", size_from_input=True, frames_from_input=True,
        examples=({"prompt": "The same scene as a watercolour painting", "video": ExampleFile("clip")},
                  {"prompt": "Turn it into a pencil sketch", "video": ExampleFile("bars")},
                  {"prompt": "Cyberpunk neon colours", "video": ExampleFile("clip")}),
        placement={"video": Placement(trim=True)},  # a part of it: cut first
        send_to="video", parallel=True,
        step_cache=no_step_cache("diffusers' V2V pipeline runs its cond and uncond passes without cache contexts"),
    )

    video: str | None = request_field(label="Source video", file="video", help="the video to restyle")
    strength: float = request_field(0.8, label="Strength (how much is repainted)", bounds=(0.05, 1.0, 0.05),
                                    help="above 0 and at most 1")

    def _check_fields(self, record: Checkpoint) -> None:
        self._require_video("video")
        if isinstance(self.strength, bool) or not isinstance(self.strength, (int, float)) or not 0 < self.strength <= 1:
            raise RequestError(
                "strength",
                "Strength must be a number above 0 and at most 1 (how much of the input is repainted); "
                f"got {self.strength!r}.",
            )
        if self.continue_from:
            raise RequestError("continue_from", f"V2V follows its input video; Extend continues {extendable_modes()} "
                                                "videos.")

    def _read_inputs(self, record: Checkpoint, inputs: InputFacts) -> None:
        self._info = inputs.video_info("video", self.video)
        self._check_frames_fit("video", self._info, record)

    def _suggested_size(self, record: Checkpoint) -> tuple[int, int]:
        return size_from(record, self._info.width, self._info.height)

    def _suggested_frames(self, record: Checkpoint) -> int:
        available = self._available_frames(self._info, record)
        if available > record.frames_max:  # all of it, in windows
            return min(available, int(max_video_seconds() * record.fps))
        return self._frames_from_video("video", self._info, record)
