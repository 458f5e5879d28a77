"""Settings shared by the app and the CLI: command-line flag, else environment, else config.json.

Relative paths in config.json are relative to the folder config.json lives in, so the studio
finds its outputs wherever it is started from.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from wan_studio.errors import StudioError

REPO_ROOT = Path(__file__).resolve().parent.parent
COMPILE_CHOICES = ("auto", "on", "off")  # the compile setting (memory/compile.py)
ENV_PREFIX = "WAN_STUDIO_"


@dataclass(frozen=True)
class Settings:
    output_dir: Path
    models_dir: Path
    tiny_models_dir: Path
    default_generation: str = "auto"  # "auto" picks Tiny on a machine without a GPU
    auto_download: bool = True
    host: str = "127.0.0.1"
    port: int = 7860
    max_upload: str = "1GB"  # largest file a browser or API client may upload
    multi_user: bool = False  # a shared deployment (a Space): each browser session sees its own jobs
    model_paths: dict = field(default_factory=dict)  # model id -> explicit folder
    # model id -> GGUF file(s) for its transformer(s) (older name)
    transformer_files: dict = field(default_factory=dict)
    # model id -> single files for its transformer(s), text encoder, VAE (models/single_file.py)
    model_files: dict = field(default_factory=dict)
    comfyui_dir: Path | None = None  # a ComfyUI install whose model files Settings offers
    wan2gp_dir: Path | None = None  # a Wan2GP install whose ckpts/ Settings offers
    memory_plan: str = "auto"  # auto | max-speed | balanced | low-vram | minimum, unless a job pins one
    attention: str = "auto"  # auto (the fastest that passes its check) or a backend name, unless a job pins one
    zerogpu_preload: tuple[str, ...] = ()  # model ids loaded at start on a ZeroGPU Space (default: T2V's)
    config_file: Path | None = None
    loras_dir: Path | None = None  # LoRA files by name (None: <models_dir>/../loras)
    enhancer_model: str = ""  # local instruct model (Hub id or folder) for the prompt enhancer
    enhancer_url: str = ""  # OpenAI-compatible endpoint base URL (…/v1) for the prompt enhancer
    enhancer_key: str = ""  # its API key (better given as WAN_STUDIO_ENHANCER_KEY)
    enhancer_endpoint_model: str = ""  # the model name sent to the endpoint
    enhancer_timeout_s: float = 20.0
    max_video_seconds: float = 60.0  # the longest video a request may ask for (made in windows)
    # "0,1,3", "all" or "cpu,cpu": one worker process per device (queue/pool.py); "": one in-process worker
    gpus: str = ""
    # use at most this much of the GPU's memory (GiB; RAM on a machine without one): room left for other
    # programs, or a cluster node's share; 0: all of it
    memory_limit_gb: float = 0.0
    # compile the transformers' repeated blocks: auto (CUDA with Triton; ZeroGPU: compiled blocks, made at
    # start when the catalog names none), on (the CPU too), off
    compile: str = "auto"
    ray_address: str = ""  # a Ray cluster whose workers run the queue's jobs (runtime/cluster.py): host:port or auto


def config_path() -> Path:
    return Path(os.environ.get(ENV_PREFIX + "CONFIG", REPO_ROOT / "config.json"))


def load_settings(**flags) -> Settings:
    """Flags given as keyword arguments (None = not given) win over the environment and the file."""
    path = config_path()
    raw = json.loads(path.read_text()) if path.exists() else {}
    base = path.parent

    def pick(key: str, default=None):
        if flags.get(key) is not None:
            return flags[key]
        env = os.environ.get(ENV_PREFIX + key.upper())
        if env is not None:
            return env
        return raw.get(key, default)

    def folder(key: str, default: str) -> Path:
        value = Path(os.path.expanduser(str(pick(key, default))))
        return value if value.is_absolute() else (base / value)

    return Settings(
        output_dir=folder("output_dir", "outputs"),
        models_dir=folder("models_dir", "models"),
        tiny_models_dir=folder("tiny_models_dir", ".cache/tiny-models"),
        default_generation=str(pick("default_generation", "auto")),
        auto_download=_as_bool(pick("auto_download", True)),
        host=str(pick("host", "127.0.0.1")),
        port=int(pick("port", 7860)),
        max_upload=str(pick("max_upload", "1GB")),
        multi_user=_as_bool(pick("multi_user", bool(os.environ.get("SPACE_ID")))),
        model_paths=dict(raw.get("model_paths", {})),
        transformer_files=dict(raw.get("transformer_files", {})),
        model_files=dict(raw.get("model_files", {})),
        comfyui_dir=folder("comfyui_dir", "") if pick("comfyui_dir") else None,
        wan2gp_dir=folder("wan2gp_dir", "") if pick("wan2gp_dir") else None,
        memory_plan=str(pick("memory_plan", "auto")),
        attention=str(pick("attention", "auto")),
        zerogpu_preload=tuple(str(pick("zerogpu_preload", "") or "").replace(",", " ").split())
        if not isinstance(raw.get("zerogpu_preload"), list) else tuple(raw["zerogpu_preload"]),
        config_file=path if path.exists() else None,
        loras_dir=folder("loras_dir", "loras"),
        enhancer_model=str(pick("enhancer_model", "") or ""),
        enhancer_url=str(pick("enhancer_url", "") or ""),
        enhancer_key=str(pick("enhancer_key", "") or ""),
        enhancer_endpoint_model=str(pick("enhancer_endpoint_model", "") or ""),
        enhancer_timeout_s=float(pick("enhancer_timeout_s", 20.0)),
        max_video_seconds=float(pick("max_video_seconds", 60.0)),
        gpus=_as_list_text(pick("gpus", "")),
        ray_address=str(pick("ray_address", "") or ""),
        memory_limit_gb=_memory_limit(pick("memory_limit_gb", 0.0)),
        compile=_compile_choice(pick("compile", "auto")),
    )


def child_environment(settings: Settings) -> dict:
    """What a process the studio starts (a pool's worker, a split job's rank) must see of this one's
    settings, flags included, as environment variables."""
    return {ENV_PREFIX + "OUTPUT_DIR": str(settings.output_dir), ENV_PREFIX + "MODELS_DIR": str(settings.models_dir),
            ENV_PREFIX + "TINY_MODELS_DIR": str(settings.tiny_models_dir),
            ENV_PREFIX + "MEMORY_LIMIT_GB": str(settings.memory_limit_gb), ENV_PREFIX + "COMPILE": settings.compile}


def _memory_limit(value) -> float:
    try:
        limit = float(value or 0)
    except ValueError:
        limit = -1.0
    if limit < 0:
        raise StudioError(f"memory_limit_gb must be a number of GiB (0: no limit); got {value!r}.")
    return limit


def _compile_choice(value) -> str:
    choice = ("on" if value else "off") if isinstance(value, bool) else str(value).strip().lower()  # JSON true/false
    if choice not in COMPILE_CHOICES:
        raise StudioError(f"compile must be auto, on or off; got {value!r}.")
    return choice


def _as_list_text(value) -> str:
    """A list in config.json (["0", "1"] or [0, 1]) or a comma-separated string, as "0,1"."""
    return ",".join(str(item) for item in value) if isinstance(value, list) else str(value or "")


def _as_bool(value) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


def save_defaults(updates: dict, path: Path | None = None) -> Path:
    """Write user defaults (e.g. default_generation) into config.json, keeping every other key."""
    path = Path(path) if path is not None else config_path()
    raw = json.loads(path.read_text()) if path.exists() else {}
    raw.update(updates)
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(json.dumps(raw, indent=2) + "\n")
    tmp.replace(path)
    return path
