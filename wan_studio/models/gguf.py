"""GGUF transformers: a checkpoint's transformer from a quantized `.gguf` file (Q4-Q8, as owners of
8-12 GB cards run Wan), loaded through diffusers' single-file GGUF path.

config.json names the file per checkpoint, for its transformer (and Wan 2.2 A14B's second expert):

    "transformer_files": {"wan2.1-t2v-14b": "/models/wan2.1-t2v-14b-Q5_K_M.gguf",
                          "wan2.2-t2v-a14b": {"transformer": "hf://owner/repo/high-Q4.gguf",
                                              "transformer_2": "hf://owner/repo/low-Q4.gguf"}}

The rest of the pipeline (text encoder, VAE, the transformer's config) comes from the checkpoint's
folder as usual. The weights stay quantized on the device and are dequantized layer by layer, so
the memory plan counts the file's real size and applies no other quantization to them.
"""

from __future__ import annotations

import json
from pathlib import Path

from wan_studio.errors import ModelNotAvailable, StudioError


def local_file(source: str, settings, allow_download: bool = False) -> Path:
    """The GGUF file on disk: a path, or an hf://owner/repo/path/file.gguf from the cache (or the Hub)."""
    if source.startswith("hf://"):
        from wan_studio.models.hub import hub_file

        return hub_file(source, "GGUF file", allow_download)
    path = Path(source).expanduser()
    if path.suffix.lower() != ".gguf":
        raise StudioError(f"{path.name} is not a .gguf file (transformer_files takes GGUF files).")
    if not path.is_file():
        raise ModelNotAvailable(f"The GGUF file {path} does not exist.")
    return path


def load(record, component: str, source: str, folder: Path, dtype, settings, cls=None):
    """The transformer from a GGUF file, its config from the checkpoint's folder."""
    import diffusers

    path = local_file(source, settings, allow_download=getattr(settings, "auto_download", False))
    if cls is None:  # the class the checkpoint's folder names for this component (VACE, Animate: their own)
        index = json.loads((Path(folder) / "model_index.json").read_text())
        cls = getattr(diffusers, index.get(component, [None, "WanTransformer3DModel"])[1])
    try:
        quantization = diffusers.GGUFQuantizationConfig(compute_dtype=dtype)
        return cls.from_single_file(str(path), quantization_config=quantization, config=str(folder),
                                    subfolder=component, torch_dtype=dtype)
    except ImportError as exc:
        raise StudioError(f"Loading GGUF files needs the gguf package: pip install gguf ({exc}).") from exc
    except (ValueError, KeyError, RuntimeError) as exc:
        raise StudioError(f"The GGUF file {path.name} does not fit {record.name}'s {component}: "
                          f"{str(exc).splitlines()[0][:200]}") from exc
