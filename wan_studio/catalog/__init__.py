"""The checkpoint catalog: one record per open Wan checkpoint, loaded from catalog.json.

Everything that varies by checkpoint (repo, modes, pipeline class, sizes, fps, frame rule,
default steps / guidance / flow shift, MoE boundary, footprints) lives in the data file.
The mode x generation matrix, the CLI's `models` listing and the UI's choices are derived
from these records, never kept as second tables. The catalog knows modes only as the keys of
each record's `pipelines` (what a mode is, is its request class's business: wan_studio/requests).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from wan_studio.errors import UnknownModel

CATALOG_FILE = Path(__file__).with_name("catalog.json")

# S2V: frames the first clip loses (decoded after the reference latent; upstream drops them)
S2V_FIRST_CLIP_DROP = 3
GENERATIONS = ("2.1", "2.2", "tiny")


@dataclass(frozen=True)
class SharedComponent:
    id: str
    components: tuple[str, ...]
    params_b: float
    note: str = ""


@dataclass(frozen=True)
class Checkpoint:
    id: str
    name: str
    generation: str
    architecture: str  # dense | moe | vace | animate | s2v
    pipelines: dict[str, str]  # mode -> diffusers (or our own) pipeline class name
    sizes: tuple[tuple[int, int], ...]  # (width, height), the first is the default
    spatial_granularity: int
    fps: int
    frames_default: int
    frames_min: int
    frames_max: int
    frame_rule: str  # "4k+1" or "clip" (fixed clip length, S2V)
    frames_window: int  # the native length a long video is made in windows of (runtime/windows.py)
    steps: int
    guidance: float
    guidance_2: float | None
    flow_shift: dict[str, float]  # resolution class ("480p", "720p") -> shift
    components: dict[str, float]  # own component -> params in billions
    shared: dict[str, str]  # pipeline component -> shared component id
    download_gb: float
    repo_id: str | None = None
    revision: str | None = None
    boundary_ratio: float | None = None
    expand_timesteps: bool = False
    tiny: str | None = None  # architecture key of a Tiny model built locally
    scheduler: str = "unipc"  # "unipc" (flow UniPC) or "dmd" (distilled few-step sampling at `timesteps`)
    timesteps: tuple[int, ...] = ()  # dmd: the timesteps the distilled model was trained to denoise from
    extra: dict = field(default_factory=dict)

    @property
    def modes(self) -> tuple[str, ...]:
        """The modes it runs, as its record lists them; the first is the one a start loads it for."""
        return tuple(self.pipelines)

    @property
    def is_moe(self) -> bool:
        return "transformer_2" in self.components

    @property
    def is_tiny(self) -> bool:
        return self.tiny is not None

    @property
    def default_size(self) -> tuple[int, int]:
        return self.sizes[0]

    def pipeline_class(self, mode: str) -> str:
        return self.pipelines[mode]

    def flow_shift_for(self, width: int, height: int) -> float:
        """The shift of the resolution class nearest the requested area (480p or 720p)."""
        wanted = "720p" if width * height > 832 * 480 * 1.4 else "480p"
        return self.flow_shift.get(wanted) or next(iter(self.flow_shift.values()))


@dataclass(frozen=True)
class Annotator:
    """A model that makes a control video from a plain one (depth, pose, a person detector for
    pose): found, fetched and (for Tiny) built like a checkpoint."""
    id: str
    name: str
    kind: str  # the control it makes: "depth", ...
    download_gb: float
    params_b: float
    repo_id: str | None = None
    revision: str | None = None
    files: tuple[str, ...] = ()  # what to fetch from the repo
    tiny: bool = False
    detector: str | None = None  # pose: the person detector whose boxes it reads
    threshold: float = 0.0  # scores below it are not used (detections, keypoints)
    scale: int = 0  # an upscaler's own factor (2 or 4)

    @property
    def is_tiny(self) -> bool:
        return self.tiny


@dataclass(frozen=True)
class ApiOnlySlot:
    generation: str
    name: str
    note: str


def _parse_size(text: str) -> tuple[int, int]:
    w, h = text.lower().split("x")
    return int(w), int(h)


def _checkpoint_from(raw: dict) -> Checkpoint:
    frames, defaults = raw["frames"], raw["defaults"]
    return Checkpoint(
        id=raw["id"], name=raw["name"], generation=raw["generation"],
        architecture=raw["architecture"], pipelines=dict(raw["pipelines"]),
        sizes=tuple(_parse_size(s) for s in raw["sizes"]),
        spatial_granularity=raw["spatial_granularity"], fps=raw["fps"],
        frames_default=frames["default"], frames_min=frames["min"], frames_max=frames["max"],
        frame_rule=frames.get("rule", "4k+1"), frames_window=frames.get("window", frames["default"]),
        steps=defaults["steps"], guidance=defaults["guidance"], guidance_2=defaults.get("guidance_2"),
        flow_shift=dict(defaults["flow_shift"]), components=dict(raw["components"]),
        shared=dict(raw["shared"]), download_gb=raw["download_gb"],
        repo_id=raw.get("repo_id"), revision=raw.get("revision"),
        boundary_ratio=raw.get("boundary_ratio"), expand_timesteps=raw.get("expand_timesteps", False),
        tiny=raw.get("tiny"),
        scheduler=defaults.get("scheduler", "unipc"), timesteps=tuple(defaults.get("timesteps", ())),
        # aoti: ZeroGPU's compiled blocks {"repo", "variants"}; reference_kv_cache: the transformer keeps the K/V of a
        # segment's reference tokens at every layer while it denoises (Animate-2), which the estimate counts
        extra={key: raw[key] for key in ("aoti", "reference_kv_cache") if raw.get(key)},
    )


# records added for this process, written as in catalog.json (a test's throw-away mode adds its Tiny one)
_added_records: list[dict] = []


def add_checkpoints(*raws: dict) -> None:
    """Add checkpoint records, each written as in catalog.json, for this process only (a test, a plug-in);
    `remove_checkpoints` takes them out again."""
    taken = {raw["id"] for raw in _raw_checkpoints()}
    for raw in raws:
        if raw["id"] in taken:
            raise ValueError(f"the catalog already has a checkpoint {raw['id']!r}")
        _checkpoint_from(raw)  # a malformed record fails here, not at the next lookup
        taken.add(raw["id"])
    _added_records.extend(raws)
    _load.cache_clear()


def remove_checkpoints(*ids: str) -> None:
    _added_records[:] = [raw for raw in _added_records if raw["id"] not in ids]
    _load.cache_clear()


def _raw_checkpoints() -> list[dict]:
    return json.loads(CATALOG_FILE.read_text())["checkpoints"] + _added_records


@lru_cache(maxsize=1)
def _load() -> tuple[dict[str, Checkpoint], dict[str, SharedComponent], tuple[ApiOnlySlot, ...]]:
    data = json.loads(CATALOG_FILE.read_text())
    checkpoints = {raw["id"]: _checkpoint_from(raw) for raw in data["checkpoints"] + _added_records}
    shared = {
        key: SharedComponent(key, tuple(v["components"]), v["params_b"], v.get("note", ""))
        for key, v in data["shared_components"].items()
    }
    slots = tuple(ApiOnlySlot(s["generation"], s["name"], s["note"]) for s in data["api_only"])
    return checkpoints, shared, slots


def checkpoints() -> list[Checkpoint]:
    return [get(model_id) for model_id in _load()[0]]


def get(model_id: str) -> Checkpoint:
    found = _load()[0].get(model_id)
    if found is None:
        known = ", ".join(_load()[0])
        raise UnknownModel(f"Unknown model '{model_id}'. Known models: {known}")
    return found


def raw_record(model_id: str) -> dict:
    """A checkpoint's record as written in catalog.json, including mode-specific facts
    (e.g. S2V's clip length and transformer config) that the typed record does not carry."""
    for raw in _raw_checkpoints():
        if raw["id"] == model_id:
            return raw
    get(model_id)  # raises UnknownModel with the known ids
    return {}


def shared_component(shared_id: str) -> SharedComponent:
    return _load()[1][shared_id]


def api_only_slots() -> tuple[ApiOnlySlot, ...]:
    return _load()[2]


def for_mode(mode: str, generation: str | None = None) -> list[Checkpoint]:
    return [c for c in checkpoints() if mode in c.pipelines and generation in (None, c.generation)]


def modes() -> tuple[str, ...]:
    """Every mode some checkpoint runs, in the order the records first name them."""
    return tuple(dict.fromkeys(mode for c in checkpoints() for mode in c.modes))


def default_model(mode: str, generation: str) -> Checkpoint | None:
    options = for_mode(mode, generation)
    return options[0] if options else None


ANNOTATORS_FILE = CATALOG_FILE.with_name("annotators.json")


@lru_cache(maxsize=1)
def _annotators() -> dict[str, Annotator]:
    data = json.loads(ANNOTATORS_FILE.read_text())["annotators"]
    return {raw["id"]: Annotator(
        id=raw["id"], name=raw["name"], kind=raw["kind"], download_gb=raw["download_gb"], params_b=raw["params_b"],
        repo_id=raw.get("repo_id"), revision=raw.get("revision"), files=tuple(raw.get("files", ())),
        tiny=raw.get("tiny", False), detector=raw.get("detector"), threshold=raw.get("threshold", 0.0),
        scale=raw.get("scale", 0)) for raw in data}


def annotators() -> list[Annotator]:
    return list(_annotators().values())


def annotator(annotator_id: str) -> Annotator:
    found = _annotators().get(annotator_id)
    if found is None:
        raise UnknownModel(f"Unknown annotator '{annotator_id}'. Known annotators: {', '.join(_annotators())}")
    return found


def annotator_for(kind: str, tiny: bool) -> Annotator:
    """The annotator that makes `kind` controls: the Tiny one for Tiny checkpoints, the real one otherwise."""
    for record in _annotators().values():
        if record.kind == kind and record.tiny == tiny:
            return record
    raise UnknownModel(f"No {'tiny ' if tiny else ''}annotator makes {kind} controls.")
