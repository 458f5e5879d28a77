"""Extend: a finished video continued by some seconds with the long-video windows, from its own
recipe (wan_studio/runtime/windows.py makes the windows; this builds the request)."""

from __future__ import annotations

from pathlib import Path

from wan_studio.errors import RequestError


def extension_request(result: Path, seconds: float, prompt: str | None = None, seed: int | None = None):
    """The request that continues `result` (an .mp4 with its recipe, or the recipe .json beside one)."""
    from wan_studio import catalog
    from wan_studio.media.recipe import load_recipe
    from wan_studio.requests import absolutize_inputs, modes_where, request_from_dict
    from wan_studio.requests.modes import extendable_modes

    result = Path(result)
    recipe = load_recipe(result)
    video = result if result.suffix.lower() == ".mp4" else result.with_suffix(".mp4")
    if not video.is_file():
        raise RequestError("result", f"{result.name} has no video beside it ({video.name}) to continue.")
    data = absolutize_inputs(recipe["request"], video.resolve().parent)
    if data.get("mode") not in modes_where(lambda info: info.extendable):
        raise RequestError("result", f"Extend continues {extendable_modes()} videos; {video.name} is a "
                                     f"{str(data.get('mode')).upper()} result.")
    if not seconds > 0:
        raise RequestError("frames", f"--seconds must be more than 0; got {seconds:g}.")
    record = catalog.get(data["model"])
    data.update(continue_from=str(video.resolve()), frames=max(1, round(seconds * record.fps)), seed=seed)
    if prompt:
        data["prompt"] = prompt
    data["extra"] = {**(data.get("extra") or {}), "parent": recipe.get("result_id") or video.stem}
    return request_from_dict(data)
