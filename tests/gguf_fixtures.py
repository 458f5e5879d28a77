"""Write a transformer's weights as a GGUF file the way the community's Wan GGUF files are made:
the original Wan key names (`blocks.0.self_attn.q.weight`, `head.head.weight`, ...) and Q8_0 blocks
of 32 values where a row allows, full precision elsewhere. Written with the `gguf` package; our
loader is diffusers' single-file GGUF path, which maps the names back."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

# diffusers module name -> the original Wan name (the published checkpoints' layout)
TO_ORIGINAL = (
    (r"^condition_embedder\.time_embedder\.linear_1", "time_embedding.0"),
    (r"^condition_embedder\.time_embedder\.linear_2", "time_embedding.2"),
    (r"^condition_embedder\.text_embedder\.linear_1", "text_embedding.0"),
    (r"^condition_embedder\.text_embedder\.linear_2", "text_embedding.2"),
    (r"^condition_embedder\.time_proj", "time_projection.1"),
    (r"^scale_shift_table$", "head.modulation"),
    (r"^proj_out", "head.head"),
    (r"\.attn1\.", ".self_attn."), (r"\.attn2\.", ".cross_attn."),
    (r"\.to_out\.0\.", ".o."), (r"\.to_q\.", ".q."), (r"\.to_k\.", ".k."), (r"\.to_v\.", ".v."),
    (r"\.scale_shift_table$", ".modulation"),
    (r"\.ffn\.net\.0\.proj\.", ".ffn.0."), (r"\.ffn\.net\.2\.", ".ffn.2."),
    # Wan's norm3 is diffusers' norm2
    (r"\.norm2\.", ".norm_swap."), (r"\.norm3\.", ".norm2."), (r"\.norm_swap\.", ".norm3."),
)


def original_name(name: str) -> str:
    for pattern, replacement in TO_ORIGINAL:
        name = re.sub(pattern, replacement, name)
    return name


def write_gguf(state_dict: dict, path: Path) -> Path:
    import gguf

    writer = gguf.GGUFWriter(str(path), "wan")
    for name, tensor in state_dict.items():
        values = tensor.float().numpy()
        if values.ndim == 2 and values.shape[1] % 32 == 0:
            writer.add_tensor(original_name(name), gguf.quants.quantize(values, gguf.GGMLQuantizationType.Q8_0),
                              raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        else:
            writer.add_tensor(original_name(name), values.astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
