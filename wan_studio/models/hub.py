"""Where a real checkpoint's weights are on this machine, and fetching them from the Hub.

Resolution order (Tiny records are built locally instead: wan_studio.models):
1. An explicit folder for that model id (`model_paths` in config.json).
2. The models folder: `<models_dir>/<repo name>` or `<models_dir>/<model id>`, in diffusers layout.
3. The Hugging Face cache (`snapshot_download(..., local_files_only=True)`), restricted to the files
   the pipeline needs.
4. A download from the Hub when allowed. When that fails the user gets one message naming the
   model, its download size and the exact command that fetches it.
"""

from __future__ import annotations

import socket
import urllib.parse
import urllib.request
from pathlib import Path

from wan_studio.catalog import Annotator, Checkpoint, raw_record
from wan_studio.errors import ModelNotAvailable
from wan_studio.settings import Settings, load_settings


def needed_files(record: Checkpoint | Annotator) -> list[str]:
    """allow_patterns for snapshot_download: the pipeline's components and nothing else."""
    own = list(record.files) if isinstance(record, Annotator) else _original_layout_files(record)
    if own:
        return own
    folders = sorted(set(record.components) | set(record.shared))
    return ["model_index.json", "scheduler/*"] + [f"{name}/*" for name in folders]


def _original_layout_files(record: Checkpoint) -> list[str] | None:
    """Files of a checkpoint kept in its original (non-diffusers) layout, as listed in the catalog (S2V)."""
    raw = raw_record(record.id)
    return list(raw["files"]) if raw.get("layout") == "original" else None


def _is_model_folder(folder: Path, record: Checkpoint | Annotator) -> bool:
    if isinstance(record, Annotator) and record.files:  # a helper model's own files (RIFE: flownet.pkl alone)
        return all((folder / name).is_file() for name in record.files)
    if isinstance(record, Annotator) or _original_layout_files(record):
        return (folder / "config.json").is_file()
    return (folder / "model_index.json").is_file()


def size_text(gb: float) -> str:
    """A download's size the same way everywhere (the Settings table, messages, the CLI)."""
    return f"{gb:.1f} GB" if gb >= 1 else f"{gb * 1000:.0f} MB"


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
    local = find_local(record, settings)
    if local is not None:
        return local
    if allow_download is None:
        allow_download = settings.auto_download
    if not allow_download:
        raise ModelNotAvailable(_missing_message(record, settings, "automatic download is off"))
    return download(record, settings)


def fail_if_unfetchable(record: Checkpoint, settings: Settings | None = None) -> None:
    """ModelNotAvailable, saying why and how to download it, for a model that is not on this machine and
    certainly cannot be fetched now (automatic download off, the Hub offline, or its address refused);
    nothing for one that is here or may be downloaded. It loads no ML library, so a job for such a model
    fails without waiting for torch, diffusers and transformers to load (about 4 s)."""
    from huggingface_hub import constants

    settings = settings or load_settings()
    if record.is_tiny or find_local(record, settings) is not None:
        return
    if not settings.auto_download or constants.HF_HUB_OFFLINE or unreachable_reason() is not None:
        resolve(record, settings)  # raises, with the reason and the command


def unreachable_reason() -> str | None:
    """Why the Hub's address certainly cannot be reached from here (no such host, connection refused),
    found in one quick try; None when it may be reachable. huggingface_hub retries such a failure for
    about 23 s before it gives up, which a user with no network should not wait for. Behind a proxy
    only the proxy can tell, so nothing is tried there."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE or urllib.request.getproxies():
        return None
    address = urllib.parse.urlsplit(constants.ENDPOINT)
    port = address.port or (443 if address.scheme == "https" else 80)
    try:
        socket.create_connection((address.hostname, port), timeout=5).close()
    except (socket.gaierror, ConnectionRefusedError) as exc:
        return f"{address.hostname}:{port} cannot be reached ({type(exc).__name__}: {exc.strerror or exc})"
    except OSError:  # slow or filtered: the library's own retries decide
        return None
    return None


def download(record: Checkpoint, settings: Settings | None = None) -> Path:
    """Fetch the files the pipeline needs into the Hugging Face cache (tqdm progress bars)."""
    settings = settings or load_settings()
    from huggingface_hub import snapshot_download

    reason = unreachable_reason()
    if reason:
        raise ModelNotAvailable(_missing_message(record, settings, f"the Hugging Face Hub is unreachable ({reason})"))
    try:
        return Path(snapshot_download(record.repo_id, revision=record.revision, allow_patterns=needed_files(record)))
    except Exception as exc:  # offline mode, DNS failure, HTTP errors, gated repo: one clear message
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")
        why = f"the Hugging Face Hub is unreachable ({reason})"
        raise ModelNotAvailable(_missing_message(record, settings, why)) from exc


def _missing_message(record: Checkpoint, settings: Settings, why: str) -> str:
    target = settings.models_dir / record.repo_id.split("/")[-1]
    return (
        f"{record.name} ({record.repo_id}, about {size_text(record.download_gb)}) is not on this machine and "
        f"could not be fetched: {why}.\n"
        f"Download it on a connected machine with:\n    {download_command(record)}\n"
        f"or put its {'transformers' if isinstance(record, Annotator) else 'diffusers'} folder at {target}."
    )


def hub_file(source: str, what: str, allow_download: bool = False) -> Path:
    """One file named `hf://owner/repo/path/file` (a GGUF transformer, an upscaler), from the Hugging
    Face cache or, when allowed, the Hub; else the command that fetches it."""
    parts = source[len("hf://"):].split("/")
    if len(parts) < 3 or not all(parts):
        raise ModelNotAvailable(f"{source} is not a Hub file address: use hf://owner/repo/path/file.")
    repo, filename = "/".join(parts[:2]), "/".join(parts[2:])
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(hf_hub_download(repo, filename, local_files_only=not allow_download))
    except LocalEntryNotFoundError:
        raise ModelNotAvailable(
            f"The {what} {source} is not in the Hugging Face cache and cannot be downloaded here. Download it "
            f"with `hf download {repo} {filename}` on a machine with internet access."
        ) from None
