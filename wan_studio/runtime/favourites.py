"""Favourite settings per mode ("my 720p draft"): a panel's values saved under a name and put back
later. Kept in OUTPUT/.ui/favourites.json as {mode: {name: {field: value}}}; what was made (the
prompt, the seed, the input files) is not part of a favourite."""

from __future__ import annotations

import json
import os
from pathlib import Path

from wan_studio.errors import StudioError

NOT_SAVED = ("prompt", "seed", "randomize")  # what changes from one video to the next


def _path(output_dir: Path) -> Path:
    return Path(output_dir) / ".ui" / "favourites.json"


def load(output_dir: Path) -> dict:
    try:
        data = json.loads(_path(output_dir).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def names(output_dir: Path, mode: str) -> list[str]:
    return sorted(load(output_dir).get(mode, {}))


def save(output_dir: Path, mode: str, name: str, values: dict) -> None:
    name = " ".join(str(name or "").split())
    if not name:
        raise StudioError("Name the settings first (e.g. \"my 720p draft\").")
    if len(name) > 60:
        raise StudioError(f"A favourite's name is at most 60 characters; this one has {len(name)}.")
    data = load(output_dir)
    data.setdefault(mode, {})[name] = {key: value for key, value in values.items() if key not in NOT_SAVED}
    path = _path(output_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(".favourites.json.partial")
    partial.write_text(json.dumps(data, indent=1, ensure_ascii=False, default=str))
    os.replace(partial, path)  # whole or not at all


def get(output_dir: Path, mode: str, name: str) -> dict:
    found = load(output_dir).get(mode, {}).get(name)
    if found is None:
        raise StudioError(f"There is no favourite {name!r} for {mode.upper()}.")
    return found
