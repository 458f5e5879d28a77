"""Typed generation requests, validated when built.

A request is complete once constructed: fields left as None take the checkpoint's defaults from
the catalog, and a seed is drawn (and kept) when none is given, so the request recorded in a
recipe re-runs exactly. Every invalid field raises `RequestError` with its own message, naming
the field, the value and what would be legal.
"""

from __future__ import annotations

import dataclasses
import secrets
from dataclasses import MISSING, dataclass
from typing import ClassVar

from wan_studio import catalog
from wan_studio.catalog import Checkpoint
from wan_studio.errors import RequestError
from wan_studio.requests.fields import FileFields, request_field

MAX_SEED = 2**32 - 1
MAX_STEPS = 200
GUIDANCE_RANGE = (0.0, 20.0)
FLOW_SHIFT_RANGE = (0.5, 30.0)
PROMPT_TOKEN_LIMIT = 512  # UMT5-XXL context used by every Wan pipeline


def _legal_frames_near(value: int, record: Checkpoint) -> str:
    below = max(record.frames_min, ((value - 1) // 4) * 4 + 1)
    above = min(record.frames_max, below + 4)
    return f"{below} or {above}" if below != above else str(below)


@dataclass
class GenerationRequest:
    """Fields every mode has. Subclasses add their inputs and set `mode`."""

    mode: ClassVar[str] = ""

    #: fields holding paths to user files (images, videos, masks, audio), from their declarations
    file_fields: ClassVar[tuple[str, ...]] = FileFields()

    model: str = request_field(MISSING, label="Checkpoint", help="catalog id (see `models`); default: the machine's default for the mode")
    prompt: str = request_field("", label="Prompt", help="what the video shows")
    negative_prompt: str | None = request_field(label="Negative prompt", help="what to avoid (empty: Wan's standard one)")
    width: int | None = request_field(label="Width", help="pixels, a multiple of the checkpoint's granularity")
    height: int | None = request_field(label="Height", help="pixels, a multiple of the checkpoint's granularity")
    frames: int | None = request_field(label="Frames", help="4k+1, e.g. 81")
    steps: int | None = request_field(label="Steps", help="denoising steps")
    guidance: float | None = request_field(label="Guidance", help="classifier-free guidance scale")
    guidance_2: float | None = request_field(label="Guidance (low-noise expert)", help="low-noise expert guidance (Wan 2.2 A14B only)")
    flow_shift: float | None = request_field(label="Flow shift", help="the scheduler's shift (default: the checkpoint's for the size)")
    seed: int | None = request_field(label="Seed", help="0 to 2^32-1; empty: a random one, kept in the recipe")
    memory_plan: str = request_field("auto", label="Memory plan", help="pin a memory plan: auto, max-speed, balanced, low-vram, minimum")
    extra: dict = request_field(factory=dict, label="Extra", help="reserved for pipeline-specific options")
    preset: str | None = request_field(label="Preset", choices=("fast", "quality", "fast-hybrid"), help="fast: Lightning LoRA, 4 steps, guidance 1 (falls back to quality where none exists); quality; fast-hybrid")
    loras: list = request_field(factory=list, label="LoRAs", text="lora", flag="--lora", multiple=True,
                                help="a LoRA file or name (see `loras`) as NAME[:WEIGHT[:high|low|both]]; EXPERT on Wan 2.2 A14B")

    def __post_init__(self):
        record = catalog.get(self.model)  # raises UnknownModel with the known ids
        if self.mode not in record.pipelines:
            options = ", ".join(c.id for c in catalog.for_mode(self.mode)) or "none"
            raise RequestError(
                "model", f"{record.name} does not do {self.mode.upper()}; models for {self.mode.upper()}: {options}."
            )
        self._check_inputs(record)
        record = self._apply_preset(record)
        self._fill_defaults(record)
        self._validate(record)
        self._check_loras(record)

    # -- hooks for modes with input files -----------------------------------------------------
    def _check_inputs(self, record: Checkpoint) -> None:
        """Load and check the mode's input files (raising RequestError); runs before defaults."""

    def _suggested_size(self, record: Checkpoint) -> tuple[int, int]:
        return record.default_size

    def _suggested_frames(self, record: Checkpoint) -> int:
        return record.frames_default

    # -- defaults -----------------------------------------------------------------------------
    def _fill_defaults(self, record: Checkpoint) -> None:
        from presets import default_negative_prompt

        if self.negative_prompt is None:
            self.negative_prompt = default_negative_prompt()
        if self.width is None and self.height is None:
            self.width, self.height = self._suggested_size(record)
        if self.frames is None:
            self.frames = self._suggested_frames(record)
        if self.steps is None:
            self.steps = record.steps
        if self.guidance is None:
            self.guidance = record.guidance
        if self.guidance_2 is None and record.is_moe:
            self.guidance_2 = record.guidance_2
        if self.seed is None:
            self.seed = secrets.randbelow(MAX_SEED + 1)
        if self.flow_shift is None and isinstance(self.width, int) and isinstance(self.height, int):
            self.flow_shift = record.flow_shift_for(self.width, self.height)

    # -- presets and LoRAs (checked here, so a LoRA that cannot fit never reaches the queue) -----
    def _apply_preset(self, record: Checkpoint) -> Checkpoint:
        from wan_studio.catalog import presets

        user_values = {name: getattr(self, name) for name in presets.PRESET_FIELDS}
        self._preset = presets.resolve(record, self.mode, self.preset, user_values)
        if self._preset.model != record.id:  # a FastWan checkpoint serves Fast
            self.model = self._preset.model
            record = catalog.get(self.model)
        for name in presets.PRESET_FIELDS:
            if getattr(self, name) is None and name in self._preset.values:
                setattr(self, name, self._preset.values[name])
        return record

    def _check_loras(self, record: Checkpoint) -> None:
        from wan_studio import loras

        self.loras = loras.normalize_specs(self.loras)
        self._resolved_loras = loras.check(record, self._preset.loras + self.loras, mode=self.mode)

    @property
    def resolved_loras(self) -> list:
        """The preset's and the user's LoRAs, found and shape-checked (`loras.ResolvedLora`)."""
        return list(getattr(self, "_resolved_loras", []))

    @property
    def preset_messages(self) -> list[str]:
        return list(self._preset.messages) if getattr(self, "_preset", None) else []

    def preset_recipe(self) -> dict | None:
        """What the recipe records: preset, its values, the user's overrides, each LoRA with its sha256."""
        resolution = getattr(self, "_preset", None)
        if resolution is None or (resolution.preset is None and not self.resolved_loras):
            return None
        return {**resolution.as_recipe(), "loras": [lora.as_recipe() for lora in self.resolved_loras]}

    # -- validation ---------------------------------------------------------------------------
    def _validate(self, record: Checkpoint) -> None:
        self._check_prompt(record)
        self._check_size(record)
        self._check_frames(record)
        if not is_whole_number(self.steps) or self.steps < 1:
            raise RequestError("steps", f"Steps must be a whole number of at least 1; got {self.steps!r}.")
        if self.steps > MAX_STEPS:
            raise RequestError("steps", f"Steps must be at most {MAX_STEPS}; got {self.steps}.")
        self._check_range("guidance", self.guidance, GUIDANCE_RANGE, "Guidance")
        if record.is_moe:
            self._check_range("guidance_2", self.guidance_2, GUIDANCE_RANGE, "Low-noise guidance (guidance_2)")
        elif self.guidance_2 is not None:
            raise RequestError(
                "guidance_2",
                f"{record.name} has a single transformer, so it takes no second guidance scale (guidance_2); "
                "only the Wan 2.2 A14B (MoE) models do.",
            )
        self._check_range("flow_shift", self.flow_shift, FLOW_SHIFT_RANGE, "Flow shift")
        if not is_whole_number(self.seed) or not 0 <= self.seed <= MAX_SEED:
            raise RequestError("seed", f"Seed must be a whole number from 0 to {MAX_SEED}; got {self.seed!r}.")
        self._check_memory_plan()

    def _check_memory_plan(self) -> None:
        from wan_studio.memory.plans import PLAN_NAMES

        if self.memory_plan in (None, ""):
            self.memory_plan = "auto"
        name = str(self.memory_plan).strip().lower().replace(" ", "-").replace("_", "-")
        if name not in PLAN_NAMES:
            raise RequestError(
                "memory_plan", f"Unknown memory plan {self.memory_plan!r}; choose one of {', '.join(PLAN_NAMES)}."
            )
        self.memory_plan = name

    def _check_prompt(self, record: Checkpoint) -> None:
        if not isinstance(self.prompt, str) or not self.prompt.strip():
            raise RequestError("prompt", "The prompt is empty: describe the video you want.")
        if not isinstance(self.negative_prompt, str):
            raise RequestError("negative_prompt", "The negative prompt must be text.")
        for name, text in (("prompt", self.prompt), ("negative_prompt", self.negative_prompt)):
            count = count_prompt_tokens(record, text)
            if count > PROMPT_TOKEN_LIMIT:
                label = "prompt" if name == "prompt" else "negative prompt"
                raise RequestError(
                    name,
                    f"The {label} is {count} tokens long; {record.name} reads at most {PROMPT_TOKEN_LIMIT}. "
                    f"Shorten it by about {count - PROMPT_TOKEN_LIMIT} tokens.",
                )

    def _check_size(self, record: Checkpoint) -> None:
        g = record.spatial_granularity
        max_side = 2 * max(max(s) for s in record.sizes)
        for name, value in (("width", self.width), ("height", self.height)):
            if not is_whole_number(value):
                raise RequestError(name, f"{name.capitalize()} must be a whole number of pixels; got {value!r}.")
            if value % g:
                lower, upper = value // g * g, (value // g + 1) * g
                raise RequestError(
                    name,
                    f"{name.capitalize()} must be a multiple of {g} for {record.name}; got {value} "
                    f"(nearest legal: {lower or upper} or {upper}).",
                )
            if not g * 2 <= value <= max_side:
                raise RequestError(
                    name, f"{name.capitalize()} must be between {g * 2} and {max_side} for {record.name}; got {value}."
                )

    def _check_frames(self, record: Checkpoint) -> None:
        value = self.frames
        if not is_whole_number(value):
            raise RequestError("frames", f"Frames must be a whole number; got {value!r}.")
        if not record.frames_min <= value <= record.frames_max:
            raise RequestError(
                "frames",
                f"Frames must be between {record.frames_min} and {record.frames_max} for {record.name}; got {value}.",
            )
        if record.frame_rule == "4k+1" and (value - 1) % 4:
            raise RequestError(
                "frames",
                f"Frames must be of the form 4k+1 (the VAE packs 4 frames per latent); got {value}, "
                f"nearest legal: {_legal_frames_near(value, record)}.",
            )

    @staticmethod
    def _check_range(name: str, value, bounds: tuple[float, float], label: str) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RequestError(name, f"{label} must be a number; got {value!r}.")
        if not bounds[0] <= value <= bounds[1]:
            raise RequestError(name, f"{label} must be between {bounds[0]:g} and {bounds[1]:g}; got {value:g}.")

    # -- input files --------------------------------------------------------------------------
    def input_files(self) -> dict[str, list[str]]:
        """Every input file path, by field (a field may hold several, e.g. reference images)."""
        found = {}
        for name in self.file_fields:
            value = getattr(self, name)
            if value:
                found[name] = [str(v) for v in (value if isinstance(value, (list, tuple)) else [value])]
        return found

    def with_input_files(self, mapping: dict[str, list[str]]) -> "GenerationRequest":
        """A copy whose file fields point elsewhere (the queue's or the library's copies)."""
        changes = {}
        for name, paths in mapping.items():
            current = getattr(self, name)
            changes[name] = list(paths) if isinstance(current, (list, tuple)) else paths[0]
        return dataclasses.replace(self, **changes)

    # -- (de)serialisation --------------------------------------------------------------------
    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["mode"] = self.mode
        return data

    @property
    def checkpoint(self) -> Checkpoint:
        return catalog.get(self.model)

    @property
    def duration_s(self) -> float:
        return self.frames / self.checkpoint.fps


def is_whole_number(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def count_prompt_tokens(record: Checkpoint, text: str) -> int:
    from wan_studio import models

    return models.count_tokens(record, text)
