"""The LoRA manager: find LoRA files, tell what they are, and refuse one that cannot fit, before a run.

Sources a job may name (`{"source": ..., "weight": 1.0, "expert": "both"}`):
- a file path, or a file name in the LoRAs folder (`loras_dir`, `.safetensors` optional);
- a named LoRA of presets/presets.json (the Lightning files: looked up in the LoRAs folder and the
  Hugging Face cache; Tiny stand-ins are built locally);
- `hf://owner/repo/path/file.safetensors`, a Hub file (from the cache, or downloaded when allowed).

Key layouts recognised (diffusers' own converters do the work; we only add the prefixes they miss):
diffusers (`transformer.`), peft (`base_model.model.` or bare diffusers module names), original Wan
(`diffusion_model.` + lora_A/B), lightx2v / Kijai (`diffusion_model.` + lora_down/up, alpha, diff_b),
Kohya / musubi (`lora_unet_`), and the Wan2.2-Lightning Seko layout (original Wan names with no
`diffusion_model.` prefix, diffusers issue #12147). Every converted matrix is checked against the
target transformer's module shapes (an empty-weights copy built from its config), so a 1.3B LoRA on
a 14B model is refused with the LoRA, the first offending key and both shapes named.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

from wan_studio import catalog
from wan_studio.catalog import Checkpoint
from wan_studio.errors import RequestError

EXPERTS = ("both", "high", "low")
WEIGHT_RANGE = (-4.0, 4.0)
LORA_SUFFIXES = (".safetensors",)
# diffusers module name <-> original Wan module name, for the blocks LoRAs train
_WAN_NAMES = {
    "attn1.to_q": "self_attn.q", "attn1.to_k": "self_attn.k", "attn1.to_v": "self_attn.v",
    "attn1.to_out.0": "self_attn.o",
    "attn2.to_q": "cross_attn.q", "attn2.to_k": "cross_attn.k", "attn2.to_v": "cross_attn.v",
    "attn2.to_out.0": "cross_attn.o",
    "attn2.add_k_proj": "cross_attn.k_img", "attn2.add_v_proj": "cross_attn.v_img",
    "ffn.net.0.proj": "ffn.0", "ffn.net.2": "ffn.2",
}
LAYOUTS = ("diffusers", "peft", "wan", "lightx2v", "kijai", "kohya", "seko")


class LoraError(RequestError):
    def __init__(self, message: str):
        super().__init__("loras", message)


@dataclass
class ResolvedLora:
    """A LoRA of a job, found and checked: what gets loaded and what the recipe records."""

    source: str
    path: Path
    weight: float
    expert: str  # both | high | low
    sha256: str
    layout: str
    rank: int

    @property
    def adapter_name(self) -> str:
        stem = re.sub(r"[^A-Za-z0-9_]", "_", self.path.stem)[:40]
        return f"{stem}_{self.sha256[:8]}"

    def targets(self, record: Checkpoint) -> list[str]:
        """Pipeline components this LoRA goes into: HIGH -> transformer, LOW -> transformer_2."""
        if not record.is_moe:
            return ["transformer"]
        return {"both": ["transformer", "transformer_2"], "high": ["transformer"],
                "low": ["transformer_2"]}[self.expert]

    def as_recipe(self) -> dict:
        return {"source": self.source, "file": self.path.name, "sha256": self.sha256, "weight": self.weight,
                "expert": self.expert, "layout": self.layout, "rank": self.rank}

    def to_dict(self) -> dict:
        """What a job keeps, so the worker neither looks for nor hashes the file again."""
        return {**dataclasses.asdict(self), "path": str(self.path)}

    @classmethod
    def from_dict(cls, data: dict) -> "ResolvedLora":
        return cls(**{**data, "path": Path(data["path"])})


# -- job specs ------------------------------------------------------------------------------------
def parse_cli_spec(text: str) -> dict:
    """`PATH_OR_NAME[:WEIGHT[:high|low|both]]` -> {"source", "weight", "expert"}."""
    parts = text.split(":")
    expert, weight = "both", 1.0
    if len(parts) > 1 and parts[-1].lower() in EXPERTS:
        expert = parts.pop().lower()
    if len(parts) > 1:
        try:
            weight = float(parts[-1])
            parts.pop()
        except ValueError:
            pass
    return {"source": ":".join(parts), "weight": weight, "expert": expert}


def normalize_specs(value) -> list[dict]:
    """A request's `loras` field as a list of {source, weight, expert}, or a RequestError."""
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        raise LoraError(f"loras must be a list of {{source, weight, expert}} entries; got {value!r}.")
    specs = []
    for item in value:
        if isinstance(item, str):
            item = parse_cli_spec(item)
        if not isinstance(item, dict) or not isinstance(item.get("source"), str) or not item["source"].strip():
            raise LoraError(f"Each LoRA needs a 'source' (a file path or a LoRA name); got {item!r}.")
        unknown = sorted(set(item) - {"source", "weight", "expert"})
        if unknown:
            raise LoraError(f"LoRA '{item['source']}': unknown field(s) {', '.join(unknown)}; "
                            "use source, weight, expert.")
        weight, expert = item.get("weight", 1.0), str(item.get("expert", "both")).lower()
        is_number = isinstance(weight, (int, float)) and not isinstance(weight, bool)
        if not is_number or not WEIGHT_RANGE[0] <= weight <= WEIGHT_RANGE[1]:
            raise LoraError(f"LoRA '{item['source']}': weight must be a number from {WEIGHT_RANGE[0]:g} to "
                            f"{WEIGHT_RANGE[1]:g}; got {weight!r}.")
        if expert not in EXPERTS:
            raise LoraError(f"LoRA '{item['source']}': expert must be high, low or both; got {expert!r}.")
        specs.append({"source": item["source"].strip(), "weight": float(weight), "expert": expert})
    return specs


# -- finding files --------------------------------------------------------------------------------
def loras_dir(settings) -> Path:
    if getattr(settings, "loras_dir", None):
        return Path(settings.loras_dir)
    return Path(settings.models_dir).parent / "loras"


def locate(source: str, settings, allow_download: bool = False) -> Path:
    """The local file of a LoRA source, or a LoraError that says where it was looked for."""
    from wan_studio.loras.presets import lora_record

    named = lora_record(source)
    folder = loras_dir(settings)
    if named is not None:
        if named.get("tiny"):
            return ensure_tiny_lora(source, settings)
        for candidate in (folder / named["file"], folder / Path(named["file"]).name):
            if candidate.is_file():
                return candidate
        return _hub_file(source, named["repo"], named["file"], settings, allow_download)
    if source.startswith("hf://"):
        repo_and_file = source[len("hf://"):].split("/", 2)
        if len(repo_and_file) < 3:
            raise LoraError(f"LoRA '{source}': a Hub LoRA is hf://owner/repo/path/file.safetensors.")
        return _hub_file(source, "/".join(repo_and_file[:2]), repo_and_file[2], settings, allow_download)
    path = Path(os.path.expanduser(source))
    candidates = [path] if path.is_absolute() else [path, folder / source, folder / (source + ".safetensors")]
    for candidate in candidates:
        if candidate.is_file():
            if candidate.suffix.lower() not in LORA_SUFFIXES:
                raise LoraError(f"LoRA '{source}': {candidate.name} is not a .safetensors file "
                                "(pickled .pt/.ckpt LoRAs are not loaded, they can run code).")
            return candidate.resolve()
    raise LoraError(f"LoRA '{source}' not found: no such file, nor in the LoRAs folder {folder}. "
                    f"Known names: {', '.join(n for n in available_names(settings)) or 'none'}.")


def _hub_file(source: str, repo: str, filename: str, settings, allow_download: bool) -> Path:
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(repo, filename, local_files_only=True))
    except Exception:
        pass
    if allow_download:
        try:
            return Path(hf_hub_download(repo, filename))
        except Exception as exc:
            why = f"the Hugging Face Hub is unreachable ({type(exc).__name__})"
    else:
        why = "it is not downloaded"
    from wan_studio.loras.presets import lora_record

    command = (f"python -m wan_studio download {source}" if lora_record(source)
               else f"hf download {repo} {filename} --local-dir {loras_dir(settings)}")
    raise LoraError(f"LoRA '{source}' ({repo}/{filename}) is not on this machine: {why}. Download it with:\n"
                    f"    {command}\nor put {Path(filename).name} in {loras_dir(settings)}.")


def available_names(settings) -> list[str]:
    folder = loras_dir(settings)
    files = sorted(p.name for p in folder.glob("**/*.safetensors")) if folder.is_dir() else []
    return files


def sha256_of(path: Path) -> str:
    return _sha256_cached(str(path), path.stat().st_mtime_ns, path.stat().st_size)


@lru_cache(maxsize=64)
def _sha256_cached(path: str, mtime_ns: int, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# -- reading and converting -----------------------------------------------------------------------
def read_header(path: Path) -> tuple[dict, dict]:
    """(tensor name -> shape, metadata) from the safetensors header, without reading the tensors."""
    from safetensors import SafetensorError, safe_open

    try:
        # numpy, not torch: only the header is read, and listing LoRAs should not import torch
        with safe_open(str(path), framework="numpy") as opened:
            shapes = {key: tuple(opened.get_slice(key).get_shape()) for key in opened.keys()}
            metadata = opened.metadata() or {}
    except (OSError, SafetensorError) as exc:
        raise LoraError(f"LoRA '{path.name}' is not a readable safetensors file ({exc}).") from None
    return shapes, metadata


def detect_layout(keys) -> str | None:
    keys = list(keys)
    if any(k.startswith("transformer.") for k in keys):
        return "diffusers"
    if any(k.startswith("base_model.model.") or re.match(r"blocks\.\d+\.(attn1|attn2|ffn\.net)\.", k) for k in keys):
        return "peft"
    if any(k.startswith(("diffusion_model.", "model.diffusion_model.")) for k in keys):
        return "lightx2v" if any(".lora_down." in k or k.endswith(".alpha") for k in keys) else "wan"
    if any(k.startswith("lora_unet_") for k in keys):
        return "kohya"
    if any(re.match(r"blocks\.\d+\.(self_attn|cross_attn|ffn)\.", k) for k in keys):
        return "seko"
    return None


def to_diffusers(state_dict: dict, name: str) -> tuple[dict, str]:
    """A LoRA state dict in any recognised layout -> diffusers keys (`transformer.<module>.lora_A...`)."""
    from diffusers import WanPipeline

    layout = detect_layout(state_dict)
    if layout is None:
        first = next(iter(state_dict), "(no tensors)")
        raise LoraError(f"LoRA '{name}' has an unknown key format (first key: {first}); known layouts: "
                        "diffusers, peft, original Wan (diffusion_model.), lightx2v/Kijai, Kohya (lora_unet_), Seko.")
    if layout == "peft":
        state_dict = {"transformer." + k.removeprefix("base_model.model."): v for k, v in state_dict.items()}
    elif layout == "seko":
        state_dict = {"diffusion_model." + k: v for k, v in state_dict.items()}
    elif layout in ("wan", "lightx2v"):
        state_dict = {k.removeprefix("model."): v for k, v in state_dict.items()}
    if layout != "diffusers" and layout != "peft":
        try:  # diffusers' own converters (original Wan, lightx2v, musubi/Kohya)
            state_dict = WanPipeline.lora_state_dict(state_dict)
        except (KeyError, ValueError, IndexError, AttributeError) as exc:
            raise LoraError(f"LoRA '{name}' ({layout} layout) could not be converted: "
                            f"{type(exc).__name__} {exc}.") from None
        if not any(k.startswith("transformer.") for k in state_dict):
            state_dict = {"transformer." + k: v for k, v in state_dict.items()}
    state_dict = {k: v for k, v in state_dict.items() if "dora_scale" not in k}
    odd = next((k for k in state_dict if "lora" not in k), None)
    if odd is not None:
        raise LoraError(f"LoRA '{name}': key {odd} is not a LoRA matrix (diffusers loads only lora_A/lora_B keys).")
    return state_dict, layout


def load_converted(path: Path) -> tuple[dict, str]:
    from safetensors.torch import load_file

    read_header(path)  # a clear message for a file that is not safetensors
    return to_diffusers(load_file(str(path)), path.name)


class _Shaped(NamedTuple):
    shape: tuple


def converted_shapes(path: Path) -> tuple[dict, str]:
    """(diffusers key -> an object with the tensor's .shape, layout): the file is read in full once per
    version (media.facts), not on every rebuild of the request that names it."""
    from wan_studio.media import facts

    def read():
        state_dict, layout = load_converted(path)
        return {key: _Shaped(tuple(tensor.shape)) for key, tensor in state_dict.items()}, layout

    return facts.remember("lora-shapes", path, read)


def rank_of(state_dict: dict) -> int:
    ranks = [v.shape[0] for k, v in state_dict.items() if k.endswith("lora_A.weight")]
    return max(ranks) if ranks else 0


# -- target shapes --------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _builtin_configs() -> dict:
    """The full-size transformer configs the memory plans ship (wan_studio/data/component_configs.json)."""
    from wan_studio.memory.footprints import shipped_transformer_configs

    return shipped_transformer_configs()


def transformer_config(record: Checkpoint, component: str, settings) -> dict | None:
    """The config of a checkpoint's transformer: from its folder when local, else the built-in table."""
    from wan_studio import models

    folder = models.resolve(record, settings) if record.is_tiny else models.find_local(record, settings)
    if folder is not None and (Path(folder) / component / "config.json").is_file():
        return json.loads((Path(folder) / component / "config.json").read_text())
    entry = _builtin_configs().get(record.id)
    return dict(entry) if entry else None


def module_shapes(config: dict) -> dict[str, tuple[int, ...]]:
    """module name -> weight shape of every Linear / Conv of the transformer, from an empty-weights copy."""
    return dict(_module_shapes_cached(json.dumps(config, sort_keys=True)))


@lru_cache(maxsize=16)
def _module_shapes_cached(config_json: str) -> tuple:
    from wan_studio.backend import import_ml

    import_ml()
    import diffusers
    import torch

    config = json.loads(config_json)
    cls = getattr(diffusers, config.get("_class_name", "WanTransformer3DModel"))
    with torch.device("meta"):  # thread-local, unlike init_empty_weights (the worker may be loading a model)
        model = cls.from_config(config)
    return tuple((name, tuple(m.weight.shape)) for name, m in model.named_modules()
                 if hasattr(m, "weight") and getattr(m, "weight", None) is not None and m.weight.dim() >= 2)


def mismatch(state_dict: dict, shapes: dict[str, tuple], prefix: str = "transformer.") -> str | None:
    """The first key that does not fit the module shapes, described; None when all fit."""
    for key, tensor in state_dict.items():
        module, _, kind = key.removeprefix(prefix).rpartition(".lora_")
        if not kind:
            continue
        target = shapes.get(module)
        shape = tuple(tensor.shape)
        if target is None:
            return f"key {key} targets module '{module}', which this transformer does not have"
        out_features, in_features = target[0], int(_prod(target[1:]))
        if kind == "A.weight" and (len(shape) < 2 or int(_prod(shape[1:])) != in_features):
            return (f"key {key} has shape {_fmt(shape)} but '{module}' takes {in_features} inputs "
                    f"(weight {_fmt(target)})")
        if kind == "B.weight" and shape[0] != out_features:
            return (f"key {key} has shape {_fmt(shape)} but '{module}' gives {out_features} outputs "
                    f"(weight {_fmt(target)})")
        if kind == "B.bias" and shape != (out_features,):
            return f"key {key} has shape {_fmt(shape)} but '{module}' has {out_features} outputs"
    return None


IMAGE_ATTENTION = (".attn2.add_k_proj.", ".attn2.add_v_proj.")


def fit_to_target(state_dict: dict, shapes: dict[str, tuple]) -> dict:
    """Drop image cross-attention keys when the target has no CLIP image attention: a Wan 2.1 I2V LoRA
    on Wan 2.2 I2V-A14B (the community 'hybrid' trick) carries k_img/v_img matrices nothing can take."""
    if any(".attn2.add_k_proj" in name for name in shapes):
        return state_dict
    return {k: v for k, v in state_dict.items() if not any(part in k for part in IMAGE_ATTENTION)}


def _prod(values) -> int:
    total = 1
    for v in values:
        total *= v
    return total


def _fmt(shape) -> str:
    return "x".join(str(s) for s in shape)


# -- the check a job goes through -----------------------------------------------------------------
def supports_loras(record: Checkpoint, mode: str) -> bool:
    """Whether the pipeline serving (checkpoint, mode) can load LoRAs (diffusers' Wan LoRA mixin)."""
    from wan_studio.backend import import_ml

    import_ml()  # diffusers' lazy names, resolved one thread at a time (server threads validate jobs)
    import diffusers

    cls = getattr(diffusers, record.pipelines.get(mode, ""), None)
    return cls is not None and hasattr(cls, "load_lora_weights")


def check(record: Checkpoint, specs: list[dict], settings=None, allow_download: bool = False,
          mode: str | None = None) -> list[ResolvedLora]:
    """Find, convert and shape-check every LoRA of a job against the checkpoint; refuse with a reason."""
    if not specs:
        return []
    if mode is not None and not supports_loras(record, mode):
        raise LoraError(f"{record.name} {mode.upper()} runs {record.pipelines.get(mode)}, which cannot load LoRAs; "
                        "remove the LoRAs (or pick the Quality preset) for this mode.")
    if settings is None:
        from wan_studio.settings import load_settings

        settings = load_settings()
    resolved = []
    for spec in specs:
        source = spec["source"]
        if spec["expert"] == "low" and not record.is_moe:
            raise LoraError(f"LoRA '{source}': expert 'low' needs a Wan 2.2 A14B (MoE) model; "
                            f"{record.name} has one transformer. Use 'both' (or leave expert out).")
        path = locate(source, settings, allow_download=allow_download)
        state_dict, layout = converted_shapes(path)
        lora = ResolvedLora(source, path, spec["weight"], spec["expert"], sha256_of(path), layout, rank_of(state_dict))
        for component in lora.targets(record):
            config = transformer_config(record, component, settings)
            if config is None:
                continue  # checked against the loaded modules just before loading (lora_apply)
            shapes = module_shapes(config)
            problem = mismatch(fit_to_target(state_dict, shapes), shapes)
            if problem:
                raise LoraError(f"LoRA '{source}' does not fit {record.name} ({component}): {problem}.")
        resolved.append(lora)
    return resolved


# -- listing --------------------------------------------------------------------------------------
def describe(path: Path) -> dict:
    """What a LoRA file's header tells: layout, rank, base model, trigger words, size."""
    shapes, metadata = read_header(path)
    layout = detect_layout(shapes)
    ranks = [s[0] for k, s in shapes.items() if k.endswith(("lora_A.weight", "lora_down.weight"))]
    triggers = metadata.get("modelspec.trigger_phrase") or metadata.get("trigger_words") or ""
    if not triggers and metadata.get("ss_tag_frequency"):
        try:
            tags = {t: n for folder in json.loads(metadata["ss_tag_frequency"]).values() for t, n in folder.items()}
            triggers = ", ".join(sorted(tags, key=tags.get, reverse=True)[:3])
        except (ValueError, AttributeError):
            pass
    base = (metadata.get("ss_base_model_version") or metadata.get("modelspec.architecture")
            or metadata.get("base_model") or "")
    return {"file": str(path), "name": path.name, "layout": layout or "unknown", "rank": max(ranks) if ranks else 0,
            "base_model": base, "trigger_words": triggers, "size_mb": round(path.stat().st_size / 2**20, 1)}


def fits(path: Path, settings, records: list[Checkpoint] | None = None) -> list[str]:
    """Ids of the checkpoints whose transformer this LoRA fits (checked by shape)."""
    try:
        state_dict, _ = load_converted(path)
    except LoraError:
        return []
    width = next((v.shape[1] for k, v in state_dict.items() if k.endswith("attn1.to_q.lora_A.weight")), None)
    found = []
    for record in records if records is not None else catalog.checkpoints():
        if not any(supports_loras(record, mode) for mode in record.modes):
            continue  # e.g. our own S2V pipeline: no LoRA loading
        config = transformer_config(record, "transformer", settings)
        if config is None:
            continue
        inner = config.get("num_attention_heads", 0) * config.get("attention_head_dim", 0)
        if width is not None and inner and width != inner:
            continue  # another model width: no need to build its module map
        if mismatch(state_dict, module_shapes(config)) is None:
            found.append(record.id)
    return found


def list_loras(settings, with_fits: bool = True) -> list[dict]:
    """Every LoRA file of the LoRAs folder plus the named ones of the preset table, with what they fit."""
    from wan_studio.loras.presets import table

    rows = []
    folder = loras_dir(settings)
    if folder.is_dir():
        for path in sorted(folder.glob("**/*.safetensors")):
            row = {"source": str(path.relative_to(folder)), **_safe_describe(path)}
            if with_fits:
                row["fits"] = fits(path, settings)
            rows.append(row)
    for name, named in table()["loras"].items():
        row = {"source": name, "name": name, "about": named.get("about", ""), "rank": named.get("rank"),
               "licence": named.get("licence", ""), "fits": list(named.get("fits", [])),
               "expert": named.get("expert", "both"), "non_commercial": bool(named.get("non_commercial"))}
        try:
            row["file"] = str(locate(name, settings)) if not named.get("tiny") else "(built locally)"
            row["state"] = "available"
        except LoraError:
            row["file"], row["state"] = f"{named['repo']}/{named['file']}", "not downloaded"
        rows.append(row)
    return rows


def _safe_describe(path: Path) -> dict:
    try:
        return describe(path)
    except LoraError as exc:
        return {"file": str(path), "name": path.name, "layout": "unreadable", "error": str(exc)}


# -- writing the Tiny Lightning stand-ins ----------------------------------------------------------
def _write_tiny_lora(path: Path, shapes: dict[str, tuple], layout: str = "diffusers", rank: int = 4, seed: int = 0,
                     scale: float = 0.5, blocks_only: bool = True, metadata: dict | None = None) -> Path:
    """Random LoRA matrices for the given module shapes, in one of the key layouts, for `ensure_tiny_lora`.
    Tests build their LoRA files from the published layouts (tests/lora_fixtures.py), not with this."""
    import torch
    from safetensors.torch import save_file

    generator = torch.Generator().manual_seed(seed)
    tensors = {}
    for module, shape in sorted(shapes.items()):
        match = re.match(r"blocks\.(\d+)\.(.+)$", module)
        if blocks_only and (match is None or match.group(2) not in _WAN_NAMES):
            continue
        out_features, in_features = shape[0], int(_prod(shape[1:]))
        down = torch.randn(rank, in_features, generator=generator) * scale
        up = torch.randn(out_features, rank, generator=generator) * scale
        block, name = match.group(1), match.group(2)
        wan = f"blocks.{block}.{_WAN_NAMES[name]}"
        if layout == "diffusers":
            tensors[f"transformer.{module}.lora_A.weight"], tensors[f"transformer.{module}.lora_B.weight"] = down, up
        elif layout == "peft":
            peft = f"base_model.model.{module}"
            tensors[f"{peft}.lora_A.weight"], tensors[f"{peft}.lora_B.weight"] = down, up
        elif layout == "wan":
            tensors[f"diffusion_model.{wan}.lora_A.weight"], tensors[f"diffusion_model.{wan}.lora_B.weight"] = down, up
        elif layout in ("lightx2v", "kijai", "seko"):
            prefix = "" if layout == "seko" else "diffusion_model."
            tensors[f"{prefix}{wan}.lora_down.weight"], tensors[f"{prefix}{wan}.lora_up.weight"] = down, up
            tensors[f"{prefix}{wan}.alpha"] = torch.tensor(float(rank))
            if layout == "lightx2v":
                tensors[f"{prefix}{wan}.diff_b"] = torch.randn(out_features, generator=generator) * scale
        elif layout == "kohya":
            kohya = "lora_unet_" + wan.replace(".", "_")
            tensors[f"{kohya}.lora_down.weight"], tensors[f"{kohya}.lora_up.weight"] = down, up
            tensors[f"{kohya}.alpha"] = torch.tensor(float(rank))
        else:
            raise ValueError(f"unknown layout {layout!r}; one of {LAYOUTS}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata or {})
    os.replace(tmp, path)
    return path


def ensure_tiny_lora(name: str, settings) -> Path:
    """Build (once) the Tiny stand-in of a Lightning LoRA, in the layout its real counterpart uses."""
    from wan_studio.loras.presets import lora_record
    from wan_studio.models.tiny import TINY_FORMAT_VERSION

    named = lora_record(name)
    path = Path(settings.tiny_models_dir) / "loras" / f"{name}-v{TINY_FORMAT_VERSION}.safetensors"
    if not path.is_file():
        target = next(c for c in catalog.checkpoints() if c.tiny == named["tiny"])
        component = "transformer_2" if named.get("expert") == "low" else "transformer"
        shapes = module_shapes(transformer_config(target, component, settings))
        _write_tiny_lora(path, shapes, layout=named.get("layout", "diffusers"), rank=named.get("rank", 4),
                   seed=named.get("seed", 0), metadata={"base_model": target.id, "about": named.get("about", "")})
    return path
