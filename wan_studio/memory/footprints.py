"""Exact weight footprints of every checkpoint, without its weights.

Each component's full-size config ships as data (`data/component_configs.json`); the model is
instantiated under `torch.device("meta")`, so parameters get shapes but no storage, and counting is
exact and takes about a second for a 14B transformer. Tiny checkpoints are counted the same way from
the builders in `tiny.py`.

Besides the total, the memory plans need to know
- `castable`: parameters of the layers that FP8 storage (diffusers layerwise casting) and torchao
  weight quantization convert (Linear and Conv weights outside the model's skip patterns); the rest
  (norms, embeddings) stay in the compute dtype;
- `block` / `blocks`: the largest repeated block and how many there are, for block-level offload,
  which keeps only the non-block parameters and a block or two on the accelerator.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from wan_studio import catalog
from wan_studio.catalog import Checkpoint, shared_component

CONFIGS_FILE = Path(__file__).parents[1] / "data" / "component_configs.json"
# what layerwise casting and torchao leave alone in Wan transformers (diffusers' own skip list)
DEFAULT_SKIP = ("patch_embedding", "condition_embedder", "norm")


@dataclass(frozen=True)
class Footprint:
    component: str
    params: int
    castable: int  # params converted by FP8 storage / int8 / FP8 weight quantization
    block: int  # params of the largest repeated block (0 when the model has none)
    blocks: int  # repeated blocks, over every top-level block list
    in_blocks: int = 0  # params inside those blocks
    exact: bool = True  # False when only the catalog's rounded count is known

    @property
    def non_block(self) -> int:
        return self.params - self.in_blocks

    def bytes(self, bytes_per_param: float, castable_bytes: float | None = None) -> float:
        """Weight bytes when castable params take `castable_bytes` each and the rest `bytes_per_param`."""
        per_castable = bytes_per_param if castable_bytes is None else castable_bytes
        return self.castable * per_castable + (self.params - self.castable) * bytes_per_param


@lru_cache(maxsize=1)
def _data() -> dict:
    return json.loads(CONFIGS_FILE.read_text())


def config_ids(record: Checkpoint) -> dict[str, str]:
    """component name -> config id, for the components whose full config ships as data."""
    ids = dict(_data()["checkpoints"].get(record.id, {}))
    for component, shared_id in record.shared.items():
        if shared_id in _data()["components"] and component not in ("tokenizer", "image_processor"):
            ids[component] = shared_id
    return ids


def _import(dotted: str):
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _build_from_data(config_id: str):
    spec = _data()["components"][config_id]
    cls = _import(spec["class"])
    if "config_class" in spec:
        return cls(_import(spec["config_class"])(**spec["config"]))
    return cls.from_config(spec["config"])


def _count(component: str, model) -> Footprint:
    import torch

    skip = tuple(getattr(model, "_skip_layerwise_casting_patterns", None) or DEFAULT_SKIP)
    castable = 0
    for name, module in model.named_modules():
        if isinstance(module, (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)):
            if not any(pattern in name for pattern in skip):
                castable += sum(p.numel() for p in module.parameters(recurse=False))
    sizes = []  # the repeated blocks: top-level ModuleLists (`blocks`, `vace_blocks`, face adapters)
    for child in model.children():
        if isinstance(child, torch.nn.ModuleList):
            sizes += [sum(p.numel() for p in b.parameters()) for b in child]
    params = sum(p.numel() for p in model.parameters())
    return Footprint(component, params, castable, max(sizes, default=0), len(sizes), sum(sizes))


# `torch.device("meta")` is a thread-local mode; accelerate's init_empty_weights patches nn.Module for
# every thread, which would hand meta tensors to a model the worker is loading at the same moment.
@lru_cache(maxsize=None)
def _footprint_of_config(config_id: str, component: str) -> Footprint:
    import torch

    from wan_studio.backend import import_ml

    import_ml()
    with torch.device("meta"):
        model = _build_from_data(config_id)
    if "config_class" in _data()["components"][config_id]:
        model.tie_weights()  # transformers ties embeddings when it loads weights; on meta we do it here
    return _count(component, model)


@lru_cache(maxsize=None)
def _tiny_footprints(record_id: str) -> dict[str, Footprint]:
    import torch

    from wan_studio.backend import import_ml
    from wan_studio.models import tiny

    import_ml()
    record = catalog.get(record_id)
    found = {}
    with torch.device("meta"):
        found["transformer"] = _count("transformer", tiny.make_transformer(record.tiny))
        if record.is_moe:
            found["transformer_2"] = _count("transformer_2", tiny.make_transformer(record.tiny, seed=1))
        found["text_encoder"] = _count("text_encoder", tiny.make_text_encoder(tiny.UMT5_VOCAB_SIZE))
        found["vae"] = _count("vae", tiny.make_vae(sixteen_x=record.tiny == "ti2v"))
        if "image_encoder" in record.shared:
            found["image_encoder"] = _count("image_encoder", tiny.make_image_encoder()[0])
    return found


def _approximate(component: str, params_b: float) -> Footprint:
    """From the catalog's rounded count; a transformer is assumed to be built like the 14B dense one
    (40 blocks holding 97 % of the weights), which the S2V and Animate transformers are."""
    params = int(params_b * 1e9)
    if component.startswith("transformer"):
        in_blocks = int(params * 0.97)
        return Footprint(component, params, int(params * 0.98), in_blocks // 40, 40, in_blocks, exact=False)
    return Footprint(component, params, castable=int(params * 0.98), block=0, blocks=0, exact=False)


def footprints(record: Checkpoint) -> dict[str, Footprint]:
    """Every weight-holding component of the checkpoint: transformer(s), encoders, VAE, extras."""
    if record.is_tiny and record.tiny in {"dense", "moe", "i2v", "i2v-moe", "flf2v", "ti2v", "vace", "animate"}:
        return dict(_tiny_footprints(record.id))
    found = {}
    for component, config_id in config_ids(record).items():
        found[component] = _footprint_of_config(config_id, component)
    # components with no config in the data yet (an architecture diffusers lacks): the catalog's count
    for component, params_b in record.components.items():
        found.setdefault(component, _approximate(component, params_b))
    for component, shared_id in record.shared.items():
        if component in ("tokenizer", "image_processor") or component in found:
            continue
        found[component] = _approximate(component, shared_component(shared_id).params_b)
    return found


def annotator_footprint(annotator) -> Footprint:
    """An annotator's exact parameters (the models that make controls from a plain video), counted
    on the meta device like a checkpoint's components."""
    if annotator.is_tiny:
        return _tiny_annotator_footprint(annotator.id)
    return _footprint_of_config(annotator.id, annotator.kind)


@lru_cache(maxsize=None)
def _tiny_annotator_footprint(annotator_id: str) -> Footprint:
    import torch

    from wan_studio.models import tiny

    record = catalog.annotator(annotator_id)
    with torch.device("meta"):
        return _count(record.kind, tiny.build_annotator(record)[0])


def shipped_transformer_configs() -> dict[str, dict]:
    """checkpoint id -> its transformer's full-size diffusers config (with `_class_name`), for the
    checkpoints whose transformer is a diffusers class (LoRA shape checks read these)."""
    data = _data()
    found = {}
    for checkpoint_id, components in data["checkpoints"].items():
        spec = data["components"][components["transformer"]]
        if spec["class"].startswith("diffusers."):
            found[checkpoint_id] = {"_class_name": spec["class"].split(".", 1)[1], **spec["config"]}
    return found


def transformer_config(record: Checkpoint) -> dict:
    """The transformer's config (hidden size, layers, heads, ffn) for activation estimates."""
    config_id = config_ids(record).get("transformer")
    if config_id:
        return dict(_data()["components"][config_id]["config"])
    if record.is_tiny:
        from wan_studio.models import tiny

        return tiny._transformer_kwargs()
    # unknown architecture: the 14B dense shape, which the S2V and Animate transformers share
    return dict(_data()["components"]["wan2.1-t2v-14b"]["config"])
