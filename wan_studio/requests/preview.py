"""Preview: one frame from a T2V checkpoint, saved as a PNG."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from wan_studio.catalog import Checkpoint
from wan_studio.errors import RequestError
from wan_studio.memory.step_cache import SKIP_BLOCKS
from wan_studio.requests.base import GenerationRequest
from wan_studio.requests.modes import ModeInfo, register_mode


@register_mode
@dataclass
class PreviewRequest(GenerationRequest):
    """One frame from a T2V-capable checkpoint, saved as a PNG: a quick look before a full run."""

    mode: ClassVar[str] = "preview"
    # no page of its own: FLF2V's "Generate the end frame" runs it
    mode_info: ClassVar[ModeInfo] = ModeInfo(label="One-frame preview", short="Preview", order=90, sidebar=False,
                                             parallel=True, step_cache=SKIP_BLOCKS)

    def _suggested_frames(self, record: Checkpoint) -> int:
        return 1

    def _default_cache(self) -> str:
        return "balanced"  # a quick look: worth the small difference

    def _check_frames(self, record: Checkpoint) -> None:
        if self.frames != 1:
            raise RequestError("frames", f"A preview is one frame; got frames={self.frames!r}.")
