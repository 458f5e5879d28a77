"""Presets as data: the default negative prompt per model family (here); Fast / Quality, the Lightning
LoRA table and the enhancer data are JSON files beside it, read by wan_studio.loras (presets.py and the
LoRA manager) and enhance.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

NEGATIVE_PROMPTS_FILE = Path(__file__).with_name("negative_prompts.json")


@lru_cache(maxsize=1)
def _negative_prompts() -> dict[str, str]:
    return {k: v for k, v in json.loads(NEGATIVE_PROMPTS_FILE.read_text()).items() if not k.startswith("_")}


def default_negative_prompt(family: str = "wan") -> str:
    return _negative_prompts()[family]
