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
- One re-entrant lock guards every public method; the worker that runs jobs is the only caller
  that touches the accelerator.
"""

from __future__ import annotations

import gc
import logging
import threading
from dataclasses import dataclass

from wan_studio import models
from wan_studio.backend import Backend, detect, torch_dtype
from wan_studio.catalog import Checkpoint
from wan_studio.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ActiveKey:
    model: str
    pipeline_class: str


def pipeline_class(name: str):
    import diffusers

    from pipelines import OWN_PIPELINES

    if name in OWN_PIPELINES:  # ours (S2V): diffusers has no such pipeline
        import importlib

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

    def activate(self, record: Checkpoint, mode: str):
        with self._lock:
            key = ActiveKey(record.id, record.pipeline_class(mode))
            if key == self._active_key:
                return self._active
            cls = pipeline_class(key.pipeline_class)
            if self._active is not None and self._active_key.model == record.id:
                pipe = cls.from_pipe(self._active)
            else:
                self.release()
                pipe = self._load(record, cls)
            pipe.set_progress_bar_config(disable=True)
            self._active, self._active_key = pipe, key
            return pipe

    def _load(self, record: Checkpoint, cls):
        folder = models.resolve(record, self.settings)
        backend = self.backend
        given = {}
        for component, shared_id in record.shared.items():
            cached = self._shared.get(shared_id, {}).get(component)
            if cached is not None:
                given[component] = cached
        dtypes = {"default": torch_dtype(backend.transformer_dtype), "vae": torch_dtype(backend.vae_dtype)}
        log.info("loading %s from %s (reusing %s)", record.id, folder, sorted(given) or "nothing")
        pipe = cls.from_pretrained(folder, dtype=dtypes, **given)
        self.loads += 1
        for component, shared_id in record.shared.items():
            obj = getattr(pipe, component, None)
            if obj is not None:
                self._shared.setdefault(shared_id, {})[component] = obj
        self._park_unused_shared(record)
        return pipe.to(backend.device)

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
            log.info("releasing %s", self._active_key.model)
            self._active, self._active_key = None, None
            _free_memory()

    def unload_all(self) -> None:
        """Release the active pipeline and the shared components too."""
        with self._lock:
            self.release()
            self._shared.clear()
            _free_memory()

    def resident_bytes(self) -> dict[str, int]:
        """Weights held: of the active pipeline's own modules, and of the shared cache."""
        with self._lock:
            shared = [obj for parts in self._shared.values() for obj in parts.values()]
            shared_ids = {id(obj) for obj in shared}
            own = []
            if self._active is not None:
                own = [m for m in self._active.components.values() if id(m) not in shared_ids]
            return {"active": module_bytes(own), "shared": module_bytes(shared)}


def _free_memory() -> None:
    gc.collect()
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    elif getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        torch.mps.empty_cache()
