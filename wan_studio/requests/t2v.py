"""Text to video: the prompt alone."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from wan_studio.requests.long_video import LongVideoRequest


@dataclass
class T2VRequest(LongVideoRequest):
    mode: ClassVar[str] = "t2v"
