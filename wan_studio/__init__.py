"""Wan Studio engine: catalog, models, requests, swap manager, output library.

Nothing heavy happens at import: torch, diffusers and transformers are imported inside the
functions that need them, so the studio page opens fast and the CLI answers `models` at once.
The engine never imports gradio.
"""

__version__ = "0.1.0"

import gc as _gc
import os as _os
import sys as _sys

# torch, diffusers and transformers make ~800k long-lived objects as they load; at the interpreter's
# default threshold (700 new objects) the collector runs ~2,400 times meanwhile, a fifth of a fresh
# process's CPU time (1.4 of 6 s here). At 10,000, cyclic garbage still goes young.
if _gc.get_threshold()[0] == 700:  # the default: a host that tuned its collector keeps its own
    _gc.set_threshold(10_000, 10, 10)

if _sys.platform == "darwin":
    # ops Metal lacks fall back to the CPU; it must be set before torch is first imported
    _os.environ.setdefault("PYTORCH_ENABLE_MPS_FALLBACK", "1")
