"""Image to video: the video starts from the input image; the size follows it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from wan_studio.catalog import Checkpoint
from wan_studio.errors import RequestError
from wan_studio.memory.step_cache import SKIP_BLOCKS
from wan_studio.requests.fields import request_field
from wan_studio.requests.inputs import size_from
from wan_studio.requests.long_video import LAST_FRAME, LongVideoRequest
from wan_studio.requests.modes import ExampleFile, ModeInfo, Placement, register_mode
from wan_studio.requests.prepared import InputFacts


@register_mode
@dataclass
class I2VRequest(LongVideoRequest):
    mode: ClassVar[str] = "i2v"
    mode_info: ClassVar[ModeInfo] = ModeInfo(
        label="Image to video", short="I2V", words="Image → Video", order=20, prompt_label="Motion prompt",
        placeholder="Slow zoom in, leaves rustling in the wind", size_from_input=True,
        examples=({"prompt": "Slow zoom in, the sun sinks below the horizon", "image": ExampleFile("sunset")},
                  {"prompt": "Waves roll gently, camera pans right", "image": ExampleFile("sea")},
                  {"prompt": "The ball bounces once and rolls away", "image": ExampleFile("field")}),
        placement={"image": Placement(frame_picker=True)},  # or any frame of a video
        send_to="image", extendable=True, parallel=True, step_cache=SKIP_BLOCKS,
    )
    window_conditioning: ClassVar[str] = LAST_FRAME  # each window starts from the last frame before it

    image: str | None = request_field(label="Source image", file="image", help="the picture the video starts from")

    def _check_fields(self, record: Checkpoint) -> None:
        if not self.image:
            raise RequestError("image", "Image to video needs an input image: the picture the video starts from.")

    def _read_inputs(self, record: Checkpoint, inputs: InputFacts) -> None:
        self._read_continuation(record, inputs)
        self._image_size = inputs.image_size("image", self.image)

    def _suggested_size(self, record: Checkpoint) -> tuple[int, int]:
        if self.continue_from:
            return super()._suggested_size(record)
        return size_from(record, *self._image_size)
