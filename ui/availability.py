"""Which modes the sidebar offers for a generation, and why a mode is off. No gradio here.

One rule for every mode: a mode is on when the chosen generation has a catalog checkpoint for it
AND the engine has a request type (a wrapper) for it. So a mode whose wrapper lands later (S2V)
switches itself on without touching the UI.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from wan_studio import catalog

ICON_FOLDER = Path(__file__).parent / "icons"
GENERATION_LABELS = {"2.1": "Wan 2.1", "2.2": "Wan 2.2", "tiny": "Tiny (random weights, CPU)"}


@dataclass(frozen=True)
class ModeStatus:
    mode: str
    enabled: bool
    reason: str  # empty when enabled


def sidebar_modes() -> tuple[str, ...]:
    """The modes with a page of their own, in the sidebar's order (their request classes' ModeInfo)."""
    from wan_studio.requests import modes_where

    return modes_where(lambda info: info.sidebar)


def mode_label(mode: str) -> str:
    """The mode's short name, as the sidebar and the "Send to" chips show it (T2V, Animate)."""
    from wan_studio.requests import mode_info

    return mode_info(mode).short


def mode_words(mode: str) -> str:
    """What the mode does, in a newcomer's words ("Text → Video"): the sidebar's first line."""
    from wan_studio.requests import mode_info

    info = mode_info(mode)
    return info.words or info.label


def icon(name: str) -> str | None:
    """The sidebar's and header's icons: SVG files drawn by the browser without any font. A mode's is
    the one its ModeInfo names (a file of ui/icons/ or a path), else ui/icons/<mode>.svg; None if there is none."""
    from wan_studio.requests import request_types

    cls = request_types().get(name)
    chosen = (cls.mode_info.icon if cls is not None else "") or name
    path = Path(chosen) if chosen.endswith(".svg") else ICON_FOLDER / f"{chosen}.svg"
    return str(path) if path.is_file() else None


def engine_modes() -> set[str]:
    from wan_studio.requests import request_types

    return set(request_types())


def mode_status(mode: str, generation: str, wired: set[str] | None = None) -> ModeStatus:
    wired = engine_modes() if wired is None else wired
    name = mode.upper()
    if mode not in wired:
        return ModeStatus(mode, False, f"{name} is not wired into the engine yet; it arrives in a later release.")
    if not catalog.for_mode(mode, generation):
        offered = [GENERATION_LABELS.get(g, g) for g in catalog.GENERATIONS if catalog.for_mode(mode, g)]
        where = f"; switch Generation to {' or '.join(offered)}" if offered else ""
        return ModeStatus(mode, False,
                          f"{GENERATION_LABELS.get(generation, generation)} has no {name} checkpoint{where}.")
    return ModeStatus(mode, True, "")


def sidebar_status(generation: str) -> dict[str, ModeStatus]:
    wired = engine_modes()
    return {mode: mode_status(mode, generation, wired) for mode in sidebar_modes()}


def generation_choices() -> list[tuple[str, str]]:
    return [(GENERATION_LABELS[g], g) for g in catalog.GENERATIONS]


def api_only_note() -> str:
    slots = catalog.api_only_slots()
    return " · ".join(s.name for s in slots) + ": API-only, no open weights (not selectable)" if slots else ""
