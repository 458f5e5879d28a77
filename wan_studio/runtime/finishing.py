"""Finishing a result: frame interpolation (RIFE) makes a new result from a finished one.

The new result keeps its parent's request (what made the frames) and says what was done after:
`"parent"` (the result it was made from) and `"finishing"` (the operation, the model and its
settings); the parent is left as it is. A sound track (S2V) is carried over as it plays.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from wan_studio.errors import RequestError

FACTORS = (2, 4)


def interpolator_of(model_id: str | None, tiny: bool):
    """The named interpolator, or the real one (the Tiny one for a Tiny result)."""
    from wan_studio import catalog

    record = catalog.annotator(model_id) if model_id else catalog.annotator_for("interpolator", tiny)
    if record.kind != "interpolator":
        raise RequestError("model", f"{record.name} does not interpolate frames; use "
                                    f"{catalog.annotator_for('interpolator', False).id}.")
    return record


def interpolate(library, parent: Path, factor, settings, device: str = "cpu", model_id: str | None = None,
                progress: Callable[[int, int], None] | None = None):
    """A new result with `factor` times the frame rate of `parent` (a result's .mp4): between each
    two frames, factor - 1 new ones (n frames -> factor x (n - 1) + 1, the same duration)."""
    from wan_studio import media, models
    from wan_studio.models.rife import Interpolator
    from wan_studio.runtime.library import new_result_id, read_embedded_recipe

    if isinstance(factor, bool) or factor not in FACTORS:
        raise RequestError("factor", f"The factor is 2 or 4 (twice or four times the frame rate); got {factor!r}.")
    parent = Path(parent)
    recipe = read_embedded_recipe(parent) if parent.suffix.lower() == ".mp4" and parent.is_file() else None
    if recipe is None:
        raise RequestError("result", f"{parent.name} is not a result of the studio (a video with its recipe).")
    output = recipe.get("output", {})
    record = interpolator_of(model_id, tiny=str(recipe.get("model", {}).get("generation")) == "tiny")
    frames = np.stack([np.asarray(frame) for frame in media.load_video_frames(parent)])
    started = time.perf_counter()
    model = Interpolator(models.resolve(record, settings), device)
    moments = [k / factor for k in range(1, factor)]
    made = [frames[0]]
    for index in range(1, len(frames)):
        made += model.between(frames[index - 1], frames[index], moments) + [frames[index]]
        if progress is not None:
            progress(index, len(frames) - 1)
    fps = output.get("fps", 16) * factor
    audio = None
    if output.get("audio"):
        audio = (parent, output["audio"]["duration_s"])  # the parent's own sound track, muxed again
    finished = {key: value for key, value in recipe.items() if key not in ("format", "id", "output", "parent", "finishing")}
    finished.update(parent=recipe.get("id") or parent.stem, created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    finishing={"operation": "interpolate", "factor": factor, "model": record.id,
                               "seconds": round(time.perf_counter() - started, 3)})
    mode = recipe.get("mode", "video")
    return library.save_video(np.stack(made), fps, finished, new_result_id(mode), audio=audio)
