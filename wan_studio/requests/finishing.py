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
    """A result made 2 or 4 times larger, frame by frame, by an image super-resolution model."""

    mode: ClassVar[str] = "upscale"
    kind: ClassVar[str] = "upscaler"
    verb: ClassVar[str] = "upscale frames"

    scale: int = request_field(2, label="Scale", choices=UPSCALE_FACTORS,
                               help="2 or 4: the width and height times this")
    tile: int | None = request_field(label="Tile", help="input pixels per tile side (default: what the memory allows)")

    def _check(self) -> None:
        if not is_whole_number(self.scale) or self.scale not in UPSCALE_FACTORS:
            raise RequestError("scale", f"The scale is 2 or 4 (twice or four times the width and height); "
                                        f"got {self.scale!r}.")
        if self.tile is not None and (not is_whole_number(self.tile) or not 32 <= self.tile <= 4096):
            raise RequestError("tile", f"The tile is 32 to 4096 input pixels a side; got {self.tile!r}.")

    def model_is_file(self) -> bool:
        from wan_studio.models.upscaler import WEIGHT_SUFFIXES

        return Path(self.model).suffix.lower() in WEIGHT_SUFFIXES

    def _check_prepared(self, inputs: InputFacts) -> None:
        if self.model_is_file():
            inputs.upscaler_file("model", self.model)
        side = max(self._video.width, self._video.height) * self.scale
        if side > MAX_OUTPUT_SIDE:
            raise RequestError("scale", f"{Path(self.result).name} is {self._video.width}x{self._video.height}; "
                                        f"x{self.scale} would be {side} px on its long side, over the "
                                        f"{MAX_OUTPUT_SIDE} px players take. Use a smaller scale.")

    @classmethod
    def summary_of(cls, data: dict) -> str:
        return f"upscale x{data.get('scale')} of {_parent_name(data)}"


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
