"""The engine: one call from a validated request to a saved result.

    request -> swap manager (active pipeline) -> mode wrapper (pipelines/) -> frames
            -> output library (mp4 + thumbnail + recipe)

Progress is reported through a callback with `Progress` events; cancelling is a
`threading.Event` checked after every denoising step, which stops the run within one step and
writes nothing. The UI, the Gradio API and the CLI all call `Engine.generate`.
"""

from __future__ import annotations

import logging
import platform
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from wan_studio import __version__
from wan_studio.errors import Cancelled
from wan_studio.latent_preview import latent_preview
from wan_studio.library import OutputLibrary, Result, new_result_id
from wan_studio.requests import GenerationRequest
from wan_studio.settings import Settings, load_settings
from wan_studio.swap import SwapManager

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Progress:
    stage: str  # loading | denoising | saving | done
    step: int = 0
    total: int = 0
    elapsed_s: float = 0.0
    remaining_s: float | None = None
    preview: Any = None  # uint8 (H, W, 3) picture of the current latents, every few steps


    @property
    def fraction(self) -> float:
        return self.step / self.total if self.total else 0.0

    def describe(self) -> str:
        if self.stage != "denoising":
            return {"loading": "Loading model", "saving": "Encoding video", "done": "Done"}[self.stage]
        eta = f", about {self.remaining_s:.0f}s left" if self.remaining_s is not None else ""
        return f"Step {self.step}/{self.total} ({self.elapsed_s:.0f}s{eta})"


ProgressFn = Callable[[Progress], None]


class Engine:
    def __init__(self, settings: Settings | None = None, backend=None, previews: bool = True):
        self.settings = settings or load_settings()
        self.previews = previews
        self.swap = SwapManager(self.settings, backend)
        self.library = OutputLibrary(self.settings.output_dir)

    def generate(
        self, request: GenerationRequest, on_progress: ProgressFn | None = None, cancel: threading.Event | None = None
    ) -> Result:
        import pipelines
        from wan_studio.backend import import_ml

        import_ml()
        report = on_progress or (lambda event: None)
        record = request.checkpoint
        wrapper = pipelines.wrapper_for(request.mode)
        total = pipelines.total_steps(wrapper, request)
        started = time.perf_counter()

        # 1. the pipeline (no-op when already active)
        report(Progress("loading"))
        pipe = self.swap.activate(record, pipelines.pipeline_mode(wrapper, request))
        from wan_studio import lora_apply

        lora_apply.prepare(pipe, request, record)  # the job's LoRAs on, any others off (no reload)
        loaded = time.perf_counter()

        # 2. denoise and decode, reporting every step and honouring cancel
        step_times: list[float] = []
        preview_every = max(1, total // 8)

        def on_step_end(pipe_, step, timestep, callback_kwargs):
            step_times.append(time.perf_counter())
            done = len(step_times)
            per_step = (step_times[-1] - loaded) / done
            preview = None
            if self.previews and (done % preview_every == 0 or done == total):
                preview = latent_preview(callback_kwargs.get("latents"))
            report(Progress("denoising", done, total, step_times[-1] - loaded, per_step * max(0, total - done), preview))
            if cancel is not None and cancel.is_set():
                raise Cancelled("Stopped by the user; nothing was saved.")
            return callback_kwargs

        frames = wrapper.run(pipe, request, record, on_step_end)
        generated = time.perf_counter()

        # 3. save: inputs copied beside the result, then mp4 (or png) + thumbnail + recipe, atomically
        report(Progress("saving", total, total, generated - loaded))
        result_id = new_result_id(request.mode)
        recipe = self._recipe(request, record, timings={
            "load_s": round(loaded - started, 3), "generate_s": round(generated - loaded, 3),
            "per_step_s": round((step_times[-1] - loaded) / len(step_times), 4) if step_times else None,
        })
        try:
            copied = self.library.copy_inputs(result_id, request.input_files())
            for name, paths in copied.items():
                recipe["request"][name] = paths if isinstance(recipe["request"][name], list) else paths[0]
            recipe["inputs"] = copied
            if getattr(wrapper, "OUTPUT", "video") == "image":
                result = self.library.save_image(frames[0], recipe, result_id)
            else:
                result = self.library.save_video(frames, record.fps, recipe, result_id)
        except BaseException:
            self.library.delete(result_id)  # no half-saved result, inputs included
            raise
        report(Progress("done", total, total, time.perf_counter() - started, 0.0))
        return result

    def _recipe(self, request: GenerationRequest, record, timings: dict) -> dict:
        backend = self.swap.backend
        return {
            "mode": request.mode,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "model": {
                "id": record.id, "name": record.name, "generation": record.generation,
                "repo_id": record.repo_id, "revision": self._revision(record),
            },
            "request": request.to_dict(),
            "preset": request.preset_recipe(),
            "memory": {
                "transformer_dtype": backend.transformer_dtype, "vae_dtype": backend.vae_dtype,
                "device": backend.device, "offload": "none", "quantization": "none", "vae_tiling": False,
            },
            "timings": timings,
            "backend": backend.as_dict(),
            "versions": package_versions(),
        }

    def _revision(self, record) -> str:
        from wan_studio import models, tiny

        if record.is_tiny:
            return f"tiny-v{tiny.TINY_FORMAT_VERSION}"
        folder = models.find_local(record, self.settings)
        if folder is not None and folder.parent.name == "snapshots":
            return folder.name  # the Hub commit hash of the cached snapshot
        return f"local:{folder}" if folder else "unknown"


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"wan_studio": __version__, "python": platform.python_version()}
    for name in ("torch", "diffusers", "transformers", "accelerate", "imageio-ffmpeg"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found
