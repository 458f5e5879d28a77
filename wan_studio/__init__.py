"""Wan Studio engine: catalog, models, requests, swap manager, output library.

Nothing heavy happens at import: torch, diffusers and transformers are imported inside the
functions that need them, so the studio page opens fast and the CLI answers `models` at once.
The engine never imports gradio.
"""

__version__ = "0.1.0"

import os as _os
import sys as _sys

if _sys.platform == "darwin":
    # ops Metal lacks fall back to the CPU; it must be set before torch is first imported
    _os.environ.setdefault("PYTORCH_ENABLE_MPS_FALLBACK", "1")
