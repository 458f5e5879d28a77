"""First and last frame to video."""

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
class FLF2VRequest(LongVideoRequest):
    mode: ClassVar[str] = "flf2v"
    mode_info: ClassVar[ModeInfo] = ModeInfo(
        label="First-last frame to video", short="FLF2V", words="First + last frame → Video",
        order=40, prompt_label="Transition prompt",
        placeholder="A penguin spreads its wings and takes flight", size_from_input=True,
        note="The output takes the start frame's aspect ratio.",
        # the end frame is uploaded, or drawn by a one-frame preview run of a T2V checkpoint; either frame
        # can also be any frame of a video
        placement={"image": Placement(beside="last_image", end_frame_generator=True, frame_picker=True),
                   "last_image": Placement(frame_picker=True)},
        examples=({"prompt": "The sky turns from day to night", "image": ExampleFile("sunset"),
                   "last_image": ExampleFile("sea")},
                  {"prompt": "The ball rolls across the frame", "image": ExampleFile("sea"),
                   "last_image": ExampleFile("field")},
                  {"prompt": "A slow cross-fade of colours", "image": ExampleFile("field"),
                   "last_image": ExampleFile("sunset")}),
        send_to="image", parallel=True, step_cache=SKIP_BLOCKS,
    )
    window_conditioning: ClassVar[str] = LAST_FRAME  # each window starts from the last frame before it

    image: str | None = request_field(label="Start frame", file="image", help="the first frame")
    last_image: str | None = request_field(label="End frame", file="image", help="the last frame")

    def _check_fields(self, record: Checkpoint) -> None:
        if not self.image:
            raise RequestError("image", "First-last frame to video needs a first frame image.")
        if not self.last_image:
            raise RequestError("last_image", "First-last frame to video needs a last frame image.")
        if self.continue_from:
            raise RequestError("continue_from", "An FLF2V video ends on its last image, so it is not extended; "
                                                "extend it with an I2V checkpoint (it continues from the last frame).")

    def _read_inputs(self, record: Checkpoint, inputs: InputFacts) -> None:
        self._image_size = inputs.image_size("image", self.image)
        inputs.image_size("last_image", self.last_image)

    def _suggested_size(self, record: Checkpoint) -> tuple[int, int]:
        # the output takes the first frame's aspect ratio; the last frame is centre-cropped to it
        return size_from(record, *self._image_size)
