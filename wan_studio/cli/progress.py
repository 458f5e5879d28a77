"""Progress on the terminal: the libraries' own bars, off with --quiet."""

from __future__ import annotations

from contextlib import contextmanager


@contextmanager
def library_progress_bars(shown: bool):
    """With --quiet, the libraries' own bars (loading weights, writing shards, downloads) stay off too."""
    if shown:
        yield
        return
    import diffusers.utils.logging as diffusers_logging
    import huggingface_hub.utils as hub_utils
    import transformers.utils.logging as transformers_logging

    restore = [module.enable_progress_bar for module in (transformers_logging, diffusers_logging)
               if module.is_progress_bar_enabled()]
    if not hub_utils.are_progress_bars_disabled():
        restore.append(hub_utils.enable_progress_bars)
    transformers_logging.disable_progress_bar()
    diffusers_logging.disable_progress_bar()
    hub_utils.disable_progress_bars()
    try:
        yield
    finally:
        for enable in restore:
            enable()
