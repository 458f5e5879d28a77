"""Put a job's LoRAs on the active pipeline: load what is missing, then switch adapters on or off.

Policy
- A LoRA is loaded into a transformer once (adapter name = file stem + sha256 prefix) and stays
  attached while its pipeline is active; switching Fast <-> Quality, or between LoRA sets, only
  calls `set_adapters` / `disable_lora` on each transformer, never reloads weights.
- On a Wan 2.2 A14B (MoE) pipeline the HIGH LoRA goes to `transformer`, the LOW one to
  `transformer_2` (`load_into_transformer_2=True`); 'both' goes to each.
- Swapping to another checkpoint drops the pipeline, and with it every adapter it carried.
- Before loading, every matrix is checked against the loaded module's real shape (the request was
  checked against the config already; this covers checkpoints whose config was not on disk).
"""

from __future__ import annotations

import logging

from wan_studio import loras
from wan_studio.catalog import Checkpoint

log = logging.getLogger(__name__)


def transformers_of(pipe) -> dict:
    return {name: getattr(pipe, name) for name in ("transformer", "transformer_2")
            if getattr(pipe, name, None) is not None}


def loaded_adapters(module) -> set[str]:
    return set(getattr(module, "peft_config", None) or {})


def prepare(pipe, request, record: Checkpoint) -> dict[str, list[str]]:
    """Make exactly the request's LoRAs active on `pipe`; returns component -> active adapter names."""
    modules = transformers_of(pipe)
    wanted: dict[str, list[tuple[str, float]]] = {name: [] for name in modules}
    for lora in request.resolved_loras:
        for component in lora.targets(record):
            module = modules[component]
            if lora.adapter_name not in loaded_adapters(module):
                _load(pipe, module, component, lora, record)
            wanted[component].append((lora.adapter_name, lora.weight))
    for component, pairs in wanted.items():
        module = modules[component]
        if not loaded_adapters(module):
            continue
        if pairs:
            module.enable_lora()
            module.set_adapters([name for name, _ in pairs], weights=[weight for _, weight in pairs])
        else:
            module.disable_lora()
    # the preset's scheduler (UniPC for both presets) is what the Wan pipelines load with;
    # it is recorded, not forced, so a mode with its own scheduler (S2V) keeps it
    return {component: [name for name, _ in pairs] for component, pairs in wanted.items()}


def _load(pipe, module, component: str, lora: loras.ResolvedLora, record: Checkpoint) -> None:
    state_dict, _ = loras.load_converted(lora.path)
    shapes = {name: tuple(m.weight.shape) for name, m in module.named_modules()
              if getattr(m, "weight", None) is not None and m.weight.dim() >= 2}
    state_dict = loras.fit_to_target(state_dict, shapes)
    problem = loras.mismatch(state_dict, shapes)
    if problem:
        raise loras.LoraError(f"LoRA '{lora.source}' does not fit {record.name} ({component}): {problem}.")
    log.info("loading LoRA %s into %s as %s", lora.path.name, component, lora.adapter_name)
    pipe.load_lora_weights(state_dict, adapter_name=lora.adapter_name,
                           load_into_transformer_2=component == "transformer_2")
