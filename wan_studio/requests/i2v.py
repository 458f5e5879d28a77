"""Image to video: the video starts from the input image; the size follows it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from wan_studio.media import facts
from wan_studio.catalog import Checkpoint
from wan_studio.errors import RequestError
from wan_studio.requests.base import GenerationRequest
from wan_studio.requests.fields import request_field
from wan_studio.requests.inputs import size_from


@dataclass
class I2VRequest(GenerationRequest):
    mode: ClassVar[str] = "i2v"

    image: str | None = request_field(label="Source image", file="image", help="the picture the video starts from")

    def _check_inputs(self, record: Checkpoint) -> None:
        if not self.image:
            raise RequestError("image", "Image to video needs an input image: the picture the video starts from.")
        self._image_size = facts.image_size(self.image, "image")

    def _suggested_size(self, record: Checkpoint) -> tuple[int, int]:
        return size_from(record, *self._image_size)
