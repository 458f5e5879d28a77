"""Fast / Quality presets, resolved from the data in presets/presets.json.

    resolve(checkpoint, mode, preset, user_values) -> PresetResolution(values, loras, messages)

- Quality: the checkpoint's catalog defaults, Lightning LoRAs off.
- Fast: 4 steps, guidance 1.0 (and guidance_2 1.0 on MoE) with the checkpoint's Lightning LoRA(s);
  where none exists but a FastWan full checkpoint does (and is on this machine) that checkpoint
  serves the run; otherwise Quality values with a message naming the reason (the fallback rule).
- fast-hybrid (Wan 2.2 I2V only): the Wan 2.1 lightx2v I2V LoRA on both experts.
- the named distills (lightx2v-1022, lightx2v-720p, lightx2v-1217): a newer Wan 2.2 distill LoRA pair
  each, at the steps, guidance, shift and sampler its release publishes (presets.json distill_values).
A value the user typed always wins; `overrides` records which ones differed from the preset.
Beside the LoRA manager, above models/: Fast names Lightning LoRAs, or a FastWan checkpoint when it is
downloaded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from wan_studio import catalog
from wan_studio.catalog import Checkpoint
from wan_studio.errors import RequestError

PRESETS_FILE = Path(__file__).resolve().parents[2] / "presets" / "presets.json"
PRESET_FIELDS = ("steps", "guidance", "guidance_2", "flow_shift")


@lru_cache(maxsize=1)
def table() -> dict:
    return json.loads(PRESETS_FILE.read_text())


# the named distill presets (a newer Wan 2.2 distill LoRA pair each) come after the three kinds
DISTILLS = tuple(table()["distills"])
PRESETS = ("fast", "quality", "fast-hybrid", *DISTILLS)
LABELS = {"fast": "Fast (Lightning, 4 steps)", "quality": "Quality", "fast-hybrid": "Fast, hybrid I2V LoRA (advanced)",
          **{name: entry["label"] for name, entry in table()["distills"].items()}}


def lora_record(name: str) -> dict | None:
    return table()["loras"].get(name)


@dataclass
class PresetResolution:
    preset: str | None
    model: str  # the checkpoint that serves the run (a FastWan checkpoint may stand in)
    values: dict = field(default_factory=dict)  # steps, guidance, guidance_2 (MoE), flow_shift, sampler, scheduler
    loras: list[dict] = field(default_factory=list)  # {source, weight, expert}
    messages: list[str] = field(default_factory=list)
    overrides: dict = field(default_factory=dict)  # user values that differ from the preset's
    source: str = ""  # where the values were published

    def __iter__(self):  # values, loras, messages = resolve(...)
        return iter((self.values, self.loras, self.messages))

    @property
    def sampler(self) -> str:
        """How the run samples: "euler" where a distill release samples with flow Euler, else the
        checkpoint's own scheduler ("unipc")."""
        return self.values.get("sampler", "unipc")

    def as_recipe(self) -> dict:
        found = {"name": self.preset, "model": self.model, "values": self.values, "overrides": self.overrides,
                 "messages": self.messages}
        return {**found, "source": self.source} if self.source else found


def _fast_entry(record: Checkpoint, mode: str, preset: str) -> dict | None:
    key = "fast_hybrid" if preset == "fast-hybrid" else "fast"
    return table()[key].get(record.id, {}).get(mode)


def _lora_specs(names: list) -> list[dict]:
    specs = []
    for item in names:
        item = {"lora": item} if isinstance(item, str) else dict(item)
        record = lora_record(item["lora"])
        specs.append({"source": item["lora"], "weight": float(item.get("weight", 1.0)),
                      "expert": item.get("expert") or record.get("expert") or "both"})
    return specs


def _quality_values(record: Checkpoint) -> dict:
    scheduler = table()["quality_values"]["scheduler"]
    if record.scheduler == "dmd":  # a distilled checkpoint samples at its own timesteps (pipelines/common.py)
        scheduler = f"dmd: {', '.join(map(str, record.timesteps))}"
    values = {"steps": record.steps, "guidance": record.guidance, "scheduler": scheduler}
    if record.is_moe:
        values["guidance_2"] = record.guidance_2
    return values


def _fast_values(record: Checkpoint, release: str | None = None) -> tuple[dict, str]:
    """Fast's values, or those a distill release publishes (`distill_values`: steps, guidance, shift,
    sampler), with their source."""
    if release:
        published = table()["distill_values"][release]
        values, source = dict(published["values"]), published["source"]
    else:
        values, source = dict(table()["fast_values"]), ""
    if not record.is_moe:
        values.pop("guidance_2", None)
    return values, source


def _distill_entry(record: Checkpoint, mode: str, preset: str) -> list | None:
    return table()["distills"][preset]["for"].get(record.id, {}).get(mode)


def _no_fast_reason(record: Checkpoint, mode: str) -> str:
    reasons = table()["no_fast_reason"]
    return reasons.get(mode) or reasons.get(record.architecture) or reasons["default"]


def resolve(record: Checkpoint | str, mode: str, preset: str | None, user_values: dict | None = None,
            settings=None) -> PresetResolution:
    """The values and LoRAs a preset gives this checkpoint and mode; `user_values` win."""
    record = catalog.get(record) if isinstance(record, str) else record
    user_values = {k: v for k, v in (user_values or {}).items() if v is not None}
    if preset not in (None, *PRESETS):
        raise RequestError("preset", f"Unknown preset {preset!r}; choose one of: {', '.join(PRESETS)}.")
    result = PresetResolution(preset, record.id)
    if preset is None:
        return result
    serving = record
    if preset == "quality":
        result.values = _quality_values(record)
    elif preset in DISTILLS:
        names = _distill_entry(record, mode, preset)
        if names is None:
            offered = ", ".join(p["name"] for p in list_presets(record, mode))
            fits = ", ".join(f"{catalog.get(m).name} {'/'.join(x.upper() for x in modes)}"
                             for m, modes in table()["distills"][preset]["for"].items() if not catalog.get(m).is_tiny)
            raise RequestError("preset", f"The {preset} preset is for {fits}; {record.name} {mode.upper()} "
                                         f"offers: {offered}.")
        result.values, result.source = _fast_values(record, table()["distills"][preset]["values"])
        result.loras = _lora_specs(names)
    else:
        entry = _fast_entry(record, mode, preset)
        if preset == "fast-hybrid" and entry is None:
            offered = ", ".join(p["name"] for p in list_presets(record, mode))
            raise RequestError("preset", f"The fast-hybrid preset exists only for Wan 2.2 I2V; {record.name} "
                                         f"{mode.upper()} offers: {offered}.")
        if entry and entry.get("checkpoint"):
            serving = _fastwan_if_local(record, mode, entry["checkpoint"], result, settings)
        if entry and entry.get("loras"):
            result.values, result.source = _fast_values(record, entry.get("values"))
            result.loras = _lora_specs(entry["loras"])
            if entry.get("note"):
                result.messages.append(entry["note"])
        elif serving is not record:
            result.values = _quality_values(serving)  # a distilled checkpoint's own defaults are its fast values
            result.model = serving.id
        else:
            result.values = _quality_values(record)
            if not result.messages:
                result.messages.append(
                    f"Lightning unavailable for {record.name} {mode.upper()}: {_no_fast_reason(record, mode)}. "
                    f"Using the Quality preset ({record.steps} steps)."
                )
    result.overrides = {k: v for k, v in user_values.items() if k in result.values and result.values[k] != v}
    for name in PRESET_FIELDS:
        if name in user_values and name in result.values:
            result.values[name] = user_values[name]
    return result


def _fastwan_if_local(record: Checkpoint, mode: str, fast_id: str, result: PresetResolution, settings) -> Checkpoint:
    from wan_studio import models

    fast = catalog.get(fast_id)
    if mode in fast.pipelines and models.find_local(fast, settings) is not None:
        result.messages.append(f"Fast uses {fast.name}, a distilled full checkpoint ({fast.steps} steps).")
        return fast
    result.messages.append(
        f"Lightning unavailable for {record.name} {mode.upper()}: {_no_fast_reason(record, mode)}; "
        f"{fast.name} is not downloaded ({models.download_command(fast)}). "
        f"Using the Quality preset ({record.steps} steps)."
    )
    return record


def list_presets(record: Checkpoint | str, mode: str) -> list[dict]:
    """What the Preset radio offers for (checkpoint, mode): name, label, whether Fast is real, why not."""
    record = catalog.get(record) if isinstance(record, str) else record
    fast = _fast_entry(record, mode, "fast")
    offered = [
        {"name": "quality", "label": LABELS["quality"], "available": True, "note": f"{record.steps} steps"},
        {"name": "fast", "label": LABELS["fast"], "available": bool(fast),
         "note": (fast or {}).get("note") or ("" if fast else _no_fast_reason(record, mode))},
    ]
    if _fast_entry(record, mode, "fast-hybrid"):
        offered.append({"name": "fast-hybrid", "label": LABELS["fast-hybrid"], "available": True,
                        "note": "the Wan 2.1 lightx2v I2V LoRA on both experts"})
    for name in DISTILLS:
        if _distill_entry(record, mode, name) is not None:
            offered.append({"name": name, "label": LABELS[name], "available": True,
                            "note": table()["distills"][name]["about"]})
    return offered
