"""The files users already have: a checkpoint's transformer, text encoder and VAE from single files in
the original Wan layout (ComfyUI's repackaged files, Kijai's, Wan2GP's), renamed by diffusers'
single-file converters. Transformers and the text encoder are built on the meta device and take the
file's tensors as they are: a transformer holds about its file's size in host memory while loading (a
14B FP8 file: 14 GB, not a 28 GB bf16 copy); the text encoder, dequantized, its file plus its weights
in the compute dtype. The recipe records each file (`describe(..., identify=True)`).

config.json names them per checkpoint (`transformer_files`, the older name, still works for GGUF):

    "model_files": {"wan2.1-t2v-14b": {"transformer": "wan2.1_t2v_14B_fp8_scaled.safetensors",
                                       "text_encoder": "umt5_xxl_fp8_e4m3fn_scaled.safetensors",
                                       "vae": "wan_2.1_vae.safetensors"}}

A bare file name is looked up in `comfyui_dir` (models/diffusion_models, text_encoders, vae and their
older names) and `wan2gp_dir` (ckpts/); a path or an hf://owner/repo/file address is used as given;
a `.gguf` transformer goes through models/gguf.py. The configs (and the tokenizer, scheduler) come from
the checkpoint's folder as usual.

Precision, as the file holds it:
- bf16 / fp16 / fp32: loaded in the plan's dtype, like a folder's weights; the plan may quantize them.
- fp8 (Kijai's `*_fp8_e4m3fn`) and fp8 with per-tensor scales (ComfyUI's `*_fp8_scaled`: a float32
  `<layer>.scale_weight` beside each fp8 weight and a `scaled_fp8` marker tensor): the Linear weights
  of the transformer blocks stay in FP8 with their scale and are dequantized layer by layer as they
  run (`FP8Linear`); everything else, and the text encoder, is dequantized on load. The memory plan
  counts those bytes (1 per FP8 weight) and applies no other quantization to the transformer.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import struct
import time
from functools import lru_cache
from pathlib import Path

from wan_studio.errors import ModelNotAvailable, StudioError

log = logging.getLogger(__name__)

COMPONENTS = ("transformer", "transformer_2", "text_encoder", "vae")
TRANSFORMERS = ("transformer", "transformer_2")
SCALE_SUFFIXES = (".scale_weight", ".weight_scale")  # ComfyUI's per-tensor scale (older, newer name)
INPUT_SCALE_SUFFIXES = (".scale_input", ".input_scale")  # for FP8 matmuls; not needed to dequantize
MARKER = "scaled_fp8"  # ComfyUI's marker tensor of a scaled-FP8 file
FP8_SCALE = "scale_weight"  # the buffer an FP8Linear keeps its scale in
PREFIX = "model.diffusion_model."  # the prefix some repackaged files keep
FP8_HEADER_DTYPES = {"F8_E4M3", "F8_E5M2"}
# The folders a ComfyUI install and a Wan2GP install keep them in, by component
USER_FOLDERS = {
    "comfyui_dir": {"transformer": ("models/diffusion_models", "models/unet"),
                    "text_encoder": ("models/text_encoders", "models/clip"), "vae": ("models/vae",)},
    "wan2gp_dir": {"transformer": ("ckpts",), "text_encoder": ("ckpts", "ckpts/umt5-xxl"), "vae": ("ckpts",)},
}
WHERE = {"comfyui_dir": "your ComfyUI folder", "wan2gp_dir": "your Wan2GP folder"}


# -- which files ---------------------------------------------------------------------------------
def model_files(record, settings) -> dict[str, str]:
    """component -> the file (name, path or hf:// address) config.json names for this checkpoint."""
    files: dict[str, str] = {}
    for key in ("transformer_files", "model_files"):  # model_files wins over its older name
        entry = (getattr(settings, key, None) or {}).get(record.id)
        if entry:
            files.update({"transformer": entry} if isinstance(entry, str) else dict(entry))
    unknown = sorted(set(files) - set(COMPONENTS))
    if unknown:
        raise StudioError(f"model_files for {record.id}: unknown component(s) {', '.join(unknown)}; "
                          f"use {', '.join(COMPONENTS)}.")
    if "transformer_2" in files and not record.is_moe:
        raise StudioError(f"model_files for {record.id}: {record.name} has one transformer (no transformer_2).")
    return files


def is_gguf(source: str) -> bool:
    return source.lower().endswith(".gguf")


def user_folders(settings) -> dict[str, Path]:
    """setting name -> the ComfyUI / Wan2GP install folder config.json names (only those that exist)."""
    found = {}
    for key in USER_FOLDERS:
        value = getattr(settings, key, None)
        if value and Path(value).expanduser().is_dir():
            found[key] = Path(value).expanduser()
    return found


def local_file(source: str, settings, component: str = "transformer", allow_download: bool = False) -> Path:
    """The file on disk: a path, a bare name found in the ComfyUI / Wan2GP folders, or an hf:// address."""
    if source.startswith("hf://"):
        from wan_studio.models.hub import hub_file

        return hub_file(source, "model file", allow_download)
    path = Path(source).expanduser()
    if path.suffix.lower() != ".safetensors":
        raise StudioError(f"{path.name} is not a .safetensors file (model_files takes .safetensors, or .gguf "
                          f"for a transformer).")
    if not path.is_absolute() and len(path.parts) == 1:
        for key, root in user_folders(settings).items():
            for sub in USER_FOLDERS[key].get("transformer" if component in TRANSFORMERS else component, ()):
                if (root / sub / path.name).is_file():
                    return root / sub / path.name
    if not path.is_file():
        raise ModelNotAvailable(f"The model file {path} does not exist"
                                + (" (nor in your ComfyUI / Wan2GP folders)." if len(path.parts) == 1 else "."))
    return path


# -- what a file holds, from its header alone ----------------------------------------------------
@lru_cache(maxsize=64)
def _header(path: str, mtime: float) -> dict:
    with open(path, "rb") as handle:
        length = struct.unpack("<Q", handle.read(8))[0]
        header = json.loads(handle.read(length))
    header.pop("__metadata__", None)
    return {name: (info["dtype"], tuple(info["shape"])) for name, info in header.items()}


def header(path: Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """tensor name -> (safetensors dtype, shape), read without loading any tensor."""
    try:
        return _header(str(path), path.stat().st_mtime)
    except (OSError, ValueError, KeyError, struct.error) as exc:
        raise StudioError(f"{path.name} is not a readable safetensors file ({exc}).") from exc


def precision(path: Path) -> str:
    """fp8-scaled, fp8 (any FP8 weight, no scales), else the dtype holding most values: bf16, fp16, fp32."""
    tensors = header(path)
    if MARKER in tensors or any(name.endswith(SCALE_SUFFIXES) for name in tensors):
        return "fp8-scaled"
    if any(dtype in FP8_HEADER_DTYPES for dtype, _ in tensors.values()):
        return "fp8"
    counts: dict[str, int] = {}
    for dtype, shape in tensors.values():
        counts[dtype] = counts.get(dtype, 0) + _numel(shape)
    main = max(counts, key=counts.get) if counts else "BF16"
    return {"BF16": "bf16", "F16": "fp16", "F32": "fp32"}.get(main, main.lower())


def _numel(shape) -> int:
    total = 1
    for size in shape:
        total *= size
    return total


def _strip(name: str) -> str:
    return name[len(PREFIX):] if name.startswith(PREFIX) else name


def kept_in_fp8(name: str, ndim: int) -> bool:
    """Which FP8 weights stay FP8 on the device: the Linears of the transformer blocks (over 95% of a
    transformer's parameters). Embeddings, norms and the head are dequantized: diffusers reads some of
    their dtypes to cast its inputs."""
    return _strip(name).startswith("blocks.") and name.endswith(".weight") and ndim == 2


def resident_gb(path: Path, compute_bytes: int, component: str = "transformer") -> float:
    """GiB the loaded component holds: FP8 block weights at 1 byte (+ their scale), the rest in the
    compute dtype (what the loader makes of them)."""
    total = 0
    for name, (dtype, shape) in header(path).items():
        if name == MARKER or name.endswith(INPUT_SCALE_SUFFIXES):
            continue
        if name.endswith(SCALE_SUFFIXES):
            total += 4 if component in TRANSFORMERS else 0
        elif dtype in FP8_HEADER_DTYPES and component in TRANSFORMERS and kept_in_fp8(name, len(shape)):
            total += _numel(shape)
        else:
            total += _numel(shape) * compute_bytes
    return total / 2**30


def file_gb(record, settings, component: str, compute_bytes: int) -> float | None:
    """What the memory plan counts for a transformer that comes quantized from a file: a GGUF file its
    size, an FP8 file what it holds resident. None where the plan counts it as a folder's (no file, a
    bf16/fp16 file loaded in the plan's dtype and quantized as the plan says, or a file not here)."""
    source = model_files(record, settings).get(component)
    if source is None:
        return None
    if is_gguf(source):
        from wan_studio.models import gguf

        try:
            return gguf.local_file(source, settings).stat().st_size / 2**30
        except StudioError:
            return None
    try:
        path = local_file(source, settings, component)
        if not precision(path).startswith("fp8"):
            return None
        return resident_gb(path, compute_bytes, component)
    except StudioError:
        return None


def describe(record, settings, identify: bool = False) -> dict[str, dict]:
    """component -> {file, precision}: what `--dry-run` says will be loaded; with `identify`, what the
    recipe keeps of each file (its `identity` too)."""
    described = {}
    for component, source in model_files(record, settings).items():
        try:
            path = _file_of(source, settings, component)
        except StudioError as exc:
            described[component] = {"file": source, "error": str(exc)}
            continue
        kind = "gguf" if is_gguf(source) else precision(path)
        described[component] = {"file": str(path), "precision": kind, **(identity(path) if identify else {})}
    return described


def _file_of(source: str, settings, component: str) -> Path:
    if is_gguf(source):
        from wan_studio.models import gguf

        return gguf.local_file(source, settings)
    return local_file(source, settings, component)


def identity(path: Path) -> dict:
    """Enough to tell a file from another without reading 14 GB: its size and modification time, and for a
    safetensors file the sha256 of its header (every tensor's name, dtype, shape and offset)."""
    stat = path.stat()
    found = {"bytes": stat.st_size, "modified": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(stat.st_mtime))}
    if path.suffix.lower() == ".safetensors":
        with open(path, "rb") as handle:
            head = handle.read(8)
            found["header_sha256"] = hashlib.sha256(head + handle.read(struct.unpack("<Q", head)[0])).hexdigest()
    return found


# -- loading ---------------------------------------------------------------------------------------
def _read(path: Path) -> dict:
    from safetensors.torch import load_file

    return {_strip(name): tensor for name, tensor in load_file(str(path)).items()}


def split_scales(state: dict) -> tuple[dict, dict]:
    """(weights, layer -> its per-tensor scale): ComfyUI's scale tensors and marker taken out."""
    scales = {}
    for name in list(state):
        if name == MARKER or name.endswith(INPUT_SCALE_SUFFIXES):
            state.pop(name)
        elif name.endswith(SCALE_SUFFIXES):
            scales[name.rsplit(".", 1)[0]] = state.pop(name)
    return state, scales


def dequantize(tensor, scale, dtype):
    import torch

    if scale is None:
        return tensor.to(dtype)
    return (tensor.to(torch.float32) * scale.to(torch.float32)).to(dtype)


def _is_fp8(tensor) -> bool:
    import torch

    return tensor.dtype in (torch.float8_e4m3fn, torch.float8_e5m2)


def load_transformer(record, component: str, source: str, folder: Path, dtype, settings, cls=None):
    """A transformer from a single file in the original Wan layout, its config from the checkpoint's
    folder; FP8 block Linears stay FP8 with their scales.

    Built on the meta device and filled by assignment, tensor by tensor, so host memory peaks near the
    file's size: an FP8 weight is never copied, let alone widened to bf16 (diffusers' `from_single_file`
    casts every weight to `torch_dtype`, which for a 14B FP8 file holds 28 GB). Dtypes follow
    `from_pretrained`: the class's `_keep_in_fp32_modules` in float32, the rest in `dtype`."""
    import diffusers
    import torch
    from accelerate import init_empty_weights
    from diffusers.loaders.single_file_model import SINGLE_FILE_LOADABLE_CLASSES

    path = local_file(source, settings, component, allow_download=getattr(settings, "auto_download", False))
    if cls is None:  # the class the checkpoint's folder names for this component (VACE, Animate: their own)
        index = json.loads((Path(folder) / "model_index.json").read_text())
        cls = getattr(diffusers, index.get(component, [None, "WanTransformer3DModel"])[1])
    keep_fp32 = set(cls._keep_in_fp32_modules or ())

    def wanted_dtype(name: str):
        return torch.float32 if keep_fp32.intersection(name.split(".")) else dtype

    state, scales = split_scales(_read(path))
    kept = {}  # layer -> its scale (1 where the file has none), for the FP8 weights that stay FP8
    for name, tensor in list(state.items()):
        if not _is_fp8(tensor):
            continue
        layer = name.rsplit(".", 1)[0]
        if kept_in_fp8(name, tensor.ndim):
            scale = scales.get(layer)
            kept[layer] = torch.ones((), dtype=torch.float32) if scale is None else scale.to(torch.float32).reshape(())
        else:
            state[name] = dequantize(tensor, scales.get(layer) if name.endswith(".weight") else None, dtype)
    state.update({f"{layer}.{FP8_SCALE}": scale for layer, scale in kept.items()})  # renamed with their weights
    try:
        config = cls.load_config(str(folder), subfolder=component)
        with init_empty_weights():
            model = cls.from_config(config)
        converted = SINGLE_FILE_LOADABLE_CLASSES[cls.__name__]["checkpoint_mapping_fn"](checkpoint=state, config=config)
        layer_scales = {name.rsplit(".", 1)[0]: converted.pop(name) for name in list(converted)
                        if name.endswith("." + FP8_SCALE)}
        converted = {name: t if _is_fp8(t) else t.to(wanted_dtype(name)) for name, t in converted.items()}
        _assign(model, converted, path, record, component)
    except (ValueError, KeyError, RuntimeError) as exc:
        raise StudioError(f"The file {path.name} does not fit {record.name}'s {component}: "
                          f"{str(exc).splitlines()[0][:200]}") from exc
    for name, buffer in model.named_buffers():  # built on the CPU (rope tables): in the loaded dtypes too
        if buffer.is_floating_point():
            module, _, leaf = name.rpartition(".")
            model.get_submodule(module)._buffers[leaf] = buffer.to(wanted_dtype(name))
    for layer, scale in layer_scales.items():
        FP8Linear.adopt(model.get_submodule(layer), model.get_submodule(layer).weight, scale)
    if layer_scales:
        model.stored_in_fp8 = precision(path)
    return model.eval()


def _assign(model, state: dict, path: Path, record, component: str) -> None:
    """Load `state` into a model built on the meta device, taking its tensors as they are (no copy, no cast)."""
    missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
    still_empty = [name for name, p in model.named_parameters() if p.is_meta]
    if missing or still_empty:
        name = (list(missing) + still_empty)[0]
        raise StudioError(f"The file {path.name} does not fit {record.name}'s {component}: "
                          f"{len(set(missing) | set(still_empty))} weight(s) missing, e.g. {name}.")
    if unexpected:
        log.warning("%s: %d tensor(s) %s's %s does not use, e.g. %s", path.name, len(unexpected), record.name,
                    component, unexpected[0])


def load_vae(record, source: str, folder: Path, dtype, settings):
    """The VAE from a single file (ComfyUI's `wan_2.1_vae.safetensors`, Wan2GP's `Wan2.1_VAE.safetensors`)."""
    import diffusers

    path = local_file(source, settings, "vae", allow_download=getattr(settings, "auto_download", False))
    state, scales = split_scales(_read(path))
    state = {name: dequantize(t, scales.get(name.rsplit(".", 1)[0]), dtype) if _is_fp8(t) else t
             for name, t in state.items()}
    try:
        return diffusers.AutoencoderKLWan.from_single_file(state, config=str(folder), subfolder="vae",
                                                           torch_dtype=dtype)
    except (ValueError, KeyError, RuntimeError) as exc:
        raise StudioError(f"The file {path.name} does not fit {record.name}'s VAE: "
                          f"{str(exc).splitlines()[0][:200]}") from exc


def load_text_encoder(record, source: str, folder: Path, dtype, settings):
    """The UMT5 encoder from a single file in transformers' T5 naming (ComfyUI's `umt5_xxl_*`:
    `encoder.block.N...`, `shared.weight`), dequantized on load; diffusers has no single-file path for it."""
    import transformers
    from accelerate import init_empty_weights

    path = local_file(source, settings, "text_encoder", allow_download=getattr(settings, "auto_download", False))
    state, scales = split_scales(_read(path))
    if not any(name.startswith("encoder.block.") for name in state):
        raise StudioError(f"{path.name} is not a UMT5 encoder in transformers' naming (encoder.block.N...): "
                          f"Wan's own T5 layout (models_t5_umt5-xxl-enc-*.pth) is not read yet.")
    state = {name: dequantize(t, scales.get(name.rsplit(".", 1)[0]), dtype) if _is_fp8(t) else t.to(dtype)
             for name, t in state.items()}
    if "shared.weight" not in state and "encoder.embed_tokens.weight" in state:
        state["shared.weight"] = state["encoder.embed_tokens.weight"]
    state.setdefault("encoder.embed_tokens.weight", state.get("shared.weight"))  # tied: one tensor for both
    config = transformers.UMT5Config.from_pretrained(Path(folder) / "text_encoder")
    with init_empty_weights():  # no random 5.7B-parameter fp32 model first: the file's tensors are taken as they are
        model = transformers.UMT5EncoderModel(config)
    _assign(model, {name: t for name, t in state.items() if t is not None}, path, record, "text encoder")
    return model.eval()


def load(record, component: str, source: str, folder: Path, dtype, vae_dtype, settings):
    """One component from its file (GGUF or safetensors)."""
    if component in TRANSFORMERS:
        if is_gguf(source):
            from wan_studio.models import gguf

            return gguf.load(record, component, source, folder, dtype, settings)
        return load_transformer(record, component, source, folder, dtype, settings)
    if component == "vae":
        return load_vae(record, source, folder, vae_dtype, settings)
    return load_text_encoder(record, source, folder, dtype, settings)


def _fp8_linear_class():
    import torch

    class _FP8Linear(torch.nn.Linear):
        """A Linear whose weight stays FP8 (with its per-tensor scale) and is dequantized as it runs."""

        def forward(self, x):
            weight = self.weight.to(x.dtype) * self.scale_weight.to(x.dtype)
            bias = self.bias.to(x.dtype) if self.bias is not None else None
            return torch.nn.functional.linear(x, weight, bias)

    return _FP8Linear


class FP8Linear:
    """Turns a loaded nn.Linear into one that keeps an FP8 weight and its scale."""

    _cls = None

    @classmethod
    def cls(cls):
        if cls._cls is None:
            cls._cls = _fp8_linear_class()
        return cls._cls

    @classmethod
    def adopt(cls, module, weight, scale) -> None:
        import torch

        if not isinstance(module, torch.nn.Linear):
            raise StudioError(f"FP8 weight for a {type(module).__name__}, not a Linear.")
        module.weight = torch.nn.Parameter(weight.to(module.weight.device), requires_grad=False)
        scale = torch.ones((), dtype=torch.float32) if scale is None else scale.to(torch.float32).reshape(())
        module.register_buffer("scale_weight", scale.to(module.weight.device))
        module.__class__ = cls.cls()


# -- files found in the user's ComfyUI / Wan2GP folders --------------------------------------------
@lru_cache(maxsize=1)
def known_names() -> dict:
    """checkpoint id -> component -> regular expressions of the names those projects give its files."""
    data = json.loads((Path(__file__).resolve().parent.parent / "data" / "single_files.json").read_text())
    return {key: value for key, value in data.items() if not key.startswith("_")}


def found_files(settings) -> list[dict]:
    """Files in the user's ComfyUI / Wan2GP folders under their usual names, one row per (checkpoint,
    component, file): what Settings offers."""
    rows = []
    for key, root in user_folders(settings).items():
        for component, subfolders in USER_FOLDERS[key].items():
            names = sorted({p.name for sub in subfolders if (root / sub).is_dir()
                            for p in (root / sub).iterdir() if p.suffix.lower() in (".safetensors", ".gguf")})
            for model_id, patterns in known_names().items():
                for wanted, expressions in patterns.items():
                    if ("transformer" if wanted in TRANSFORMERS else wanted) != component:
                        continue
                    for name in names:
                        if any(re.fullmatch(expr, name, re.IGNORECASE) for expr in expressions):
                            path = next(root / sub / name for sub in subfolders if (root / sub / name).is_file())
                            rows.append({"model": model_id, "component": wanted, "file": name, "path": str(path),
                                         "where": f"found in {WHERE[key]}", "precision": _precision_or_unread(path)})
    return rows


def _precision_or_unread(path: Path) -> str:
    if path.suffix.lower() == ".gguf":
        return "gguf"
    try:
        return precision(path)
    except StudioError:
        return "unreadable"


PREFERRED = ("fp8-scaled", "fp8", "bf16", "fp16", "fp32", "gguf")  # smallest resident first, GGUF last


def suggested_files(settings, model_id: str) -> dict[str, str]:
    """component -> a found file for this checkpoint, the one that holds least resident first: the
    `model_files` entry Settings writes when the user takes the found files."""
    chosen: dict[str, dict] = {}
    rank = {kind: i for i, kind in enumerate(PREFERRED)}
    for row in found_files(settings):
        if row["model"] != model_id:
            continue
        best = chosen.get(row["component"])
        if best is None or rank.get(row["precision"], 99) < rank.get(best["precision"], 99):
            chosen[row["component"]] = row
    return {component: row["path"] for component, row in chosen.items()}
