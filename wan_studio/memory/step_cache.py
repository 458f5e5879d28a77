"""Step caching: skip transformer work at denoising steps whose result barely changes.

A job's `cache` setting (off | balanced | aggressive) becomes one of diffusers' cache hooks on each
transformer of the active pipeline, for that job only (applied after its LoRAs, so the cache hook
sits outside group offloading and a skipped block is never moved to the GPU; removed when the job
ends). Which hook, per checkpoint and mode (the mode's request declares which kind fits its pipeline,
`ModeInfo.step_cache`; the levels and ratios are data: presets/step_cache.json):

- MagCache where the checkpoint has magnitude ratios (published by the MagCache authors for the
  Wan checkpoints; measured by `scripts/magcache_ratios.py` for the Tiny ones). On Wan 2.2 A14B each
  expert gets its own part of the curve.
- FirstBlockCache otherwise: skip the other blocks while the first block's residual stays close.
- TaylorSeer for VACE and S2V: their pipelines add control hints or audio between the blocks, so a
  block-level skip would add them twice; TaylorSeer predicts each attention and feed-forward output
  instead and leaves the between-block additions alone.
- None for V2V (diffusers' V2V pipeline opens no cond/uncond cache contexts) and Animate (its
  segments would share one stale state): the job runs without and says so.

Each job counts what was skipped (blocks, or predicted module calls for TaylorSeer) for its recipe.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

SETTINGS = ("off", "balanced", "aggressive")
DATA_FILE = Path(__file__).resolve().parents[2] / "presets" / "step_cache.json"
TAYLORSEER_MODULES = [r"blocks\.\d+\.attn\d", r"blocks\.\d+\.ffn"]  # Wan's names (diffusers' defaults match none)
_HOOKS = {"magcache": "mag_cache_leader_block_hook", "first-block": "fbc_leader_block_hook"}


@lru_cache(maxsize=1)
def _data() -> dict:
    return json.loads(DATA_FILE.read_text())


def magnitude_ratios(record, conditioning: str) -> dict | None:
    """The MagCache curve for a checkpoint run from text or from an image, or None."""
    for entry in _data()["magcache_ratios"]:
        if entry["checkpoint"] == record.id and entry["conditioning"] in (conditioning, "any"):
            return entry
    return None


def conditioning_of(request) -> str:
    """What the video starts from, for the ratios: "image" when the request has one, else "text"."""
    return "image" if getattr(request, "image", None) else "text"


@dataclass(frozen=True)
class CacheFit:
    """Which kind of step cache a mode's pipeline can take, as its request declares it (ModeInfo.step_cache)."""

    kind: str  # "blocks" (MagCache, FirstBlockCache), "modules" (TaylorSeer) or "none"
    reason: str = ""  # "none": why the mode runs without one


SKIP_BLOCKS = CacheFit("blocks")  # MagCache where the checkpoint has ratios, else FirstBlockCache
# TaylorSeer: for pipelines that add to the hidden states between blocks (control hints, audio), which
# a block-level skip would add twice
PREDICT_MODULES = CacheFit("modules")


def no_step_cache(reason: str) -> CacheFit:
    return CacheFit("none", reason)


def method_for(record, fit: CacheFit, conditioning: str) -> tuple[str | None, str | None]:
    """(hook, None), or (None, why the mode runs without a step cache); `fit`: request.mode_info.step_cache."""
    if fit.kind == "none":
        return None, fit.reason
    if fit.kind == "modules":
        return "taylorseer", None
    return ("magcache" if magnitude_ratios(record, conditioning) else "first-block"), None


def expected_skip(setting: str, method: str | None) -> float:
    """The share of transformer work a setting is expected to skip (for the estimate; data, not measured here)."""
    if setting == "off" or method is None:
        return 0.0
    return float(_data()["levels"][setting]["expected_skip"][method])


@dataclass
class StepCache:
    """The step cache of one job: what was applied and what it skipped."""

    setting: str
    method: str | None = None
    message: str | None = None  # why the job runs without one
    unit: str = "blocks"
    computed: int = 0
    skipped: int = 0
    _modules: list = field(default_factory=list, repr=False)
    _handles: list = field(default_factory=list, repr=False)

    @classmethod
    def from_recipe(cls, found: dict) -> "StepCache":
        """What another process's cache did (a split job's rank 0), for this one's recipe."""
        return cls(found["setting"], found.get("method"), found.get("message"), found.get("unit", "blocks"),
                   found.get("computed", 0), found.get("skipped", 0))

    def as_recipe(self) -> dict:
        found = {"setting": self.setting, "method": self.method}
        if self.method is not None:
            found.update(unit=self.unit, computed=self.computed, skipped=self.skipped)
        if self.message:
            found["message"] = self.message
        return found

    def remove(self) -> None:
        """Take the hooks off: the next job starts from an uncached transformer."""
        for handle in self._handles:
            handle.remove()
        for module in self._modules:
            if getattr(module, "is_cache_enabled", False):
                module.disable_cache()
        self._handles.clear()
        self._modules.clear()


def transformers_of(pipe) -> list:
    return [module for module in (getattr(pipe, "transformer", None), getattr(pipe, "transformer_2", None))
            if module is not None]


def apply(pipe, request, record) -> StepCache:
    """Put the job's step cache on the pipeline's transformer(s); `remove()` it when the job ends."""
    setting = request.cache or "off"
    for module in transformers_of(pipe):  # a cache left by a job that failed before removing it
        if getattr(module, "is_cache_enabled", False):
            module.disable_cache()
    if setting == "off":
        return StepCache(setting)
    conditioning = conditioning_of(request)
    method, reason = method_for(record, request.mode_info.step_cache, conditioning)
    if method is None:
        return StepCache(setting, message=f"Ran without a step cache: {reason}.")
    modules = transformers_of(pipe)
    if not all(hasattr(module, "enable_cache") for module in modules):
        return StepCache(setting,
                         message=f"Ran without a step cache: {type(modules[0]).__name__} has no cache support.")
    cache = StepCache(setting, method, unit="module calls" if method == "taylorseer" else "blocks")
    level = _data()["levels"][setting][method]
    steps = request.steps
    for module, expert_steps, ratios in _per_expert(pipe, modules, record, conditioning, steps, method):
        module.enable_cache(_config(method, level, expert_steps, ratios))
        cache._modules.append(module)
        _count(cache, module, method)
    return cache


def _per_expert(pipe, modules, record, conditioning, steps, method):
    """(transformer, the steps it runs, its part of the MagCache curve) for each expert."""
    ratios = magnitude_ratios(record, conditioning)["ratios"] if method == "magcache" else None
    if len(modules) == 1:
        return [(modules[0], steps, ratios)]
    high = _high_noise_steps(pipe, steps)
    if ratios is not None:  # the published A14B curve spans both experts: resample, then split at the switch
        import torch
        from diffusers.hooks.mag_cache import nearest_interp

        ratios = nearest_interp(torch.tensor(ratios), steps).tolist()
        return [(modules[0], high, ratios[:high]), (modules[1], steps - high, ratios[high:])]
    return [(modules[0], high, None), (modules[1], steps - high, None)]


def _high_noise_steps(pipe, steps: int) -> int:
    """How many of the job's steps the high-noise expert runs (Wan 2.2 A14B switches at boundary_ratio)."""
    scheduler = copy.deepcopy(pipe.scheduler)
    scheduler.set_timesteps(steps)
    boundary = pipe.config.boundary_ratio * scheduler.config.num_train_timesteps
    return max(1, min(steps - 1, int((scheduler.timesteps >= boundary).sum())))


def _config(method: str, level: dict, steps: int, ratios):
    import diffusers

    if method == "magcache":
        return diffusers.MagCacheConfig(threshold=level["threshold"], max_skip_steps=level["max_skip_steps"],
                                        retention_ratio=level["retention_ratio"], num_inference_steps=steps,
                                        mag_ratios=ratios)
    if method == "first-block":
        return diffusers.FirstBlockCacheConfig(threshold=level["threshold"])
    warmup = max(1, round(level["warmup"] * steps))
    return diffusers.TaylorSeerCacheConfig(cache_interval=level["cache_interval"], disable_cache_before_step=warmup,
                                           disable_cache_after_step=max(warmup + 1, steps - level["final_steps"]),
                                           cache_identifiers=TAYLORSEER_MODULES)


def _count(cache: StepCache, module, method: str) -> None:
    """Count skipped work during the run (the pipeline resets the hooks' state when it returns)."""
    if method == "taylorseer":
        for sub in module.modules():
            registry = getattr(sub, "_diffusers_hook", None)
            hook = registry.get_hook("taylorseer_cache") if registry is not None else None
            if hook is not None:
                hook._measure_should_compute = _counting(cache, hook._measure_should_compute)
        return
    blocks = len(module.blocks)
    skipped_per_call = blocks if method == "magcache" else blocks - 1  # FirstBlockCache always runs the first

    def after_call(_module, _args, _output):
        state = module.blocks[0]._diffusers_hook.get_hook(_HOOKS[method]).state_manager.get_state()
        if state.should_compute:
            cache.computed += blocks
        else:
            cache.computed += blocks - skipped_per_call
            cache.skipped += skipped_per_call

    cache._handles.append(module.register_forward_hook(after_call))


def _counting(cache: StepCache, measure):
    def wrapped():
        should_compute, state = measure()
        if should_compute:
            cache.computed += 1
        else:
            cache.skipped += 1
        return should_compute, state

    return wrapped
