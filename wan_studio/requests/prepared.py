"""What preparing a request learned from its files, kept with the job so nobody reads them again.

Preparing (`GenerationRequest.prepare`) is the one step that touches files: image sizes, video
lengths, audio durations, LoRA headers and hashes. Its findings are a `Preparation`, a plain
JSON-able value stored with the queued job. The worker rebuilds the request from the stored
fields and this value, so it opens no input file and hashes no LoRA again, even in another
process. File facts are keyed by field and position (`image-size:image:0`), not by path, so they
still hold for the queue's and the library's copies of the inputs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from wan_studio.errors import RequestError


@dataclass(frozen=True)
class Preparation:
    facts: dict = field(default_factory=dict)  # "kind:field:index" -> JSON value
    loras: list = field(default_factory=list)  # ResolvedLora.to_dict() of each LoRA, the preset's first

    def to_dict(self) -> dict:
        return {"facts": dict(self.facts), "loras": [dict(lora) for lora in self.loras]}

    @classmethod
    def from_dict(cls, data: dict | None) -> "Preparation | None":
        if not data:
            return None
        return cls(facts=dict(data.get("facts") or {}), loras=list(data.get("loras") or []))


class PreparedOnce:
    """A request prepared once, at submit (`prepare()`), keeping what that found in `_preparation`."""

    _preparation: "Preparation | None" = None

    @property
    def is_prepared(self) -> bool:
        return self._preparation is not None

    @property
    def preparation(self) -> Preparation:
        if self._preparation is None:
            raise RuntimeError(f"{type(self).__name__} is not prepared; call .prepare() before reading its preparation")
        return self._preparation


def prepare_all(requests: Iterable) -> list:
    """Every request prepared (each field and input file checked), or the first error before any is
    used: a batch is queued whole or not at all. A value that is no typed request is a TypeError."""
    requests = list(requests)
    for request in requests:
        if not isinstance(request, PreparedOnce):  # the base of GenerationRequest and FinishingRequest
            raise TypeError(f"expected a typed request (GenerationRequest or FinishingRequest), "
                            f"got {type(request).__name__}")
    return [request.prepare() for request in requests]


MIN_IMAGE_SIDE = 32


class InputFacts:
    """The facts a request's preparation asks for: from a stored preparation when it has them,
    else read (once per file version, `media.facts`). Records every fact handed out."""

    def __init__(self, files: dict[str, list[str]], known: Preparation | None = None):
        self._files = files
        self._known = known.facts if known is not None else {}
        self.found: dict[str, object] = {}

    def _fact(self, kind: str, name: str, path, read):
        paths = self._files.get(name, [])
        index = paths.index(str(path)) if str(path) in paths else 0
        key = f"{kind}:{name}:{index}"
        value = self._known[key] if key in self._known else read()
        self.found[key] = value
        return value

    def image_size(self, name: str, path) -> tuple[int, int]:
        from wan_studio.media import facts

        width, height = self._fact("image-size", name, path, lambda: list(facts.image_size(path, name)))
        if min(width, height) < MIN_IMAGE_SIDE:  # blown up to the output size it would be mush
            raise RequestError(name, f"The image {Path(path).name} is {width}x{height}; an input image needs at least "
                                     f"{MIN_IMAGE_SIDE} px on each side. Use a larger picture.")
        return width, height

    def video_info(self, name: str, path):
        from wan_studio import media
        from wan_studio.media import facts

        found = self._fact("video-info", name, path, lambda: dataclasses.asdict(facts.video_info(path, name)))
        return media.VideoInfo(**found)

    def audio_seconds(self, name: str, path) -> float:
        from wan_studio.media import facts

        return float(self._fact("audio-seconds", name, path, lambda: facts.audio_seconds(path, name)))

    def result_recipe(self, name: str, path) -> dict:
        """What a result's embedded recipe says of it (id, mode, made by a Tiny model, with sound);
        RequestError for a video the studio did not make."""
        from wan_studio.media.recipe import read_embedded_recipe

        def read():
            if not Path(path).is_file():
                raise RequestError(name, f"File not found: {path}")
            recipe = read_embedded_recipe(Path(path)) if Path(path).suffix.lower() == ".mp4" else None
            if not isinstance(recipe, dict) or "request" not in recipe:
                raise RequestError(name, f"{Path(path).name} is not a result of the studio (a video with its recipe).")
            return {"id": recipe.get("id") or Path(path).stem, "mode": recipe.get("mode", "video"),
                    "tiny": str(recipe.get("model", {}).get("generation")) == "tiny",
                    "audio": bool(recipe.get("output", {}).get("audio"))}

        return self._fact("result-recipe", name, path, read)

    def upscaler_file(self, name: str, path) -> dict:
        """The scale of a super-resolution weight file; RequestError for a missing file or one that
        holds no network we read."""
        def read():
            from wan_studio.models.upscaler import FAMILIES, NotAnUpscaler, build_from_state, local_weights, read_state
            from wan_studio.settings import load_settings

            local = local_weights(path, load_settings().auto_download)  # a path, or a Hub file (hf://)
            if not local.is_file():
                raise RequestError(name, f"Upscaler file not found: {path}")
            try:
                return {"scale": build_from_state(read_state(local)).scale}
            except NotAnUpscaler as exc:
                raise RequestError(name, f"{Path(path).name} is not an image upscaling model we can read: {exc}. "
                                         f"We read {FAMILIES}.") from None

        return self._fact("upscaler-file", name, path, read)

    def interpolator_file(self, name: str, path) -> dict:
        """The RIFE releases a flownet.pkl is built like; RequestError for a missing file or one that
        holds no IFNet we read."""
        def read():
            from wan_studio.models.rife import Interpolator, NotAnInterpolator

            try:
                return {"releases": Interpolator(path).layout.releases}
            except FileNotFoundError:
                raise RequestError(name, f"RIFE file not found: {path}") from None
            except NotAnInterpolator as exc:
                raise RequestError(name, str(exc)) from None

        return self._fact("interpolator-file", name, path, read)
