"""Write a transformer's weights as the single files users have, in the original Wan key names
(`blocks.0.self_attn.q.weight`, `head.head.weight`, ...): bf16 (as ComfyUI's `*_bf16` and Wan2GP's
files), FP8 e4m3fn cast directly (Kijai's `*_fp8_e4m3fn`) and FP8 with a per-tensor scale (ComfyUI's
`*_fp8_scaled`: `<layer>.scale_weight` float32 beside each FP8 weight, the absmax over 448, and a
`scaled_fp8` marker tensor). In both FP8 files the Linear weights of the transformer blocks are FP8,
everything else bf16, as in the published files. The names are checked against upstream's WanModel
(tests/test_single_file.py). `header_only_file` writes a file of the right header and size whose data is
a hole (zeros, no disk): for what reads headers only, or measures memory."""

from __future__ import annotations

import json
from pathlib import Path

from tests.gguf_fixtures import original_name

PRECISIONS = ("bf16", "fp8", "fp8-scaled")


def original_state_dict(state_dict: dict, precision: str) -> dict:
    import torch

    fp8 = torch.float8_e4m3fn
    out = {}
    for name, tensor in state_dict.items():
        name = original_name(name)
        block_linear = name.startswith("blocks.") and name.endswith(".weight") and tensor.ndim == 2
        if precision == "bf16" or not block_linear:
            out[name] = tensor.to(torch.bfloat16).contiguous()
        elif precision == "fp8":
            out[name] = tensor.to(fp8).contiguous()
        else:
            scale = tensor.float().abs().max().clamp(min=1e-12) / torch.finfo(fp8).max
            out[name] = (tensor.float() / scale).to(fp8).contiguous()
            out[name[: -len(".weight")] + ".scale_weight"] = scale.reshape(())
    if precision == "fp8-scaled":
        out["scaled_fp8"] = torch.empty(0, dtype=fp8)
    return out


def write_single_file(state_dict: dict, path: Path, precision: str) -> Path:
    from safetensors.torch import save_file

    save_file(original_state_dict(state_dict, precision), str(path))
    return path


def header_only_file(path, state: dict, precision: str):
    """A safetensors file of the right header and size whose data is a hole: only its header is read."""
    import struct

    import numpy as np

    sizes = {"BF16": 2, "F8_E4M3": 1, "F32": 4}
    header, offset = {}, 0
    for name, shape in state.items():
        block_linear = name.startswith("blocks.") and name.endswith(".weight") and len(shape) == 2
        dtype = "F8_E4M3" if precision != "bf16" and block_linear else "BF16"
        entries = [(name, dtype, shape)]
        if dtype == "F8_E4M3" and precision == "fp8-scaled":
            entries.append((name[:-len(".weight")] + ".scale_weight", "F32", ()))
        for key, kind, dims in entries:
            count = int(np.prod(dims)) if dims else 1
            header[key] = {"dtype": kind, "shape": list(dims), "data_offsets": [offset, offset + count * sizes[kind]]}
            offset += count * sizes[kind]
    raw = json.dumps(header).encode()
    with path.open("wb") as handle:
        handle.write(struct.pack("<Q", len(raw)) + raw)
        handle.truncate(8 + len(raw) + offset)
    return path


def upstream_vae(config):
    """Upstream's own Wan 2.1 VAE (`WanVAE_`, wan22's wan/modules/vae2_1.py) at an AutoencoderKLWan's config."""
    import importlib.util

    spec = importlib.util.find_spec("wan")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("wan22 (the upstream reference) is not installed; `make test` installs it with --no-deps")
    path = Path(list(spec.submodule_search_locations)[0]) / "modules" / "vae2_1.py"
    module_spec = importlib.util.spec_from_file_location("upstream_vae2_1", path)  # it imports torch and einops only
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.WanVAE_(dim=config.base_dim, z_dim=config.z_dim, dim_mult=list(config.dim_mult),
                          num_res_blocks=config.num_res_blocks, attn_scales=list(config.attn_scales),
                          temperal_downsample=list(config.temperal_downsample))


def original_vae_state_dict(vae) -> dict:
    """A diffusers AutoencoderKLWan's weights under the names upstream's WanVAE_ gives them (the names of
    ComfyUI's `wan_2.1_vae.safetensors`), in bf16 as that file holds them. The names come from upstream's
    own module at the same config, each matched to its diffusers name by diffusers' converter; every
    name on both sides must be matched once, at the same shape."""
    import torch
    from diffusers.loaders.single_file_utils import convert_wan_vae_to_diffusers

    upstream = upstream_vae(vae.config).state_dict()
    by_storage = {tensor.data_ptr(): name for name, tensor in upstream.items()}
    converted = convert_wan_vae_to_diffusers(dict(upstream))
    ours = vae.state_dict()
    to_upstream = {by_storage[tensor.data_ptr()]: name for name, tensor in converted.items()}
    assert set(to_upstream) == set(upstream) and set(to_upstream.values()) == set(ours), "names left unmatched"
    assert all(upstream[name].shape == ours[to_upstream[name]].shape for name in upstream), "shapes differ"
    return {name: ours[to_upstream[name]].to(torch.bfloat16).contiguous() for name in upstream}
