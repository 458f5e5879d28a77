"""Wan 2.2 TI2V-5B: text to video, with an optional first image."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from wan_studio.catalog import Checkpoint
from wan_studio.memory.step_cache import SKIP_BLOCKS
from wan_studio.requests.fields import request_field
from wan_studio.requests.i2v import I2VRequest
from wan_studio.requests.long_video import FRAMES
from wan_studio.requests.modes import ExampleFile, ModeInfo, Placement, register_mode
from wan_studio.requests.prepared import InputFacts


@register_mode
@dataclass
class TI2VRequest(I2VRequest):
    """Wan 2.2 TI2V-5B: text to video, or text + image when an image is given."""

    mode: ClassVar[str] = "ti2v"
    mode_info: ClassVar[ModeInfo] = ModeInfo(
        label="Text+image to video", short="TI2V", words="Text + image → Video", order=30,
        placeholder="A paper boat drifts down a rainy street", size_from_input=True,
        note="The image is optional: without one TI2V is text to video.",
        examples=({"prompt": "A paper boat drifts down a rainy street", "image": ExampleFile("sunset")},
                  {"prompt": "Clouds race over the hills, timelapse", "image": ExampleFile("sea")},
                  {"prompt": "The lantern flickers and sways", "image": ExampleFile("field")}),
        placement={"image": Placement(frame_picker=True)},  # or any frame of a video
        extendable=True, parallel=True, step_cache=SKIP_BLOCKS, compiles_at_start=True,
    )
    window_conditioning: ClassVar[str] = FRAMES  # later windows hold the frames before, through the latents

    image: str | None = request_field(label="Source image (optional)", file="image",
                                      help="optional: without one TI2V is text to video")

    def _check_fields(self, record: Checkpoint) -> None:
        pass  # the image is optional

    def _read_inputs(self, record: Checkpoint, inputs: InputFacts) -> None:
        self._read_continuation(record, inputs)
        self._image_size = inputs.image_size("image", self.image) if self.image else None

    def _suggested_size(self, record: Checkpoint) -> tuple[int, int]:
        if self.continue_from:
            landscape = self._continued_size[0] >= self._continued_size[1]
            return record.default_size if landscape else tuple(reversed(record.default_size))
        if self._image_size is None:
            return record.default_size
        width, height = self._image_size
        return record.default_size if width >= height else tuple(reversed(record.default_size))
