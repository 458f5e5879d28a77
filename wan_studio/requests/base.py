"""Typed generation requests: values checked when built, prepared once at submit.

Constructing a request checks its structure only (types, ranges, choices, 4k+1 frames, size
multiples), so building one is cheap and reads no file. `prepare()` is the one step that reads
files, the tokenizer and LoRA files: it fills the checkpoint's defaults (size and frames from the
inputs, a seed drawn and kept, so the recipe re-runs exactly) and records what it learned in a
`Preparation` stored with the job, so the worker does not read any of it again. Every invalid
field raises `RequestError` with its own message, naming the field, the value and what would be
legal.
"""

from __future__ import annotations

import dataclasses
import secrets
from dataclasses import MISSING, dataclass
from typing import ClassVar

from wan_studio import catalog
from wan_studio.catalog import Checkpoint
from wan_studio.errors import RequestError
from wan_studio.loras import presets
from wan_studio.loras.presets import DISTILLS, PRESETS
from wan_studio.memory import attention as attention_backends
from wan_studio.memory import step_cache
from wan_studio.requests.fields import FileFields, meta, request_field
from wan_studio.requests.fields import label as field_label
from wan_studio.requests.modes import ModeInfo, registered_modes
from wan_studio.requests.prepared import InputFacts, Preparation, PreparedOnce

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
class GenerationRequest(PreparedOnce):
    """Fields every mode has. Subclasses add their inputs, set `mode` and `mode_info` (what the rest of
    the studio asks about the mode: requests/modes.py) and register with `@register_mode`."""

    mode: ClassVar[str] = ""
    mode_info: ClassVar[ModeInfo]

    #: fields holding paths to user files (images, videos, masks, audio), from their declarations
    file_fields: ClassVar[tuple[str, ...]] = FileFields()
    # the prompt an empty one stands for, in a mode whose prompt is optional (Animate); "" = required
    default_prompt: ClassVar[str] = ""

    model: str = request_field(MISSING, label="Checkpoint",
                               help="catalog id (see `models`); default: the machine's default for the mode")
    prompt: str = request_field("", label="Prompt", help="what the video shows")
    negative_prompt: str | None = request_field(label="Negative prompt",
                                                help="what to avoid (empty: Wan's standard one)")
    width: int | None = request_field(label="Width", help="pixels, a multiple of the checkpoint's granularity")
    height: int | None = request_field(label="Height", help="pixels, a multiple of the checkpoint's granularity")
    frames: int | None = request_field(label="Frames", help="4k+1, e.g. 81")
    steps: int | None = request_field(label="Steps", help="denoising steps")
    guidance: float | None = request_field(label="Guidance", help="classifier-free guidance scale")
    guidance_2: float | None = request_field(label="Guidance (low-noise expert)",
                                             help="low-noise expert guidance (Wan 2.2 A14B only)")
    flow_shift: float | None = request_field(label="Flow shift",
                                             help="the scheduler's shift (default: the checkpoint's for the size)")
    seed: int | None = request_field(label="Seed", help="0 to 2^32-1; empty: a random one, kept in the recipe")
    cache: str | None = request_field(label="Step cache", choices=step_cache.SETTINGS,
                                      help="skip transformer work at steps that barely change: off, balanced, "
                                           "aggressive (default: off; balanced for a preview)")
    attention: str | None = request_field(label="Attention backend", choices=("auto", *attention_backends.BACKENDS),
                                          help="pin an attention kernel (auto: the fastest that passes its check "
                                               "on this GPU; native = PyTorch SDPA)")
    memory_plan: str = request_field("auto", label="Memory plan",
                                     help="pin a memory plan: auto, max-speed, balanced, low-vram, minimum")
    parallel: int = request_field(1, label="GPUs for this job",
                                  help="split the job over this many GPUs of this machine "
                                       "(context parallelism, Ulysses); 1: one GPU")
    extra: dict = request_field(factory=dict, label="Extra", help="reserved for pipeline-specific options")
    preset: str | None = request_field(label="Preset", choices=PRESETS,
                                       help="fast: Lightning LoRA, 4 steps, guidance 1 (falls back to quality where "
                                            "none exists); quality; fast-hybrid; or a named Wan 2.2 distill at its "
                                            "published values: " + ", ".join(DISTILLS))
    loras: list = request_field(factory=list, label="LoRAs", text="lora", flag="--lora", multiple=True,
                                help="a LoRA file or name (see `loras`) as NAME[:WEIGHT[:high|low|both]]; "
                                     "EXPERT on Wan 2.2 A14B")

    def __post_init__(self):
        record = catalog.get(self.model)  # raises UnknownModel with the known ids
        if self.mode not in record.pipelines:
            options = ", ".join(c.id for c in catalog.for_mode(self.mode)) or "none"
            raise RequestError(
                "model", f"{record.name} does not do {self.mode.upper()}; models for {self.mode.upper()}: {options}."
            )
        self._preparation: Preparation | None = None
        self._check_structure(record)

    # -- preparing: the one step that reads files, tokenizers and LoRAs --------------------------
    def prepare(self, known: Preparation | None = None) -> "GenerationRequest":
        """A copy with every default filled and every input checked against its file.

        Reads each input file's facts (once per file version), counts the prompt's tokens and finds,
        hashes and shape-checks the LoRAs. With `known` (what an earlier preparation of this same
        request found, as stored with its job) nothing is read again. A prepared request returns
        itself."""
        if self._preparation is not None and known is None:
            return self
        prepared = dataclasses.replace(self)
        prepared._fill(known)
        return prepared

    def _read_fact(self, attribute: str, what: str):
        """A fact `_read_inputs` found (e.g. the audio's length): there once the request is prepared."""
        if not hasattr(self, attribute):
            raise RuntimeError(f"{type(self).__name__} is not prepared; call .prepare() before reading {what}")
        return getattr(self, attribute)

    def _fill(self, known: Preparation | None) -> None:
        record = self.checkpoint
        inputs = InputFacts(self.input_files(), known)
        self._read_inputs(record, inputs)
        record = self._apply_preset(record)
        self._fill_defaults(record)
        self._validate(record)
        if known is None:
            for name in ("prompt", "negative_prompt"):
                self._check_token_count(record, name)
            self._check_loras(record)
        else:
            from wan_studio.loras import ResolvedLora

            self._resolved_loras = [ResolvedLora.from_dict(lora) for lora in known.loras]
        self._preparation = Preparation(facts=inputs.found, loras=[lora.to_dict() for lora in self._resolved_loras])

    # -- structure: checked on construction, without opening any file ---------------------------
    def _check_structure(self, record: Checkpoint) -> None:
        from wan_studio import loras

        self._check_fields(record)
        for f in dataclasses.fields(self):
            choices, value = meta(type(self), f.name).get("choices"), getattr(self, f.name)
            for item in value if isinstance(value, list) else [value]:
                if choices and item is not None and item not in choices:
                    raise RequestError(f.name, f"Unknown {field_label(type(self), f.name).lower()} {item!r}; "
                                               f"choose one of: {', '.join(choices)}.")
        self._check_prompt_text()
        for name in ("width", "height"):
            if getattr(self, name) is not None:
                self._check_side(record, name)
        if self.frames is not None:
            self._check_frames_shape(record)
        self._check_numbers(record)
        self._check_memory_plan()
        self._check_parallel()
        self.loras = loras.normalize_specs(self.loras)

    def _check_fields(self, record: Checkpoint) -> None:
        """Hook: the mode's own fields (sub-modes, strengths, boxes), checked without their files."""

    def _check_frames_shape(self, record: Checkpoint) -> None:
        """Hook: the frame count as far as it can be checked without the inputs."""
        self._check_frames(record)

    # -- hooks for modes with input files -----------------------------------------------------
    def _read_inputs(self, record: Checkpoint, inputs: InputFacts) -> None:
        """Read and check the mode's input files through `inputs` (raising RequestError); runs before defaults."""

    def _suggested_size(self, record: Checkpoint) -> tuple[int, int]:
        return record.default_size

    def _suggested_frames(self, record: Checkpoint) -> int:
        return record.frames_default

    def _default_cache(self) -> str:
        return "off"  # full quality unless asked

    def _default_negative_prompt(self) -> str:
        from presets import default_negative_prompt

        return default_negative_prompt()

    # -- defaults -----------------------------------------------------------------------------
    def _fill_defaults(self, record: Checkpoint) -> None:
        if self.negative_prompt is None:
            self.negative_prompt = self._default_negative_prompt()
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
        if self.cache is None:
            self.cache = self._default_cache()
        if self.flow_shift is None and isinstance(self.width, int) and isinstance(self.height, int):
            self.flow_shift = record.flow_shift_for(self.width, self.height)

    # -- presets and LoRAs (checked here, so a LoRA that cannot fit never reaches the queue) -----
    def _apply_preset(self, record: Checkpoint) -> Checkpoint:
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
    def sampler(self) -> str:
        """How the run samples: "dmd" (a FastWan checkpoint's distilled timesteps), "euler" (a Lightning
        or LightX2V preset's flow Euler, as its release samples) or "unipc" (the checkpoint's own)."""
        if self.checkpoint.scheduler == "dmd":
            return "dmd"
        resolution = getattr(self, "_preset", None)
        return resolution.sampler if resolution is not None else "unipc"

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
        """The filled request, whole: every field set and legal for the (preset's) checkpoint."""
        self._check_prompt_text()
        for name in ("width", "height"):
            self._check_side(record, name)
        self._check_frames(record)
        for name in ("steps", "guidance", "flow_shift", "seed"):
            if getattr(self, name) is None:
                raise RequestError(name, f"{field_label(type(self), name)} is missing.")
        if record.is_moe and self.guidance_2 is None:
            raise RequestError("guidance_2", "Low-noise guidance (guidance_2) is missing.")
        if not record.is_moe and self.guidance_2 is not None:
            raise RequestError(
                "guidance_2",
                f"{record.name} has a single transformer, so it takes no second guidance scale (guidance_2); "
                "only the Wan 2.2 A14B (MoE) models do.",
            )
        self._check_numbers(record)
        if record.scheduler == "dmd" and self.steps != len(record.timesteps):
            raise RequestError("steps", f"{record.name} is distilled to {len(record.timesteps)} steps (timesteps "
                                        f"{', '.join(map(str, record.timesteps))}); got {self.steps}.")
        if self.parallel > 1:
            self._check_split(record)

    def _check_split(self, record: Checkpoint) -> None:
        """A split over `parallel` ranks: Ulysses gives each rank a share of the attention heads and of
        the tokens, so both must divide evenly; a long video's windows run on one GPU for now."""
        from wan_studio.memory.estimate import latent_geometry, shape_of
        from wan_studio.memory.footprints import transformer_config

        ranks = self.parallel
        if getattr(self, "long_video", False) and self.windows(record) is not None:
            raise RequestError("parallel", "A video longer than one pass runs its windows on one GPU for now; "
                                           "use --parallel 1, or at most "
                                           f"{record.frames_max} frames.")
        config = transformer_config(record)
        heads = int(config.get("num_attention_heads", 0))
        if heads % ranks:
            raise RequestError("parallel", f"{record.name} has {heads} attention heads, which do not split over "
                                           f"{ranks} GPUs; use a number of GPUs that divides {heads}.")
        tokens, _ = latent_geometry(record, shape_of(self))
        if tokens % ranks:
            raise RequestError("parallel", f"{self.width}x{self.height} at {self.frames} frames is {tokens} tokens, "
                                           f"which do not split over {ranks} GPUs; change the size or the frames.")

    def _check_numbers(self, record: Checkpoint) -> None:
        """Steps, guidance, flow shift and seed, those that are set."""
        if self.steps is not None:
            if not is_whole_number(self.steps) or self.steps < 1:
                raise RequestError("steps", f"Steps must be a whole number of at least 1; got {self.steps!r}.")
            if self.steps > MAX_STEPS:
                raise RequestError("steps", f"Steps must be at most {MAX_STEPS}; got {self.steps}.")
        for name, label in (("guidance", "Guidance"), ("guidance_2", "Low-noise guidance (guidance_2)")):
            if getattr(self, name) is not None:
                self._check_range(name, getattr(self, name), GUIDANCE_RANGE, label)
        if self.flow_shift is not None:
            self._check_range("flow_shift", self.flow_shift, FLOW_SHIFT_RANGE, "Flow shift")
        if self.seed is not None and (not is_whole_number(self.seed) or not 0 <= self.seed <= MAX_SEED):
            raise RequestError("seed", f"Seed must be a whole number from 0 to {MAX_SEED}; got {self.seed!r}.")

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

    MAX_PARALLEL: ClassVar[int] = 16

    def _check_parallel(self) -> None:
        if not is_whole_number(self.parallel) or not 1 <= self.parallel <= self.MAX_PARALLEL:
            raise RequestError("parallel", f"GPUs for this job must be a whole number from 1 to {self.MAX_PARALLEL}; "
                                           f"got {self.parallel!r}.")
        if self.parallel > 1 and not self.mode_info.parallel:
            # (S2V's transformer is ours and Animate's has no plan for diffusers' context parallelism)
            splittable = [mode.upper() for mode, cls in registered_modes().items() if cls.mode_info.parallel]
            raise RequestError("parallel", f"{self.mode.upper()} runs on one GPU: its transformer cannot be split "
                                           f"yet (--parallel works for {', '.join(splittable)}).")

    def _check_prompt_text(self) -> None:
        if self.default_prompt and (self.prompt is None or (isinstance(self.prompt, str) and not self.prompt.strip())):
            self.prompt = self.default_prompt
        if not isinstance(self.prompt, str) or not self.prompt.strip():
            raise RequestError("prompt", "The prompt is empty: describe the video you want.")
        if self.negative_prompt is not None and not isinstance(self.negative_prompt, str):
            raise RequestError("negative_prompt", "The negative prompt must be text.")

    def _check_token_count(self, record: Checkpoint, name: str) -> None:
        from wan_studio import models

        text = getattr(self, name)
        # the estimate counts too many tokens, never fewer (bar a token or two on rare words, hence the
        # margin): only a prompt near the limit needs the real tokenizer, which takes seconds to load
        if models.estimate_tokens(text) <= PROMPT_TOKEN_LIMIT - ESTIMATE_MARGIN:
            return
        count = count_prompt_tokens(record, text)
        if count > PROMPT_TOKEN_LIMIT:
            label = "prompt" if name == "prompt" else "negative prompt"
            raise RequestError(
                name,
                f"The {label} is {count} tokens long; {record.name} reads at most {PROMPT_TOKEN_LIMIT}. "
                f"Shorten it by about {count - PROMPT_TOKEN_LIMIT} tokens.",
            )

    def _check_side(self, record: Checkpoint, name: str) -> None:
        g = record.spatial_granularity
        max_side = 2 * max(max(s) for s in record.sizes)
        value = getattr(self, name)
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
        copy = dataclasses.replace(self, **changes)
        # same bytes, same facts (they are kept by field, not by path): nothing is read again
        return copy.prepare(known=self._preparation) if self._preparation is not None else copy

    # -- controls made by annotator models -------------------------------------------------------
    def controls_to_extract(self) -> dict[str, tuple[str, str]]:
        """field -> (control kind, source field): the controls an annotator model must make from a
        plain video before the run (`wan_studio.extract`), and the field each one fills.
        None by default."""
        return {}

    def extraction_options(self) -> dict:
        """Options for the annotators (e.g. the point that picks an object). None by default."""
        return {}

    def with_extracted(self, made: dict[str, str]) -> "GenerationRequest":
        """A copy whose fields point at the control videos the engine made (see the subclasses)."""
        return self.with_made_inputs(made)

    def with_made_inputs(self, made: dict[str, str], **changes) -> "GenerationRequest":
        """A copy using files made for the job: their facts are read anew (they are new files,
        written by us); every other fact of the preparation is kept, so no user input is read again."""
        copy = dataclasses.replace(self, **made, **changes)
        if self._preparation is None:
            return copy.prepare()
        facts = {key: value for key, value in self._preparation.facts.items() if key.split(":")[1] not in made}
        return copy.prepare(known=Preparation(facts=facts, loras=self._preparation.loras))

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


ESTIMATE_MARGIN = 16  # tokens kept below the limit before the estimate alone passes a prompt


def count_prompt_tokens(record: Checkpoint, text: str) -> int:
    from wan_studio import models

    return models.count_tokens(record, text)
