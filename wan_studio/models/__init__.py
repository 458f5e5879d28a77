"""A checkpoint's weights on this machine: Tiny records are built locally once (models.tiny) in the
tiny-models folder; real ones are found or fetched from the Hugging Face Hub (models.hub).

Also the classes of pipelines that are ours rather than diffusers' (looked up by name).
"""

from __future__ import annotations

import math
import re
import threading
from functools import lru_cache
from pathlib import Path

from wan_studio.catalog import Checkpoint
from wan_studio.models import hub
from wan_studio.models.hub import download_command, needed_files  # noqa: F401  (part of this module's API)
from wan_studio.settings import Settings, load_settings

# pipeline classes of our own (not in diffusers): class name -> module
OWN_PIPELINES = {"WanS2VPipeline": "wan_studio.models.s2v_pipeline"}

_lock = threading.Lock()


def find_local(record: Checkpoint, settings: Settings | None = None) -> Path | None:
    """The folder holding the checkpoint if it is already on this machine; never touches the network."""
    settings = settings or load_settings()
    if record.is_tiny:
        from wan_studio.models import tiny

        folder = tiny.tiny_model_dir(record, settings.tiny_models_dir)
        return folder if tiny.is_built(folder) else None
    return hub.find_local(record, settings)


def resolve(record: Checkpoint, settings: Settings | None = None, allow_download: bool | None = None) -> Path:
    """The local folder of a checkpoint, building (Tiny) or downloading it when needed and allowed."""
    settings = settings or load_settings()
    if record.is_tiny:
        from wan_studio.models import tiny

        with _lock:
            return tiny.ensure_tiny_model(record, settings.tiny_models_dir)
    return hub.resolve(record, settings, allow_download)


def download(record: Checkpoint, settings: Settings | None = None) -> Path:
    """Fetch the files the pipeline needs (a Tiny model is built instead)."""
    if record.is_tiny:
        return resolve(record, settings)
    return hub.download(record, settings)


def local_state(record: Checkpoint, settings: Settings | None = None) -> str:
    if record.is_tiny:
        return "built-in (random weights)"
    folder = find_local(record, settings)
    return f"downloaded ({folder})" if folder else f"not downloaded (about {hub.size_text(record.download_gb)})"


# -- prompt length ------------------------------------------------------------------------------
_CJK = re.compile(r"[\u3000-\u9fff\uac00-\ud7af\uf900-\ufaff]")


@lru_cache(maxsize=8)
def _tokenizer_for(folder: str | None, tiny: bool):
    if tiny:
        from wan_studio.models.tiny import make_tokenizer

        return make_tokenizer()
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder, subfolder="tokenizer")


def count_tokens(record: Checkpoint, text: str) -> int:
    """Tokens the model's tokenizer makes of `text` (with the end token).

    Exact when the tokenizer is on disk; otherwise a conservative estimate (one token per CJK
    character, one per 3.5 other characters) so validation never needs the network. Remembered
    per (checkpoint, text): the page rebuilds its request on every slider move.
    """
    return _count_tokens(record.id, text)


@lru_cache(maxsize=256)
def _count_tokens(model_id: str, text: str) -> int:
    from wan_studio import catalog
    from wan_studio.backend import import_ml

    record = catalog.get(model_id)

    import_ml()
    if record.is_tiny:
        return len(_tokenizer_for(None, True)(text).input_ids)
    folder = find_local(record)
    if folder is not None and (folder / "tokenizer").is_dir():
        return len(_tokenizer_for(str(folder), False)(text).input_ids)
    cjk = len(_CJK.findall(text))
    return cjk + math.ceil((len(text) - cjk) / 3.5) + 1
