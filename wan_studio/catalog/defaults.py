"""Which generation and checkpoint a mode starts on, for this machine.

"auto" means: the Tiny generation on a machine without a GPU (real checkpoints would not run
there in any useful time), otherwise Wan 2.2, falling back to 2.1 for modes 2.2 lacks.
"""

from __future__ import annotations

from wan_studio import catalog
from wan_studio.backend import probe_light
from wan_studio.settings import Settings


def default_generation(settings: Settings) -> str:
    if settings.default_generation != "auto":
        return settings.default_generation
    return "2.2" if probe_light().has_gpu else "tiny"


def default_model_id(mode: str, settings: Settings) -> str:
    generation = default_generation(settings)
    for gen in (generation, "2.2", "2.1", "tiny"):
        record = catalog.default_model(mode, gen)
        if record is not None:
            return record.id
    raise ValueError(f"no checkpoint serves mode {mode}")
