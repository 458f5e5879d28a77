"""What machine this is: CUDA, Apple MPS, CPU, or a Hugging Face ZeroGPU Space.

Two probes, both called explicitly, never at import:
- `probe_light()` uses NVML and the platform only (no torch, no CUDA initialisation), so the page
  can say which backend is active before torch is loaded, and so a ZeroGPU main process stays clean.
- `detect()` asks torch for the full picture (device name, memory, capability, bf16) and picks dtypes.

Dtypes: bf16 transformer and text encoder on CUDA, fp16 on MPS,
fp32 on CPU; the VAE is always fp32 because decode quality drops sharply in half precision.
"""

from __future__ import annotations

import os
import platform
import threading
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class Backend:
    kind: str  # cuda | mps | cpu | zerogpu
    device: str  # torch device string
    name: str
    total_memory_gb: float | None = None
    free_memory_gb: float | None = None
    capability: tuple[int, int] | None = None
    bf16: bool = False

    @property
    def has_gpu(self) -> bool:
        return self.kind != "cpu"

    @property
    def transformer_dtype(self) -> str:
        if self.kind in ("cuda", "zerogpu"):
            return "bfloat16" if self.bf16 or self.kind == "zerogpu" else "float16"
        if self.kind == "mps":
            return "float16"
        return "float32"

    @property
    def vae_dtype(self) -> str:
        return "float32"

    def describe(self) -> str:
        if self.kind == "cpu":
            return f"CPU ({self.name})"
        mem = f", {self.total_memory_gb:.0f} GB" if self.total_memory_gb else ""
        label = {"cuda": "CUDA", "mps": "Apple MPS", "zerogpu": "ZeroGPU"}[self.kind]
        return f"{label}: {self.name}{mem}"

    def as_dict(self) -> dict:
        return {
            "kind": self.kind, "device": self.device, "name": self.name,
            "total_memory_gb": self.total_memory_gb, "capability": self.capability,
            "transformer_dtype": self.transformer_dtype, "vae_dtype": self.vae_dtype,
        }


def is_zerogpu() -> bool:
    return bool(os.environ.get("SPACES_ZERO_GPU"))


def _nvml_first_gpu() -> tuple[str, float] | None:
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        try:
            if pynvml.nvmlDeviceGetCount() < 1:
                return None
            handle = pynvml.nvmlDeviceGetHandleByIndex(0)
            name = pynvml.nvmlDeviceGetName(handle)
            total = pynvml.nvmlDeviceGetMemoryInfo(handle).total / 2**30
            return (name.decode() if isinstance(name, bytes) else name), total
        finally:
            pynvml.nvmlShutdown()
    except pynvml.NVMLError:
        return None


def _cpu_name() -> str:
    return platform.processor() or platform.machine() or "cpu"


@lru_cache(maxsize=1)
def probe_light() -> Backend:
    """Backend guess without torch. Good enough for labels and defaults; `detect()` is authoritative."""
    if is_zerogpu():
        return Backend("zerogpu", "cuda", "ZeroGPU (RTX PRO 6000 Blackwell)", total_memory_gb=48.0, bf16=True)
    gpu = _nvml_first_gpu()
    if gpu:
        return Backend("cuda", "cuda", gpu[0], total_memory_gb=round(gpu[1], 1), bf16=True)
    if platform.system() == "Darwin" and platform.machine() == "arm64":
        return Backend("mps", "mps", "Apple silicon")
    return Backend("cpu", "cpu", _cpu_name())


@lru_cache(maxsize=1)
def detect() -> Backend:
    """The backend the engine runs on. Imports torch; on ZeroGPU it never touches CUDA here."""
    if is_zerogpu():
        return probe_light()
    if platform.system() == "Darwin":
        # must be set before torch loads so ops MPS lacks fall back to the CPU
        os.environ.setdefault("PYTORCH_ENABLE_MPS_FALLBACK", "1")
    import torch

    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        free, total = torch.cuda.mem_get_info(0)
        return Backend(
            "cuda", "cuda", props.name, total_memory_gb=round(total / 2**30, 1),
            free_memory_gb=round(free / 2**30, 1), capability=(props.major, props.minor),
            bf16=torch.cuda.is_bf16_supported(),
        )
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        total = torch.mps.recommended_max_memory() / 2**30
        return Backend("mps", "mps", "Apple silicon", total_memory_gb=round(total, 1))
    return Backend("cpu", "cpu", _cpu_name())


def torch_dtype(name: str):
    import torch

    return getattr(torch, name)


_ml_import_lock = threading.Lock()


def _quiet_optional_kernels() -> None:
    """torchao logs a warning per CUDA kernel library it cannot load on this build (CPU, other CUDA);
    the Python quantization paths we use work without them, so those lines are noise to a user."""
    import logging

    for name in ("torchao", "torch.utils._pytree", "diffusers.quantizers.torchao.torchao_quantizer"):
        logging.getLogger(name).setLevel(logging.ERROR)
    # the studio installs no torchvision on purpose (no CPU wheel on PyPI): transformers' note that it
    # falls back to the PIL image processors is about that choice, not a problem for the user
    quiet = logging.getLogger("transformers.utils.import_utils")
    if not any(isinstance(f, _TorchvisionFallbackNote) for f in quiet.filters):
        quiet.addFilter(_TorchvisionFallbackNote())


class _TorchvisionFallbackNote:
    def filter(self, record) -> bool:
        return "requires torchvision (not installed); falling back" not in record.getMessage()


def import_ml() -> None:
    """Import torch, transformers and diffusers once, one thread at a time.

    Their lazy module objects are not safe to initialise from two threads at once (a second thread
    can see a half-built `transformers` and fail with "cannot import name ..."), and the studio
    validates requests in server threads while the worker loads models.
    """
    with _ml_import_lock:
        _quiet_optional_kernels()
        import diffusers  # noqa: F401
        import torch  # noqa: F401
        import transformers

        transformers.PreTrainedTokenizerFast  # noqa: B018  resolve the lazy names we use everywhere
        transformers.UMT5EncoderModel  # noqa: B018
