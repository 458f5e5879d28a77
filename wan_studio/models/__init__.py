"""A checkpoint's weights on this machine: Tiny records are built locally once (models.tiny) in the
tiny-models folder; real ones are found or fetched from the Hugging Face Hub (models.hub).

Also the classes of pipelines that are ours rather than diffusers' (looked up by name).
"""

from __future__ import annotations

import math
import pickle
import re
import threading
import unicodedata
from functools import lru_cache
from itertools import groupby
from pathlib import Path

from wan_studio import catalog
from wan_studio.catalog import Checkpoint
from wan_studio.models import hub
from wan_studio.models.hub import download_command, needed_files  # noqa: F401  (part of this module's API)
from wan_studio.settings import Settings, load_settings

# pipeline classes of our own (not in diffusers): class name -> module
OWN_PIPELINES = {"WanS2VPipeline": "wan_studio.models.s2v_pipeline",
                 "WanAnimate2Pipeline": "wan_studio.models.animate2_pipeline"}

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
# letters per token of a word, for the estimate: Latin, Greek and Cyrillic words, and other alphabets'
LETTERS_PER_TOKEN = {"latin": 4, "other": 2}
# scripts written without spaces between words (Thai, Lao, Myanmar, Khmer): one token per character
_UNSPACED = re.compile(r"[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff]")


def pipeline_tokenizer(folder: Path):
    """The tokenizer in a checkpoint folder's `tokenizer/`, loaded once per process for every pipeline.

    UMT5's 256k pieces take seconds to read, and every Wan checkpoint (Tiny ones too) has the same
    files. Only the worker's pipelines use this copy, one job at a time; prompt counting keeps its
    own (`_tokenizer_for`), since a call sets padding and truncation on the shared Rust object.
    """
    from wan_studio.models import tiny

    if tiny.is_built(folder):
        return _tiny_pipeline_tokenizer()
    files = folder / "tokenizer"
    stamp = tuple(sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files.glob("*") if p.is_file()))
    return _pipeline_tokenizer(str(files), stamp)


@lru_cache(maxsize=1)
def _tiny_pipeline_tokenizer():
    """One copy for every Tiny checkpoint: their `tokenizer/` folders all hold make_tokenizer's files.
    Read once (1.7 s), or, where this process read them already (a prompt counted, a Tiny model
    built), that copy pickled and read back (0.65 s; deepcopy takes 1.0 s). A copy per folder, evicted
    as jobs moved between the dozen Tiny models, cost one per switch."""
    from wan_studio.models import tiny

    if tiny.make_tokenizer.cache_info().currsize:
        return pickle.loads(pickle.dumps(tiny.make_tokenizer()))
    return tiny.load_tokenizer()


@lru_cache(maxsize=4)
def _pipeline_tokenizer(folder: str, stamp: tuple):  # stamp: a changed folder is read again
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder)


@lru_cache(maxsize=8)
def _tokenizer_for(folder: str | None, tiny: bool):
    if tiny:
        from wan_studio.models.tiny import make_tokenizer

        return make_tokenizer()
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder, subfolder="tokenizer")


def count_tokens(record: Checkpoint, text: str) -> int:
    """Tokens the model's tokenizer makes of `text` (with the end token).

    Exact when the tokenizer is on disk; otherwise `estimate_tokens`, so validation never needs the
    network. Remembered per (checkpoint, text): the page rebuilds its request on every slider move.
    """
    return _count_tokens(record.id, text)


@lru_cache(maxsize=256)
def _count_tokens(model_id: str, text: str) -> int:
    from wan_studio.backend import import_ml

    record = catalog.get(model_id)

    import_ml()
    if record.is_tiny:
        return len(_tokenizer_for(None, True)(text).input_ids)
    folder = find_local(record)
    if folder is not None and (folder / "tokenizer").is_dir():
        return len(_tokenizer_for(str(folder), False)(text).input_ids)
    return estimate_tokens(text)


def _character_kind(ch: str) -> str:
    if unicodedata.category(ch)[0] in "LM" and not _CJK.match(ch) and not _UNSPACED.match(ch):  # letters, accents
        return "latin" if ord(ch) < 0x530 or 0x1E00 <= ord(ch) < 0x2000 else "other"
    return "space" if ch == " " else "single"


def estimate_tokens(text: str) -> int:
    """At least as many tokens as UMT5-XXL makes of `text` (with the end token), from its characters.

    UMT5's pieces are whole characters (no byte pieces), so one token per character can only
    over-count: that is what a CJK character, digit (UMT5 splits numbers into digits), punctuation
    mark, symbol or emoji costs (and a letter of a script written without spaces), plus one for the
    lone '▁' piece that may stand before it after a space, at the start or at the end. Words are
    cheaper: one token per LETTERS_PER_TOKEN letters, rounded up, and one more for a word outside
    the Latin, Greek and Cyrillic alphabets. tests/test_tokenizer.py checks it against the real
    tokenizer; docs/modes.md says by how much it over-counts.
    """
    count, after_space = 2, False  # the end token, and the '▁' at the start
    for kind, run in groupby(text, _character_kind):
        length = sum(1 for _ in run)
        if kind == "space":
            after_space = True
            continue
        if kind == "single":
            count += length + after_space
        else:
            count += math.ceil(length / LETTERS_PER_TOKEN[kind]) + (kind == "other")
        after_space = False
    return count + after_space  # a trailing space is a '▁' of its own
