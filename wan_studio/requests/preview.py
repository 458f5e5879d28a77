"""Preview: one frame from a T2V checkpoint, saved as a PNG."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from wan_studio.catalog import Checkpoint
from wan_studio.errors import RequestError
from wan_studio.requests.base import GenerationRequest


@dataclass
class PreviewRequest(GenerationRequest):
    """One frame from a T2V-capable checkpoint, saved as a PNG: a quick look before a full run."""

    mode: ClassVar[str] = "preview"

    def _suggested_frames(self, record: Checkpoint) -> int:
        return 1

    def _default_cache(self) -> str:
        return "balanced"  # a quick look: worth the small difference

    def _check_frames(self, record: Checkpoint) -> None:
        if self.frames != 1:
            raise RequestError("frames", f"A preview is one frame; got frames={self.frames!r}.")
