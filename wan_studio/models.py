"""Where a checkpoint's weights are, and getting them there.

Resolution order for a catalog record:
1. Tiny records: built locally once (wan_studio.tiny) in the tiny-models folder.
2. An explicit folder for that model id (`model_paths` in config.json).
3. The models folder: `<models_dir>/<repo name>` or `<models_dir>/<model id>`, in diffusers layout.
4. The Hugging Face cache (`snapshot_download(..., local_files_only=True)`), restricted to the files
   the pipeline needs.
5. A download from the Hub when allowed. When that fails the user gets one message naming the
   model, its download size and the exact command that fetches it.
"""

from __future__ import annotations

import math
import re
import threading
from functools import lru_cache
from pathlib import Path

from wan_studio.catalog import Checkpoint
from wan_studio.errors import ModelNotAvailable
from wan_studio.settings import Settings, load_settings

_lock = threading.Lock()


def needed_files(record: Checkpoint) -> list[str]:
    """allow_patterns for snapshot_download: the pipeline's components and nothing else."""
    own = _original_layout_files(record)
    if own:
        return own
    folders = sorted(set(record.components) | set(record.shared))
    return ["model_index.json", "scheduler/*"] + [f"{name}/*" for name in folders]


def _original_layout_files(record: Checkpoint) -> list[str] | None:
    """Files of a checkpoint kept in its original (non-diffusers) layout, as listed in the catalog (S2V)."""
    from wan_studio.catalog import raw_record

    raw = raw_record(record.id)
    return list(raw["files"]) if raw.get("layout") == "original" else None


def _is_model_folder(folder: Path, record: Checkpoint) -> bool:
    if _original_layout_files(record):
        return (folder / "config.json").is_file()
    return (folder / "model_index.json").is_file()


def download_command(record: Checkpoint) -> str:
    return f"python -m wan_studio download {record.id}"


def _candidate_folders(record: Checkpoint, settings: Settings) -> list[Path]:
    explicit = settings.model_paths.get(record.id)
    folders = [Path(explicit).expanduser()] if explicit else []
    if record.repo_id:
        folders.append(settings.models_dir / record.repo_id.split("/")[-1])
    folders.append(settings.models_dir / record.id)
    return folders


def find_local(record: Checkpoint, settings: Settings | None = None) -> Path | None:
    """The folder holding the checkpoint if it is already on this machine; never touches the network."""
    settings = settings or load_settings()
    if record.is_tiny:
        from wan_studio import tiny

        folder = tiny.tiny_model_dir(record, settings.tiny_models_dir)
        return folder if tiny.is_built(folder) else None
    for folder in _candidate_folders(record, settings):
        if _is_model_folder(folder, record):
            return folder
    return _from_hf_cache(record)


def _from_hf_cache(record: Checkpoint) -> Path | None:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        path = Path(snapshot_download(
            record.repo_id, revision=record.revision, allow_patterns=needed_files(record), local_files_only=True
        ))
    except (LocalEntryNotFoundError, OSError, ValueError):
        return None
    return path if _is_model_folder(path, record) else None


def resolve(record: Checkpoint, settings: Settings | None = None, allow_download: bool | None = None) -> Path:
    """The local folder of a checkpoint, building (Tiny) or downloading it when needed and allowed."""
    settings = settings or load_settings()
    if record.is_tiny:
        from wan_studio import tiny

        with _lock:
            return tiny.ensure_tiny_model(record, settings.tiny_models_dir)
    local = find_local(record, settings)
    if local is not None:
        return local
    if allow_download is None:
        allow_download = settings.auto_download
    if not allow_download:
        raise ModelNotAvailable(_missing_message(record, settings, "automatic download is off"))
    return download(record, settings)


def download(record: Checkpoint, settings: Settings | None = None) -> Path:
    """Fetch the files the pipeline needs into the Hugging Face cache (tqdm progress bars)."""
    settings = settings or load_settings()
    if record.is_tiny:
        return resolve(record, settings)
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(record.repo_id, revision=record.revision, allow_patterns=needed_files(record)))
    except Exception as exc:  # offline mode, DNS failure, HTTP errors, gated repo: one clear message
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")
        raise ModelNotAvailable(_missing_message(record, settings, f"the Hugging Face Hub is unreachable ({reason})")) from exc


def _missing_message(record: Checkpoint, settings: Settings, why: str) -> str:
    target = settings.models_dir / record.repo_id.split("/")[-1]
    return (
        f"{record.name} ({record.repo_id}, about {record.download_gb:.0f} GB) is not on this machine and "
        f"could not be fetched: {why}.\n"
        f"Download it on a connected machine with:\n    {download_command(record)}\n"
        f"or put its diffusers folder at {target}."
    )


def local_state(record: Checkpoint, settings: Settings | None = None) -> str:
    if record.is_tiny:
        return "built-in (random weights)"
    folder = find_local(record, settings)
    return f"downloaded ({folder})" if folder else f"not downloaded (about {record.download_gb:.0f} GB)"


# -- prompt length ------------------------------------------------------------------------------
_CJK = re.compile(r"[\u3000-\u9fff\uac00-\ud7af\uf900-\ufaff]")


@lru_cache(maxsize=8)
def _tokenizer_for(folder: str | None, tiny: bool):
    if tiny:
        from wan_studio.tiny import make_tokenizer

        return make_tokenizer()
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder, subfolder="tokenizer")


def count_tokens(record: Checkpoint, text: str) -> int:
    """Tokens the model's tokenizer makes of `text` (with the end token).

    Exact when the tokenizer is on disk; otherwise a conservative estimate (one token per CJK
    character, one per 3.5 other characters) so validation never needs the network.
    """
    from wan_studio.backend import import_ml

    import_ml()
    if record.is_tiny:
        return len(_tokenizer_for(None, True)(text).input_ids)
    folder = find_local(record)
    if folder is not None and (folder / "tokenizer").is_dir():
        return len(_tokenizer_for(str(folder), False)(text).input_ids)
    cjk = len(_CJK.findall(text))
    return cjk + math.ceil((len(text) - cjk) / 3.5) + 1
