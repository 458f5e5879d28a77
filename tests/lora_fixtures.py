"""LoRA files for tests, in the key layouts the community publishes (tests/data/lora_layouts.json).

The key names come from that data, written from the published files and diffusers' converters, never
from wan_studio.loras, so a wrong key map in the reader fails the tests instead of agreeing with itself.
Tensors are random, sized for the target transformer (`dims_of` its config, or published sizes).
"""

from __future__ import annotations

import json
from pathlib import Path

LAYOUTS_FILE = Path(__file__).resolve().parent / "data" / "lora_layouts.json"
LAYOUTS = json.loads(LAYOUTS_FILE.read_text())
# the output head maps dim to 16 latent channels x a 1x2x2 patch: 64 outputs on every Wan 2.1 / A14B model
WAN21_1_3B = {"dim": 1536, "ffn_dim": 8960, "head_out": 64}  # Wan 2.1 T2V 1.3B: 12 heads x 128, FFN 8960
WAN21_14B = {"dim": 5120, "ffn_dim": 13824, "head_out": 64}  # Wan 2.1 14B (and each A14B expert): 40 heads x 128


def dims_of(config: dict) -> dict:
    """The sizes a LoRA of this transformer config has: dim, ffn_dim and its block count."""
    patch = config["patch_size"]
    return {"dim": config["num_attention_heads"] * config["attention_head_dim"], "ffn_dim": config["ffn_dim"],
            "blocks": config["num_layers"], "head_out": config["out_channels"] * patch[0] * patch[1] * patch[2]}


def tiny_dims(model_id: str, settings, component: str = "transformer") -> dict:
    """`dims_of` the Tiny checkpoint's own config.json, as built on disk."""
    from wan_studio import catalog, models

    folder = Path(models.resolve(catalog.get(model_id), settings))
    return dims_of(json.loads((folder / component / "config.json").read_text()))


def lora_keys(layout: str, blocks, image_attention: bool = False) -> dict[str, tuple]:
    """Every key of a LoRA in `layout` over `blocks`, with its shape pattern (names from the data)."""
    spec = LAYOUTS["layouts"][layout]
    modules = LAYOUTS["modules"] + (LAYOUTS["image_modules"] if image_attention else [])
    keys: dict[str, tuple] = {}
    for block in blocks:
        for module in modules:
            name = module[spec["names"]]
            fill = dict(block=block, module=name)
            keys[spec["down"].format(**fill)] = ("rank", module["in"])
            keys[spec["up"].format(**fill)] = (module["out"], "rank")
            if "alpha" in spec:
                keys[spec["alpha"].format(**fill)] = ()
            if "bias" in spec:
                keys[spec["bias"].format(**fill)] = (module["out"],)
        extras = dict(spec.get("per_block", {}), **(spec.get("per_block_image", {}) if image_attention else {}))
        for template, shape in extras.items():
            keys[template.format(block=block)] = tuple(shape)
    for key, shape in spec.get("once", {}).items():  # outside the blocks (the output head)
        keys[key] = tuple(shape)
    return keys


def write_lora_file(path: Path, layout: str, dims: dict, rank: int = 4, seed: int = 0, blocks=None,
                    image_attention: bool = False, metadata: dict | None = None) -> Path:
    """A safetensors LoRA in `layout` for a transformer of `dims`; random matrices, alpha = rank."""
    import torch
    from safetensors.torch import save_file

    blocks = range(dims["blocks"]) if blocks is None else blocks
    sizes = {"rank": rank, "dim": dims["dim"], "ffn_dim": dims["ffn_dim"], "head_out": dims.get("head_out", 64)}
    generator = torch.Generator().manual_seed(seed)
    tensors = {}
    for key, pattern in lora_keys(layout, blocks, image_attention).items():
        shape = tuple(sizes[s] if isinstance(s, str) else s for s in pattern)
        if key.endswith(".alpha"):
            tensors[key] = torch.tensor(float(rank))
        else:
            tensors[key] = torch.randn(shape, generator=generator) * 0.5
    assert set(LAYOUTS["layouts"][layout]["example"]) <= set(tensors) or 0 not in blocks, \
        f"{layout}: the data's example keys are not what its templates make"
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=metadata or {})
    return path
