"""The swap manager: exactly one active pipeline on the accelerator.

Policy
- `activate(record, mode)` returns the pipeline for that checkpoint and mode. It is a no-op when
  that pipeline is already active.
- Same checkpoint, another pipeline class (T2V -> V2V on one checkpoint): built with diffusers'
  `from_pipe`, which shares every module, so nothing is loaded twice.
- Another checkpoint: the previous pipeline is released first (its own modules dropped, garbage
  collected, the CUDA cache emptied), so two never sit on the accelerator together.
- Components that checkpoints share (UMT5 text encoder + tokenizer, VAE, CLIP image encoder) are
  loaded once per shared id (catalog `shared`) and handed to every pipeline that declares them.
  Shared components the active pipeline does not use are parked in CPU memory.
- A memory plan (wan_studio/memory/) is applied on activation: weight conversions (FP8 storage,
  torchao quantization, compile) then runtime hooks (offload, VAE tiling, attention backend).
  A new plan for the active checkpoint swaps only the hooks when the weights can stay as they are,
  and reloads from disk when the dtype or quantization differs. Hooks come off before a pipeline
  is released, so shared components never carry another pipeline's offload hooks.
- One re-entrant lock guards every public method; the worker that runs jobs is the only caller
  that touches the accelerator.
"""

from __future__ import annotations

import gc
import importlib
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from wan_studio import models
from wan_studio.backend import Backend, detect, torch_dtype
from wan_studio.catalog import Checkpoint
from wan_studio.memory.plans import Plan, blocks_of
from wan_studio.models import OWN_PIPELINES, single_file
from wan_studio.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ActiveKey:
    model: str
    pipeline_class: str


def pipeline_class(name: str):
    import diffusers

    if name in OWN_PIPELINES:  # ours (S2V): diffusers has no such pipeline
        return getattr(importlib.import_module(OWN_PIPELINES[name]), name)
    return getattr(diffusers, name)


def module_bytes(modules) -> int:
    """Bytes of parameters and buffers of the given modules, each tensor counted once."""
    seen, total = set(), 0
    for module in modules:
        if not hasattr(module, "parameters"):
            continue
        for tensor in list(module.parameters()) + list(module.buffers()):
            if tensor.data_ptr() in seen or tensor.device.type == "meta":
                continue
            seen.add(tensor.data_ptr())
            total += tensor.numel() * tensor.element_size()
    return total


class SwapManager:
    def __init__(self, settings: Settings, backend: Backend | None = None):
        self.settings = settings
        self._backend = backend
        self._lock = threading.RLock()
        self._active = None
        self._active_key: ActiveKey | None = None
        self._active_plan: Plan | None = None
        self.plan_notes: list[str] = []  # what applying the active plan skipped or changed
        self._weight_notes: list[str] = []  # of those, what converting the active weights said
        self.attention = None  # memory.attention.Choice of the active pipeline
        self.files: dict[str, dict] = {}  # component -> the user's file it was loaded from (single_file.describe)
        self._shared: dict[str, dict[str, object]] = {}  # shared id -> {component name: object}
        self.loads = 0  # how many times weights were read from disk (for tests and stats)

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            self._backend = detect()
        return self._backend

    @property
    def active_key(self) -> ActiveKey | None:
        return self._active_key

    @property
    def active_plan(self) -> Plan | None:
        return self._active_plan

    @property
    def active_pipeline(self):
        return self._active

    @property
    def compiled_graphs(self) -> Path:
        """Where the graphs torch.compile made here are kept for the next start (memory/compile.py)."""
        from wan_studio.memory.compile import artifacts_prefix

        return artifacts_prefix(self.settings.models_dir, self.backend.name)

    def default_plan(self) -> Plan:
        """No offload, no quantization: what runs when no plan is asked for."""
        return Plan("max-speed", self.backend.transformer_dtype)

    def activate(self, record: Checkpoint, mode: str, plan: Plan | None = None):
        from wan_studio.memory import apply as plan_apply

        plan = plan or self.default_plan()
        with self._lock:
            key = ActiveKey(record.id, record.pipeline_class(mode))
            if key == self._active_key and plan == self._active_plan:
                return self._active
            cls = pipeline_class(key.pipeline_class)
            same_weights = (
                self._active is not None and self._active_key.model == record.id
                and self._active_plan.weights_key == plan.weights_key
            )
            if same_weights:  # only the hooks or the pipeline class change: keep the weights
                plan_apply.detach_runtime(self._active)
                pipe = self._active if key == self._active_key else cls.from_pipe(self._active)
                if pipe is not self._active:
                    pipe.set_progress_bar_config(disable=True)
            else:
                self.release()
                pipe = self._load(record, cls, plan)
                pipe.set_progress_bar_config(disable=True)
                self._weight_notes = plan_apply.convert_weights(pipe, plan, self.backend.device, self.compiled_graphs)
            notes = list(self._weight_notes)  # what converting the weights said; the rest is said anew
            self.attention = self._settle_attention(plan)
            notes += self.attention.messages
            if self.backend.kind == "zerogpu" and plan.compile == "none":
                from wan_studio.memory.aoti import why_uncompiled

                notes.append(why_uncompiled(record, plan, self.settings.compile))
            notes += plan_apply.attach_runtime(pipe, plan, self.backend.device, self.attention.name,
                                               blocks_of(record))
            self._active, self._active_key, self._active_plan = pipe, key, plan
            self.plan_notes = notes
            return pipe

    def _settle_attention(self, plan: Plan):
        """The attention backend for this device: checked once per device and package versions."""
        from wan_studio.memory import attention

        backend = self.backend
        gpu = backend.kind in ("cuda", "zerogpu")
        return attention.settle(backend.device, backend.name, backend.kind, backend.capability,
                                pinned=plan.attention if plan.attention_pinned else None,
                                store=self.settings.models_dir / attention.STORE_NAME if gpu else None)

    def _load(self, record: Checkpoint, cls, plan: Plan):
        folder = models.resolve(record, self.settings)
        backend = self.backend
        own_text_encoder = plan.text_encoder_quantization != "none"  # a quantized copy is never shared
        files = single_file.model_files(record, self.settings)  # components from the user's own files
        given = {}
        for component, shared_id in record.shared.items():
            if (own_text_encoder and component == "text_encoder") or component in files:
                continue
            cached = self._shared.get(shared_id, {}).get(component)
            if cached is not None:
                given[component] = cached
        if "tokenizer" in record.shared and "tokenizer" not in given and (folder / "tokenizer").is_dir():
            given["tokenizer"] = models.pipeline_tokenizer(folder)
        dtypes = {"default": torch_dtype(plan.transformer_dtype), "vae": torch_dtype(backend.vae_dtype)}
        for component, source in files.items():
            given[component] = single_file.load(record, component, source, folder, dtypes["default"], dtypes["vae"],
                                                self.settings)
        self.files = single_file.describe(record, self.settings, identify=True) if files else {}
        log.info("loading %s from %s (reusing %s)", record.id, folder, sorted(given) or "nothing")
        from wan_studio.memory.apply import load_quantization

        quantization = load_quantization(plan, [c for c in ("transformer", "transformer_2")
                                                if c not in given and (folder / c).is_dir()])
        pipe = cls.from_pretrained(folder, dtype=dtypes, **given,
                                   **({"quantization_config": quantization} if quantization else {}))
        self.loads += 1
        for component, shared_id in record.shared.items():
            obj = getattr(pipe, component, None)
            if obj is not None and not (own_text_encoder and component == "text_encoder") and component not in files:
                self._shared.setdefault(shared_id, {})[component] = obj
        self._park_unused_shared(record)
        return pipe

    def _park_unused_shared(self, record: Checkpoint) -> None:
        in_use = set(record.shared.values())
        for shared_id, parts in self._shared.items():
            if shared_id not in in_use:
                for obj in parts.values():
                    if hasattr(obj, "to"):
                        obj.to("cpu")

    def release(self) -> None:
        """Drop the active pipeline and free what only it held (shared components stay cached)."""
        with self._lock:
            if self._active is None:
                return
            from wan_studio.memory import apply as plan_apply

            log.info("releasing %s", self._active_key.model)
            plan_apply.detach_runtime(self._active)
            for component in ("text_encoder", "vae", "image_encoder"):  # shared parts wait on the CPU
                module = getattr(self._active, component, None)
                if module is not None and hasattr(module, "to") and not _is_quantized(module):
                    module.to("cpu")
            self._active, self._active_key, self._active_plan = None, None, None
            self.plan_notes, self._weight_notes = [], []
            free_memory()

    def make_room(self, gb: float) -> None:
        """Release the active pipeline when the GPU has less than `gb` GiB free: annotators making a
        job's controls run before its pipeline loads, and must not meet the last job's weights."""
        if gb <= 0 or self._active is None or self.backend.device != "cuda":
            return
        import torch

        free, _ = torch.cuda.mem_get_info()
        if free / 2**30 < gb:
            log.info("releasing %s to make %.1f GiB of room for the annotators", self._active_key.model, gb)
            self.release()

    def unload_all(self) -> None:
        """Release the active pipeline and the shared components too."""
        with self._lock:
            self.release()
            self._shared.clear()
            free_memory()

    def resident_bytes(self) -> dict[str, int]:
        """Weights held: of the active pipeline's own modules, and of the shared cache."""
        with self._lock:
            shared = [obj for parts in self._shared.values() for obj in parts.values()]
            shared_ids = {id(obj) for obj in shared}
            own = []
            if self._active is not None:
                own = [m for m in self._active.components.values() if id(m) not in shared_ids]
            return {"active": module_bytes(own), "shared": module_bytes(shared)}


def _is_quantized(module) -> bool:
    """torchao tensors cannot always move between devices; such modules are dropped, not parked."""
    return any(type(p).__module__.startswith("torchao") for p in module.parameters())


def free_memory() -> None:
    """What released models held: their cyclic garbage, then the accelerator's cached blocks."""
    gc.collect()
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    elif getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        torch.mps.empty_cache()


def limit_gpu_memory(backend, machine) -> None:
    """A memory limit holds on CUDA too: PyTorch's allocator refuses more than the plan was made for."""
    if backend.kind != "cuda" or not backend.total_memory_gb or machine.memory_gb >= backend.total_memory_gb:
        return
    import torch

    torch.cuda.set_per_process_memory_fraction(machine.memory_gb / backend.total_memory_gb)
