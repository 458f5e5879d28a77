"""Text to video: the prompt alone."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from wan_studio.requests.base import GenerationRequest


@dataclass
class T2VRequest(GenerationRequest):
    mode: ClassVar[str] = "t2v"
