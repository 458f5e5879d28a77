"""The attention backend: the fastest one that is present and correct on this GPU, checked once.

Fastest first: SageAttention (its Blackwell build on capability 12.x), FlashAttention 3 on Hopper,
FlashAttention 2, cuDNN SDPA, PyTorch SDPA (`native`). The `_hub` variants are prebuilt kernels
that diffusers fetches through the `kernels` package into the Hugging Face cache (no local build);
they are tried only where `kernels` is installed, and offline they fail their check like a missing
package. MPS and CPU use SDPA.

At the first job on a device each candidate, in order, runs one small attention call that is
compared with SDPA's (within a tolerance fit for its precision: Sage quantises Q and K to int8);
the first that runs and agrees is used, and the answer is remembered per device and package
versions (`attention.json` in the models folder), so the check runs once. A user can pin a
backend (the request's `attention`, `--attention`, the API option, `attention` in config.json):
a pinned backend that fails its check falls back to SDPA with the reason.
"""

from __future__ import annotations

import importlib.util
import json
import threading
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Callable

BACKENDS = ("native", "_native_cudnn", "flash", "flash_hub", "_flash_3", "_flash_3_hub", "sage", "sage_hub",
            "sage_blackwell_hub")
LABELS = {"native": "PyTorch SDPA", "_native_cudnn": "cuDNN SDPA", "flash": "FlashAttention 2",
          "flash_hub": "FlashAttention 2 (Hub kernel)", "_flash_3": "FlashAttention 3",
          "_flash_3_hub": "FlashAttention 3 (Hub kernel)", "sage": "SageAttention",
          "sage_hub": "SageAttention (Hub kernel)",
          "sage_blackwell_hub": "SageAttention for Blackwell (Hub kernel)"}
PACKAGES = {"flash": "flash_attn", "_flash_3": "flash_attn_interface", "sage": "sageattention", "flash_hub": "kernels",
            "_flash_3_hub": "kernels", "sage_hub": "kernels", "sage_blackwell_hub": "kernels"}
TOLERANCE = {"sage": 0.06, "sage_hub": 0.06, "sage_blackwell_hub": 0.08}  # of the output's largest magnitude
DEFAULT_TOLERANCE = 0.02  # bf16 kernels that differ from SDPA only in summation order
VERSIONED = ("torch", "diffusers", "flash_attn", "flash_attn_3", "sageattention", "kernels")
STORE_NAME = "attention.json"  # in the models folder
# the kernel a backend runs: a `_hub` build is the same kernel fetched prebuilt, so the time model (its fit and
# the published speed-ups in data/calibration.json "attention_speed") knows each kernel by one name
KERNEL_OF = {"flash_hub": "flash", "_flash_3_hub": "_flash_3", "sage_hub": "sage"}
_lock = threading.Lock()


def kernel(name: str) -> str:
    """The one name the time model knows a backend's kernel by ("_flash_3_hub" -> "_flash_3")."""
    return KERNEL_OF.get(name, name or "native")


def candidates(kind: str, capability: tuple[int, int] | None) -> tuple[str, ...]:
    """The backends worth trying on a device, fastest first."""
    if kind not in ("cuda", "zerogpu") or (capability or (0, 0)) < (8, 0):
        return ("native",)
    if capability[0] >= 12:
        return ("sage_blackwell_hub", "sage", "flash", "flash_hub", "_native_cudnn", "native")
    if capability[0] == 9:
        return ("sage", "sage_hub", "_flash_3", "_flash_3_hub", "flash", "flash_hub", "_native_cudnn", "native")
    return ("sage", "sage_hub", "flash", "flash_hub", "_native_cudnn", "native")


def installed(name: str) -> bool:
    package = PACKAGES.get(name)
    return package is None or importlib.util.find_spec(package) is not None


def preferred(kind: str, capability, remembered: str | None = None) -> str:
    """What a plan names before any check: the device's remembered choice, else the fastest installed."""
    if remembered:
        return remembered
    return next(name for name in candidates(kind, capability) if installed(name))


def check(name: str, device: str) -> str | None:
    """Why `name` cannot be used on `device` (not installed, unsupported, a wrong result), or None."""
    if name == "native":
        return None
    if not installed(name):
        return f"{PACKAGES[name]} is not installed"
    try:
        import torch
        from diffusers.models.attention_dispatch import (
            AttentionBackendName,
            _check_attention_backend_requirements,
            _maybe_download_kernel_for_backend,
            dispatch_attention_fn,
        )

        backend = AttentionBackendName(name)
        _check_attention_backend_requirements(backend)
        _maybe_download_kernel_for_backend(backend)  # hub kernels: fetched once into the HF cache
        generator = torch.Generator(device="cpu").manual_seed(0)
        q, k, v = (torch.randn(1, 512, 8, 64, generator=generator).to(device, torch.bfloat16) for _ in range(3))
        out = dispatch_attention_fn(q, k, v, backend=backend).float()
        reference = dispatch_attention_fn(q, k, v, backend=AttentionBackendName.NATIVE).float()
    except Exception as exc:  # missing library, unsupported GPU, no network for a hub kernel
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}" if str(exc) else type(exc).__name__
    error = ((out - reference).abs().max() / reference.abs().max().clamp_min(1e-6)).item()
    tolerance = TOLERANCE.get(name, DEFAULT_TOLERANCE)
    return None if error <= tolerance else f"its result differs from SDPA's by {error:.3f} (more than {tolerance})"


@dataclass
class Choice:
    name: str
    messages: list[str] = field(default_factory=list)
    checked: dict = field(default_factory=dict)  # backend -> "ok" or why not

    @property
    def label(self) -> str:
        return LABELS.get(self.name, self.name)


def package_versions() -> dict[str, str]:
    found = {}
    for name in VERSIONED:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found


def device_key(device_name: str) -> str:
    return " | ".join([device_name, *(f"{k} {v}" for k, v in sorted(package_versions().items()))])


def remembered(store: Path | None, device_name: str) -> Choice | None:
    if store is None or not store.is_file():
        return None
    try:
        entry = json.loads(store.read_text()).get(device_key(device_name))
    except (OSError, ValueError):
        return None
    return Choice(entry["name"], list(entry.get("messages", [])), dict(entry.get("checked", {}))) if entry else None


def settle(device: str, device_name: str, kind: str, capability, pinned: str | None = None,
           store: Path | None = None, checker: Callable[[str, str], str | None] = check) -> Choice:
    """The backend this device uses: the pinned one if it passes its check, else the fastest that
    does (remembered in `store` per device and package versions, so each device is checked once)."""
    if pinned and pinned != "auto":
        if pinned not in BACKENDS:
            raise ValueError(f"unknown attention backend {pinned!r}")
        reason = checker(pinned, device) if kind in ("cuda", "zerogpu") or pinned == "native" else "it needs a CUDA GPU"
        if reason is None:
            return Choice(pinned, checked={pinned: "ok"})
        return Choice("native", [f"The pinned attention backend {LABELS[pinned]} cannot be used ({reason}); "
                                 "using PyTorch SDPA."], {pinned: reason})
    with _lock:
        known = remembered(store, device_name)
        if known is not None:
            return known
        choice = Choice("native")
        for name in candidates(kind, capability):
            reason = checker(name, device) if name != "native" else None
            choice.checked[name] = reason or "ok"
            if reason is None:
                choice.name = name
                break
        skipped = [f"{LABELS[n]} ({why})" for n, why in choice.checked.items() if why != "ok" and installed(n)]
        if skipped:  # one message: what was installed but failed, not every package that is absent
            choice.messages.append(f"Attention: {choice.label}; not used: " + "; ".join(skipped) + ".")
        if store is not None:
            _remember(store, device_name, choice)
        return choice


def _remember(store: Path, device_name: str, choice: Choice) -> None:
    try:
        data = json.loads(store.read_text()) if store.is_file() else {}
    except (OSError, ValueError):
        data = {}
    data[device_key(device_name)] = {"name": choice.name, "messages": choice.messages, "checked": choice.checked}
    try:
        store.parent.mkdir(parents=True, exist_ok=True)
        store.write_text(json.dumps(data, indent=1) + "\n")
    except OSError:
        pass  # a read-only models folder: the check simply runs again next start
