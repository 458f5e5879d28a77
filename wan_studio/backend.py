"""What machine this is: CUDA, Apple MPS, CPU, or a Hugging Face ZeroGPU Space; how many NVIDIA GPUs
it has and whether NVLink joins them (`gpu_count`, `gpu_link_gb_s`: NVML only).

Two probes, both called explicitly, never at import:
- `probe_light()` uses NVML and the platform only (no torch, no CUDA initialisation), so the page
  can say which backend is active before torch is loaded, and so a ZeroGPU main process stays clean.
- `detect()` asks torch for the full picture (device name, memory, capability, bf16) and picks dtypes.

Dtypes: bf16 transformer and text encoder on CUDA, fp16 on MPS,
fp32 on CPU; the VAE is always fp32 because decode quality drops sharply in half precision.
"""

from __future__ import annotations

import logging
import os
import platform
import threading
from dataclasses import dataclass
from functools import lru_cache

NVLINK_GB_S = 25.0  # one link, one way (NVLink 2 to 4), where NVML does not report the speed


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


@lru_cache(maxsize=1)
def gpu_count() -> int:
    """NVIDIA GPUs on this machine (NVML, without loading torch); 0 where there is none."""
    try:
        import pynvml
    except ImportError:
        return 0
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return 0
    try:
        return int(pynvml.nvmlDeviceGetCount())
    finally:
        pynvml.nvmlShutdown()


@lru_cache(maxsize=1)
def gpu_link_gb_s() -> float | None:
    """GB/s one way from a GPU to the others when NVLink joins them: GPU 0's active links times their
    speed, as NVML reports them; None where the GPUs talk over PCIe (or there is no NVIDIA GPU)."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return None
    try:
        if pynvml.nvmlDeviceGetCount() < 2:
            return None
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        active = 0
        for link in range(pynvml.NVML_NVLINK_MAX_LINKS):
            try:
                active += pynvml.nvmlDeviceGetNvLinkState(handle, link) == pynvml.NVML_FEATURE_ENABLED
            except pynvml.NVMLError:  # no such link, or no NVLink at all
                break
        if not active:
            return None
        try:
            field = pynvml.nvmlDeviceGetFieldValues(handle, [pynvml.NVML_FI_DEV_NVLINK_SPEED_MBPS_COMMON])[0]
            per_link = field.value.uiVal / 1000 if field.nvmlReturn == 0 and field.value.uiVal else NVLINK_GB_S
        except pynvml.NVMLError:
            per_link = NVLINK_GB_S
        return active * per_link
    finally:
        pynvml.nvmlShutdown()


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


# Library log lines a user can do nothing about: (logger, a piece of the line). Each is dropped by
# its text, so every other line of the same library still shows.
LIBRARY_NOISE = (
    # torchao tries each CUDA kernel library it ships; on a CPU build or another CUDA some do not load,
    # and the quantization paths the memory plans use do not need them
    ("torchao", "Failed to load "),
    # torch's deprecation notice is for torchao's own code, which registers its enums with pytree
    ("torch.utils._pytree", "is an Enum subclass and is now natively supported"),
    # diffusers looks for torchao classes that torchao 0.18 moved; only checkpoints saved already
    # quantized by torchao would need them, and the studio quantizes at load time instead
    ("diffusers.quantizers.torchao.torchao_quantizer", "Unable to import `torchao` Tensor objects"),
    # the studio installs no torchvision on purpose (no CPU wheel on PyPI): transformers' note that it
    # falls back to the PIL image processors is about that choice, not a problem for the user
    ("transformers.utils.import_utils", "requires torchvision (not installed); falling back"),
)


class _DropLine(logging.Filter):
    def __init__(self, text: str):
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in record.getMessage()


def quiet_library_noise() -> None:
    """Drop the LIBRARY_NOISE lines, and only those. The CLI and the studio call this first, before
    any library is imported (the lines come at import); import_ml calls it again. Idempotent."""
    for name, text in LIBRARY_NOISE:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropLine) and f.text == text for f in logger.filters):
            logger.addFilter(_DropLine(text))


def import_ml() -> None:
    """Import torch, transformers and diffusers once, one thread at a time.

    Their lazy module objects are not safe to initialise from two threads at once (a second thread
    can see a half-built `transformers` and fail with "cannot import name ..."), and the studio
    validates requests in server threads while the worker loads models.
    """
    with _ml_import_lock:
        quiet_library_noise()
        import diffusers  # noqa: F401
        import torch  # noqa: F401
        import transformers

        transformers.PreTrainedTokenizerFast  # noqa: B018  resolve the lazy names we use everywhere
        transformers.UMT5EncoderModel  # noqa: B018
