"""Text to video: the prompt alone."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from wan_studio.memory.step_cache import SKIP_BLOCKS
from wan_studio.requests.long_video import LongVideoRequest
from wan_studio.requests.modes import ModeInfo, register_mode


@register_mode
@dataclass
class T2VRequest(LongVideoRequest):
    mode: ClassVar[str] = "t2v"
    mode_info: ClassVar[ModeInfo] = ModeInfo(
        label="Text to video", short="T2V", words="Text → Video", order=10,
        placeholder="A red fox runs through fresh snow at dawn, tracking shot",
        examples=({"prompt": "A red fox runs through fresh snow at dawn, tracking shot"},
                  {"prompt": "Macro shot of a dew drop sliding down a leaf, soft morning light"},
                  {"prompt": "A neon-lit city street in the rain at night, slow dolly forward"}),
        extendable=True, parallel=True, step_cache=SKIP_BLOCKS, compiles_at_start=True,
    )
