"""Finishing requests: work on a finished result (upscale, interpolate) queued like a generation.

They are not generations (no checkpoint, prompt or steps), but they take the same road: checked
when built, prepared once at submit (the result's recipe and size read, kept with the job), a job
in the persistent queue with progress and stop, and a new result whose recipe names its parent.
"""

from __future__ import annotations

import dataclasses
from dataclasses import MISSING, dataclass
from pathlib import Path
from typing import ClassVar

from wan_studio.errors import RequestError, UnknownModel
from wan_studio.requests.base import is_whole_number
from wan_studio.requests.fields import request_field
from wan_studio.requests.prepared import InputFacts, Preparation, PreparedOnce

UPSCALE_FACTORS = (2, 4)
# a target size: the new result's short side in pixels (a portrait video's width, a landscape one's height)
UPSCALE_TARGETS = {"1080p": 1080, "1440p": 1440, "4k": 2160}
UPSCALE_TARGET_WORDS = {"1080p": "1080p (Full HD)", "1440p": "1440p (QHD)", "4k": "4K (2160p, UHD)"}
INTERPOLATE_FACTORS = (2, 4)
MAX_OUTPUT_SIDE = 7680  # 8K: past it H.264 players give up, and so does the memory of most machines


@dataclass
class FinishingRequest(PreparedOnce):
    """Fields every finishing operation has. Subclasses add theirs and set `mode` and `kind`."""

    mode: ClassVar[str] = ""
    kind: ClassVar[str] = ""  # the kind of helper model it runs (catalog annotators)
    verb: ClassVar[str] = ""  # what that model does, for messages
    file_fields: ClassVar[tuple[str, ...]] = ("result",)

    result: str = request_field(MISSING, label="Result", file="video", help="the result's .mp4 (a video of the studio)")
    model: str = request_field("", label="Model", help="the model's id, or a weight file (default: the real one; "
                                                       "the Tiny one for a Tiny result)")
    parent: str = request_field("", label="Parent", page=False,
                                help="the result's id, filled from its recipe when the job is queued")

    def __post_init__(self):
        if not isinstance(self.result, (str, Path)) or not str(self.result):
            raise RequestError("result", "Name the result to work on (its .mp4).")
        self.result = str(self.result)
        if not isinstance(self.model, str):
            raise RequestError("model", f"The model is an id or a file path; got {self.model!r}.")
        self._preparation: Preparation | None = None
        self._check()

    def _check(self) -> None:
        """The subclass's own fields, checked without opening any file."""

    # -- preparing: read the result once, at submit --------------------------------------------
    def prepare(self, known: Preparation | None = None) -> "FinishingRequest":
        if self._preparation is not None and known is None:
            return self
        prepared = dataclasses.replace(self)
        inputs = InputFacts(prepared.input_files(), known)
        prepared._video = inputs.video_info("result", prepared.result)
        prepared._parent = inputs.result_recipe("result", prepared.result)
        prepared.parent = prepared._parent["id"]  # the queue keeps a copy of the file, named by its field
        prepared._check_model()
        prepared._check_prepared(inputs)
        prepared._preparation = Preparation(facts=inputs.found)
        return prepared

    def _check_prepared(self, inputs: InputFacts) -> None:
        """Checks that need the result's facts (its size, its frame count)."""

    def _check_model(self) -> None:
        """A named helper model is one of the catalog's, of the kind this operation runs."""
        if not self.model or self.model_is_file():
            return
        from wan_studio import catalog

        try:
            record = catalog.annotator(self.model)
        except UnknownModel as exc:
            raise RequestError("model", str(exc)) from None
        if record.kind != self.kind:
            fitting = ", ".join(r.id for r in catalog.annotators() if r.kind == self.kind and not r.tiny)
            raise RequestError("model", f"{record.name} does not {self.verb}; use {fitting}.")

    def model_is_file(self) -> bool:
        return False

    @property
    def video(self):
        """The result's frames, size and fps (media.VideoInfo), as preparing read them."""
        return self.prepare()._video

    @property
    def parent_tiny(self) -> bool:
        """Whether a Tiny model made the result (its finishing then uses the Tiny helper model)."""
        return bool(self.prepare()._parent["tiny"])

    # -- the queue's side ------------------------------------------------------------------------
    def input_files(self) -> dict[str, list[str]]:
        return {"result": [self.result]}

    def with_input_files(self, mapping: dict[str, list[str]]) -> "FinishingRequest":
        copy = dataclasses.replace(self, result=mapping["result"][0])
        return copy.prepare(known=self._preparation) if self._preparation is not None else copy

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["mode"] = self.mode
        return data

    @classmethod
    def summary_of(cls, data: dict) -> str:
        """One line for a queue listing, from a stored request (a queue record)."""
        return f"{cls.mode} of {_parent_name(data)}"


@dataclass
class UpscaleRequest(FinishingRequest):
    """A result made 2 or 4 times larger, frame by frame, by an image super-resolution model; or
    made a target size (1080p, 1440p, 4k): the model runs at the first of its factors that reaches
    the target and the frames are then shrunk to it exactly. A target wins over the scale (the
    prepared request's scale is the factor the model ran at)."""

    mode: ClassVar[str] = "upscale"
    kind: ClassVar[str] = "upscaler"
    verb: ClassVar[str] = "upscale frames"

    scale: int = request_field(2, label="Scale", choices=UPSCALE_FACTORS,
                               help="2 or 4: the width and height times this")
    tile: int | None = request_field(label="Tile", help="input pixels per tile side (default: what the memory allows)")
    target: str | None = request_field(label="Target size", choices=UPSCALE_TARGET_WORDS,
                                       help="1080p, 1440p or 4k: the short side becomes 1080, 1440 or 2160 px, the "
                                            "aspect kept (1280x720 becomes 1920x1080); wins over the scale")

    def _check(self) -> None:
        if not is_whole_number(self.scale) or self.scale not in UPSCALE_FACTORS:
            raise RequestError("scale", f"The scale is 2 or 4 (twice or four times the width and height); "
                                        f"got {self.scale!r}.")
        if isinstance(self.target, str):
            self.target = self.target.strip().lower() or None  # "4K" as typed; "" is no target
        if self.target is not None and (not isinstance(self.target, str) or self.target not in UPSCALE_TARGETS):
            raise RequestError("target", f"The target size is one of {', '.join(UPSCALE_TARGETS)} (the short side "
                                         f"becomes 1080, 1440 or 2160 px); got {self.target!r}.")
        if self.tile is not None and (not is_whole_number(self.tile) or not 32 <= self.tile <= 4096):
            raise RequestError("tile", f"The tile is 32 to 4096 input pixels a side; got {self.tile!r}.")

    def model_is_file(self) -> bool:
        from wan_studio.models.upscaler import WEIGHT_SUFFIXES

        return Path(self.model).suffix.lower() in WEIGHT_SUFFIXES

    def _check_prepared(self, inputs: InputFacts) -> None:
        if self.model_is_file():
            inputs.upscaler_file("model", self.model)
        width, height = self._video.width, self._video.height
        if self.target is not None:
            if min(width, height) >= UPSCALE_TARGETS[self.target]:
                larger = targets_above(width, height)
                then = f"Choose {' or '.join(larger)}." if larger else "It is 4K already; no target makes it larger."
                raise RequestError("target", f"This video is already {width}x{height}; {self.target} would not make "
                                             f"it larger. {then}")
            # the target wins over the scale: the model's factor is the first that reaches it (x4 when x2 falls short)
            self.scale = next((f for f in UPSCALE_FACTORS if min(width, height) * f >= UPSCALE_TARGETS[self.target]),
                              UPSCALE_FACTORS[-1])
        side = max(self._size_of(width, height))
        if side > MAX_OUTPUT_SIDE:
            asked = self.target or f"x{self.scale}"
            raise RequestError("target" if self.target else "scale",
                               f"{Path(self.result).name} is {width}x{height}; {asked} would be {side} px on its long "
                               f"side, over the {MAX_OUTPUT_SIDE} px players take. Use a smaller "
                               f"{'target' if self.target else 'scale'}.")

    @property
    def output_size(self) -> tuple[int, int]:
        """(width, height) of the new result: the target's size, else the result's times the scale."""
        return self.prepare()._size_of(self.video.width, self.video.height)

    def _size_of(self, width: int, height: int) -> tuple[int, int]:
        if self.target is not None:
            return target_size(width, height, self.target)
        return width * self.scale, height * self.scale

    @classmethod
    def summary_of(cls, data: dict) -> str:
        if data.get("target"):
            return f"upscale to {data['target']} of {_parent_name(data)}"
        return f"upscale x{data.get('scale')} of {_parent_name(data)}"


def target_size(width: int, height: int, target: str) -> tuple[int, int]:
    """The size a target makes of a width x height video: its short side the target's, the aspect
    kept, both sides even (H.264's 4:2:0 needs it). 1280x720 -> 1920x1080, 720x1280 -> 1080x1920."""
    short = UPSCALE_TARGETS[target]
    if width <= height:
        return short, 2 * round(height * short / width / 2)
    return 2 * round(width * short / height / 2), short


def targets_above(width: int, height: int) -> list[str]:
    """The targets that make a width x height video larger (what an upscale page may offer for it)."""
    return [target for target, short in UPSCALE_TARGETS.items() if short > min(width, height)]


@dataclass
class InterpolateRequest(FinishingRequest):
    """A result smoothed to 2 or 4 times its frame rate by RIFE (the same duration)."""

    mode: ClassVar[str] = "interpolate"
    kind: ClassVar[str] = "interpolator"
    verb: ClassVar[str] = "interpolate frames"

    factor: int = request_field(2, label="Factor", choices=INTERPOLATE_FACTORS,
                                help="2 or 4: the frame rate times this (16 fps becomes 32 or 64)")

    def _check(self) -> None:
        if not is_whole_number(self.factor) or self.factor not in INTERPOLATE_FACTORS:
            raise RequestError("factor", f"The factor is 2 or 4 (twice or four times the frame rate); "
                                         f"got {self.factor!r}.")

    def model_is_file(self) -> bool:
        from wan_studio.models.rife import WEIGHT_SUFFIXES

        return Path(self.model).suffix.lower() in WEIGHT_SUFFIXES

    def _check_prepared(self, inputs: InputFacts) -> None:
        if self.model_is_file():
            inputs.interpolator_file("model", self.model)

    @classmethod
    def summary_of(cls, data: dict) -> str:
        return f"smooth x{data.get('factor')} of {_parent_name(data)}"


def _parent_name(data: dict) -> str:
    return str(data.get("parent") or Path(str(data.get("result") or "?")).stem)


FINISHING_TYPES: tuple[type[FinishingRequest], ...] = (UpscaleRequest, InterpolateRequest)
