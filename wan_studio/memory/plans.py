"""Memory plans: what the swap manager does to a pipeline so it fits the machine.

A `Plan` is a typed set of switches that the libraries provide (diffusers layerwise casting,
torchao quantization, model / group / sequential offload, VAE tiling and slicing, attention
backend, compile). Each backend has a ladder of plans from fastest to smallest:

    max-speed -> balanced -> balanced-quantized -> low-vram -> minimum

`memory.choose` takes the first rung whose estimate (memory.estimate) fits the machine with a
safety margin; a pinned plan name starts at that rung. On out-of-memory the engine steps one rung
down (`next_rung`). Below the last rung `NoPlanFits` says what would fit instead.

Backend rules:
- CUDA: bf16; FP8 (torchao dynamic-activation FP8, layerwise FP8 storage) only on capability
  >= 8.9, int8 weight-only below; compile of the repeated blocks.
- ZeroGPU: bf16, no offload, FP8 for 14B and MoE on `large` (48 GB), `xlarge` (96 GB) when `large`
  cannot hold the run; AOTI instead of compile.
- MPS: fp16 transformer, never FP8, never compile, offload for 14B.
- CPU: fp32; int8 weight-only on the lower rungs.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from dataclasses import dataclass

import psutil

from wan_studio.catalog import Checkpoint
from wan_studio.errors import StudioError

RUNGS = ("max-speed", "balanced", "balanced-quantized", "low-vram", "minimum")
PLAN_NAMES = ("auto", "max-speed", "balanced", "low-vram", "minimum")
PLAN_LABELS = {
    "auto": "Auto", "max-speed": "Max speed", "balanced": "Balanced", "balanced-quantized": "Balanced (quantized)",
    "low-vram": "Low VRAM", "minimum": "Minimum",
}
# one line each for a newcomer reading the estimate line: what the plan does to fit
PLAN_HINTS = {
    "max-speed": "everything on the GPU", "balanced": "one model on the GPU at a time, the rest waits in RAM",
    "balanced-quantized": "one model at a time, its weights in 8 bits",
    "low-vram": "8-bit weights brought to the GPU a block at a time",
    "minimum": "every layer brought from RAM as it runs: the slowest",
}
QUANTIZATIONS = ("none", "fp8-storage", "fp8-weight", "fp8-dynamic", "int8-weight")
OFFLOADS = ("none", "model", "group", "sequential")
BACKENDS = ("cuda", "mps", "zerogpu-large", "zerogpu-xlarge", "cpu")
ZEROGPU_GB = {"large": 48.0, "xlarge": 96.0}
FP8_MIN_CAPABILITY = (8, 9)


class NoPlanFits(StudioError):
    """Even the smallest plan does not fit; the message says what would."""


@dataclass(frozen=True)
class Machine:
    """What a plan must fit: the accelerator's memory, the RAM, and what the backend can do."""

    kind: str  # cuda | mps | cpu | zerogpu
    memory_gb: float  # accelerator memory (on CPU: RAM)
    ram_gb: float
    name: str = ""
    capability: tuple[int, int] | None = None
    zerogpu_size: str | None = None  # large | xlarge on ZeroGPU
    # the compile setting: auto (CUDA with Triton; ZeroGPU's compiled blocks), on (the CPU too), off
    compile: str = "auto"

    @property
    def compiles(self) -> bool:
        """Whether plans compile the repeated blocks (or use ZeroGPU's compiled blocks)."""
        return self.compile == "on" or (self.compile == "auto" and self.kind in ("cuda", "zerogpu"))

    @property
    def fp8(self) -> bool:
        return self.kind == "zerogpu" or (self.kind == "cuda" and (self.capability or (0, 0)) >= FP8_MIN_CAPABILITY)

    @property
    def compute_dtype(self) -> str:
        if self.kind == "zerogpu":
            return "bfloat16"
        if self.kind == "cuda":
            return "bfloat16" if (self.capability or (8, 0)) >= (8, 0) else "float16"
        return "float16" if self.kind == "mps" else "float32"

    def describe(self) -> str:
        if self.kind == "zerogpu":
            return f"ZeroGPU {self.zerogpu_size} ({self.memory_gb:g} GiB)"
        if self.kind == "cpu":
            return f"CPU ({self.ram_gb:.0f} GiB RAM)"
        cap = f", capability {self.capability[0]}.{self.capability[1]}" if self.capability else ""
        label = "Apple MPS" if self.kind == "mps" else "CUDA"
        return f"{label} {self.name or ''} {self.memory_gb:g} GiB{cap}".replace("  ", " ")

    def with_zerogpu_size(self, size: str) -> "Machine":
        return dataclasses.replace(self, zerogpu_size=size, memory_gb=ZEROGPU_GB[size])


def simulated_machine(backend: str, vram_gb: float | None = None, capability: tuple[int, int] | None = None,
                      ram_gb: float | None = None, name: str = "") -> Machine:
    """A machine described on the command line or in tests (`--backend cuda --vram 16GiB`)."""
    if backend not in BACKENDS:
        raise StudioError(f"Unknown backend '{backend}'; choose one of {', '.join(BACKENDS)}.")
    if backend.startswith("zerogpu-"):
        size = backend.split("-", 1)[1]
        return Machine("zerogpu", ZEROGPU_GB[size], ram_gb or 64.0, "ZeroGPU", (12, 0), size)
    if backend == "cpu":
        ram = ram_gb or vram_gb or 32.0
        return Machine("cpu", ram, ram, name or "CPU")
    if vram_gb is None:
        raise StudioError(f"Say how much memory the {backend} device has, e.g. --vram 16GiB.")
    if backend == "mps":
        return Machine("mps", vram_gb, ram_gb or vram_gb, name or "Apple silicon")
    return Machine("cuda", vram_gb, ram_gb or max(32.0, 2 * vram_gb), name or "", capability or (8, 9))


def machine_from_backend(backend, limit_gb: float = 0.0, compile: str = "auto") -> Machine:
    """The machine at hand, from `wan_studio.backend.Backend` plus the RAM psutil reports; with a
    memory limit (the memory_limit_gb setting), no more of the device's memory than that. `compile`
    is the setting; "auto" on a CUDA machine without Triton (Windows, mostly) means no compile, so
    the estimate does not count its speed-up."""
    ram = psutil.virtual_memory().total / 2**30
    if backend.kind == "zerogpu":
        return Machine("zerogpu", ZEROGPU_GB["large"], ram, backend.name, (12, 0), "large", compile)
    if backend.kind == "cpu":
        ram = min(ram, limit_gb) if limit_gb else ram
        return Machine("cpu", ram, ram, backend.name, compile=compile)
    if backend.kind == "cuda" and compile == "auto" and importlib.util.find_spec("triton") is None:
        compile = "off"
    memory = backend.total_memory_gb or 8.0
    return Machine(backend.kind, min(memory, limit_gb) if limit_gb else memory, ram, backend.name, backend.capability,
                   compile=compile)


@dataclass(frozen=True)
class Plan:
    name: str  # a rung of RUNGS
    transformer_dtype: str
    quantization: str = "none"  # of the transformer(s)
    text_encoder: str = "accelerator"  # accelerator | offload (moved in only to encode) | cpu
    text_encoder_quantization: str = "none"
    offload: str = "none"
    vae_tiling: bool = False
    vae_tile: int = 256  # pixels, when tiling
    vae_slicing: bool = False
    attention: str = "native"  # diffusers attention backend name; native = PyTorch SDPA
    compile: str = "none"  # none | repeated-blocks | aoti
    attention_pinned: bool = False  # the user chose the backend (else the device's checked choice is used)

    @property
    def label(self) -> str:
        return PLAN_LABELS[self.name]

    @property
    def hint(self) -> str:
        return PLAN_HINTS[self.name]

    @property
    def weights_key(self) -> tuple:
        """What changes the weights themselves: changing it means reloading from disk. ZeroGPU's compiled
        blocks are not in it: they are put on and taken off the same weights like hooks."""
        compiled = "none" if self.compile == "aoti" else self.compile
        return (self.transformer_dtype, self.quantization, self.text_encoder_quantization, compiled)

    def describe(self) -> str:
        dtype = self.transformer_dtype
        parts = [dtype.replace("bfloat16", "bf16").replace("float16", "fp16").replace("float32", "fp32")]
        if self.quantization != "none":
            parts.append(self.quantization)
        parts.append("no offload" if self.offload == "none" else f"{self.offload} offload")
        if self.text_encoder != "accelerator" and self.offload == "none":
            parts.append(f"text encoder on {self.text_encoder}")
        if self.text_encoder_quantization != "none":
            parts.append(f"text encoder {self.text_encoder_quantization}")
        if self.vae_tiling:
            parts.append(f"VAE tiles {self.vae_tile}px" + (" + slicing" if self.vae_slicing else ""))
        if self.attention != "native":
            parts.append(f"{self.attention} attention")
        if self.compile != "none":
            parts.append(f"compile {self.compile}")
        return f"{self.label}: " + ", ".join(parts)

    def as_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["label"] = self.label
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "Plan":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def _attention_backend(machine: Machine) -> str:
    """What a plan names before the first job checks it: this device's checked choice when one is
    remembered, else the fastest installed candidate (memory/attention.py)."""
    from wan_studio.memory import attention
    from wan_studio.settings import load_settings

    known = attention.remembered(load_settings().models_dir / attention.STORE_NAME, machine.name or "")
    return attention.preferred(machine.kind, machine.capability, known.name if known else None)


# what this process learnt about checkpoints' compiled blocks (ZeroGPU: the studio's start, memory/aoti.py):
# blocks compiled here, and the catalog's repo variants that could not be fetched: model id ->
# {"local": {weights format: {"folder": ..., "seconds": compile time}}, "unfetched": {weights format: why}}
_learnt_blocks: dict[str, dict] = {}


def blocks_of(record: Checkpoint) -> dict:
    """ZeroGPU: a checkpoint's compiled blocks as this process knows them: the Hub repo the catalog names
    (its `extra["aoti"]`: repo and variants) with what this process learnt (`add_compiled_blocks`,
    `add_unfetched_blocks`)."""
    return {**record.extra.get("aoti", {}), **_learnt_blocks.get(record.id, {})}


def add_compiled_blocks(model_id: str, quantization: str, folder: str, seconds: float) -> None:
    """From now on this process's plans for the checkpoint count on blocks compiled here for its weights in
    `quantization` ("none": bf16)."""
    local = _learnt_blocks.setdefault(model_id, {}).setdefault("local", {})
    local[quantization] = {"folder": folder, "seconds": seconds}


def add_unfetched_blocks(model_id: str, quantization: str, reason: str) -> None:
    """From now on this process's plans for the checkpoint no longer count on its repo's blocks for weights
    in `quantization`: they could not be fetched (`reason`)."""
    _learnt_blocks.setdefault(model_id, {}).setdefault("unfetched", {})[quantization] = reason


def has_blocks(aoti: dict | None, quantization: str) -> bool:
    """ZeroGPU: whether compiled blocks (a checkpoint's `blocks_of`, memory/aoti.py) exist for a
    transformer with these weights: compiled here for them, or a Hub repo's variant for this format (a
    repo's `variants` name every format it serves, "none": its bf16 blocks) that this process has not
    failed to fetch."""
    return quantization in (aoti or {}).get("local", {}) or repo_blocks(aoti, quantization) is not None


def repo_blocks(aoti: dict | None, quantization: str) -> tuple[str, str | None] | None:
    """The Hub repo and variant (None: the repo's plain blocks) whose compiled blocks serve weights in
    `quantization`, where the catalog names one and this process has not failed to fetch it; else None."""
    aoti = aoti or {}
    if not aoti.get("repo") or quantization not in aoti.get("variants", {}) or quantization in aoti.get(
            "unfetched", {}):
        return None
    return aoti["repo"], aoti["variants"][quantization]


def ladder(machine: Machine, record: Checkpoint) -> list[Plan]:
    """The plans this machine can run for this checkpoint, fastest first."""
    dtype = machine.compute_dtype
    if machine.kind == "cpu":  # compiles only when the setting says "on"
        compiled = "repeated-blocks" if machine.compiles else "none"
        return [
            Plan("max-speed", dtype, compile=compiled),
            Plan("balanced", dtype, vae_tiling=True, compile=compiled),
            Plan("low-vram", dtype, "int8-weight", vae_tiling=True),
            Plan("minimum", dtype, "int8-weight", text_encoder_quantization="int8-weight", vae_tiling=True,
                 vae_tile=128, vae_slicing=True),
        ]
    if machine.kind == "mps":  # never FP8 (Metal has no FP8), never compile; the fp32 VAE always tiles
        return [
            Plan("max-speed", dtype, vae_tiling=True),
            Plan("balanced", dtype, text_encoder="offload", offload="model", vae_tiling=True),
            Plan("low-vram", dtype, text_encoder="offload", offload="group", vae_tiling=True),
            Plan("minimum", dtype, text_encoder="offload", offload="sequential", vae_tiling=True, vae_tile=128,
                 vae_slicing=True),
        ]
    attention = _attention_backend(machine)
    if machine.kind == "zerogpu":  # no CPU offload inside a reservation; AOTI (where compiled blocks exist) for compile
        def aoti(quantization: str) -> str:  # a Hub repo's blocks, or blocks compiled here, for these weights
            return "aoti" if machine.compiles and has_blocks(blocks_of(record), quantization) else "none"

        return [
            Plan("max-speed", dtype, attention=attention, compile=aoti("none")),
            Plan("balanced-quantized", dtype, "fp8-dynamic", vae_tiling=True, attention=attention,
                 compile=aoti("fp8-dynamic")),
        ]
    quantized = "fp8-dynamic" if machine.fp8 else "int8-weight"
    stored = "fp8-storage" if machine.fp8 else "int8-weight"
    compiled = "repeated-blocks" if machine.compiles else "none"  # with group offloading too, not sequential
    return [
        Plan("max-speed", dtype, attention=attention, compile=compiled),
        Plan("balanced", dtype, text_encoder="offload", offload="model", vae_tiling=True, attention=attention,
             compile=compiled),
        Plan("balanced-quantized", dtype, quantized, text_encoder="offload", offload="model", vae_tiling=True,
             attention=attention, compile=compiled),
        Plan("low-vram", dtype, stored, text_encoder="offload", offload="group", vae_tiling=True, attention=attention,
             compile=compiled),
        Plan("minimum", dtype, stored, text_encoder="offload", text_encoder_quantization="int8-weight",
             offload="sequential", vae_tiling=True, vae_tile=128, vae_slicing=True, attention=attention),
    ]


def next_rung(record: Checkpoint, machine: Machine, plan: Plan) -> Plan | None:
    """The plan one rung smaller than `plan` on this machine, or None at the bottom."""
    rungs = ladder(machine, record)
    names = [p.name for p in rungs]
    if plan.name not in names:
        return None
    index = names.index(plan.name)
    return rungs[index + 1] if index + 1 < len(rungs) else None
