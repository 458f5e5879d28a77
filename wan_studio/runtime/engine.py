"""The engine: one call from a validated request to a saved result.

    request -> swap manager (active pipeline) -> mode wrapper (pipelines/) -> frames
            -> output library (mp4 + thumbnail + recipe)

Progress is reported through a callback with `JobStatus` events (queue/status.py); cancelling is a
`threading.Event` checked after every denoising step, which stops the run within one step and
writes nothing (a long job keeps the windows it finished: `WindowsKept` says how many, and running
the same job again goes on after them). The UI, the Gradio API and the CLI all call `Engine.generate`.

Memory: before loading, the engine picks the memory plan (wan_studio/memory/) for the machine,
or the one the job or the settings pin. An out-of-memory error (CUDA or MPS) frees memory, steps
one rung down and runs again from the start; the recipe and the job's messages record each step
down. After the last rung the job fails with a message saying what to change.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import platform
import secrets
import shutil
import tempfile
import threading
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Callable

import numpy as np

from wan_studio import __version__
from wan_studio.errors import Cancelled, StudioError, WindowsKept
from wan_studio.media.previews import latent_preview
from wan_studio.memory import compile as compiled
from wan_studio.memory import step_cache
from wan_studio.queue.status import JobStatus
from wan_studio.requests import FinishingRequest, GenerationRequest
from wan_studio.runtime import parallel
from wan_studio.runtime.library import OutputLibrary, Result, new_result_id, write_mp4
from wan_studio.runtime.parallel import torchrun_rank
from wan_studio.runtime.swap import SwapManager, limit_gpu_memory
from wan_studio.settings import Settings, load_settings

log = logging.getLogger(__name__)


ProgressFn = Callable[[JobStatus], None]


class OutOfMemory(StudioError):
    """Every memory plan ran out of memory; the message says what to change."""


def is_out_of_memory(exc: BaseException) -> bool:
    import torch

    oom = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError
    if isinstance(exc, oom):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


@dataclasses.dataclass
class GenerationRun:
    """One generation on its way from a chosen plan to a saved result: what it makes, with what,
    who hears of it, and what happened on the way (fallbacks, steps down) for its recipe."""

    request: GenerationRequest  # prepared; with the controls made from plain videos once they are
    record: object  # its checkpoint (catalog.Checkpoint)
    wrapper: object  # its mode's wrapper (pipelines/)
    choice: object  # the memory plan chosen for this machine, and why (memory/choose.py)
    plan: object  # the plan it runs with now: the choice's, then uncompiled or a rung down
    report: ProgressFn
    cancel: threading.Event | None
    previews: bool  # latent previews with the steps: someone watches
    started: float  # time.perf_counter() when the job began
    made_dir: Path | None = None  # controls made from plain videos are written here, if it has any
    # a long job's finished windows, kept under the request as queued (the controls made for it are
    # written to a new folder each run, so the request with them would not find them again)
    saved_windows: object = None  # runtime.windows.SavedWindows
    messages: list[str] = dataclasses.field(default_factory=list)  # for the recipe and the job's messages
    steps_down: list[dict] = dataclasses.field(default_factory=list)  # each out-of-memory step down


@dataclasses.dataclass
class Denoised:
    """What denoising made, and what the recipe says of how it went."""

    frames: object  # uint8 frames (F, H, W, 3)
    total_steps: int  # the job's denoising steps, every window's
    loaded_at: float  # time.perf_counter() once the pipeline was ready
    per_step_s: float | None
    cache: step_cache.StepCache  # the step cache it ran with
    windows: dict | None = None  # a long video's account of its windows
    compiling: object = None  # what compiling blocks took this job (memory/compile.py); None: not compiled
    parallel: dict | None = None  # a split job's account of its ranks


class Engine:
    def __init__(self, settings: Settings | None = None, backend=None, previews: bool = True):
        self.settings = settings or load_settings()
        self.previews = previews
        self.swap = SwapManager(self.settings, backend)
        self._machine = None  # wan_studio.memory.plans.Machine, worked out on first use
        # windows a long job makes per run before it pauses (ZeroGPU: one reservation each); None: all
        self.windows_per_run: int | None = None
        # the pool's GPUs a split job runs its ranks on (its worker sets them); None: GPUs 0..N-1
        self.parallel_devices: tuple[str, ...] | None = None
        self.library = OutputLibrary(self.settings.output_dir)
        self.compile_failed: set[str] = set()  # checkpoints whose compiled blocks failed in this process

    @property
    def machine(self):
        from wan_studio.memory.plans import machine_from_backend

        if self._machine is None:
            self._machine = machine_from_backend(self.swap.backend, self.settings.memory_limit_gb,
                                                 self.settings.compile)
            limit_gpu_memory(self.swap.backend, self._machine)
        return self._machine

    def choose_plan(self, request: GenerationRequest):
        """The memory plan for this request on this machine (a pinned one when the job or settings say)."""
        from wan_studio.memory.choose import attention_of, choose

        request = request.prepare()
        pinned = request.memory_plan if request.memory_plan != "auto" else self.settings.memory_plan
        return choose(request.checkpoint, request, self.machine, pinned, attention_of(request, self.settings))

    def run(self, request, on_progress: ProgressFn | None = None, cancel: threading.Event | None = None) -> Result:
        """A queued job's work: a generation, or finishing a result (upscale, interpolate)."""
        if isinstance(request, FinishingRequest):
            return self.finish(request, on_progress, cancel)
        return self.generate(request, on_progress, cancel)

    def finish(self, request, on_progress: ProgressFn | None = None, cancel: threading.Event | None = None) -> Result:
        """A new result made from a finished one (runtime/finishing.py), on this engine's device."""
        from wan_studio.backend import import_ml
        from wan_studio.runtime.finishing import finish

        import_ml()
        return finish(self.library, request, self.settings, self.swap.backend.device, on_progress, cancel,
                      self.swap.make_room)

    def generate(
        self, request: GenerationRequest, on_progress: ProgressFn | None = None, cancel: threading.Event | None = None
    ) -> Result:
        import pipelines
        from wan_studio.backend import import_ml
        from wan_studio.models.hub import fail_if_unfetchable

        request = request.prepare()  # a no-op for a queued job's request (prepared at submit)
        fail_if_unfetchable(request.checkpoint, self.settings)  # before the ML libraries load
        import_ml()
        report = on_progress or (lambda event: None)
        previews = self.previews and on_progress is not None  # a preview nobody sees is wasted work
        record = request.checkpoint
        wrapper = pipelines.wrapper_for(request)
        started = time.perf_counter()
        choice = self.choose_plan(request)  # NoPlanFits says what would fit, before anything loads
        self._fetch_model(record, report, cancel)
        # controls made from plain videos are written here, then copied with the result like any input
        made_dir = None
        if request.controls_to_extract():
            made_dir = Path(tempfile.mkdtemp(prefix="extracting-", dir=self._scratch_root()))
        run = GenerationRun(request, record, wrapper, choice, choice.plan, report, cancel, previews, started, made_dir,
                            saved_windows=self._saved_windows(request), messages=list(choice.messages))
        try:
            return self._generate(run)
        finally:
            if made_dir is not None:
                shutil.rmtree(made_dir, ignore_errors=True)

    def _compiled_or_not(self, run: GenerationRun):
        """The run's plan, uncompiled where compiled blocks would be wrong for this job: ZeroGPU's hold the
        weights without the job's LoRAs; this checkpoint's compiled blocks failed earlier in this process."""
        plan = run.plan
        if plan.compile == "aoti" and run.request.resolved_loras:
            note = "Compiled blocks off for this job: they would run without its LoRAs."
        elif plan.compile != "none" and run.record.id in self.compile_failed:
            note = "Compiled blocks off: they failed for this checkpoint earlier; running uncompiled."
        else:
            return plan
        if note not in run.messages:
            run.messages.append(note)
        return dataclasses.replace(plan, compile="none")

    def _fetch_model(self, record, report, cancel) -> None:
        """A model this machine lacks is downloaded first, its bytes shown as the job's progress."""
        from wan_studio.models.downloads import fetch_for_job

        def on_change(download):
            report(JobStatus("downloading", step=download.done_bytes // 2**20, total=download.total_bytes // 2**20,
                             message=download.describe()))

        fetch_for_job(record, self.settings, on_change, cancel)

    def _scratch_root(self) -> Path:
        root = self.library.root / ".scratch"
        root.mkdir(parents=True, exist_ok=True)
        return root

    def _generate(self, run: GenerationRun) -> Result | None:
        """Make the controls it wants, denoise (falling back as needed), then save the result."""
        made, extracted = ({}, {}) if run.made_dir is None else \
            self.make_controls(run.request, run.made_dir, run.report, run.cancel)
        if made:
            run.request = run.request.with_extracted(made)
        denoised = self._denoise_with_fallbacks(run)
        if denoised.parallel and torchrun_rank() not in (None, 0):
            return None  # one job across machines (torchrun): rank 0 keeps the result
        return self._save(run, denoised, extracted)

    def _denoise_with_fallbacks(self, run: GenerationRun) -> Denoised:
        """Denoise with the run's plan; compiled blocks that fail run again uncompiled, and running out
        of memory steps one rung down and runs again, each noted in the run's messages."""
        from wan_studio.memory.plans import next_rung

        request, record = run.request, run.record
        while True:
            run.plan = plan = self._compiled_or_not(run)
            try:
                return self._denoise(run)
            except Exception as exc:
                stopped = isinstance(exc, (StudioError, Cancelled)) or (run.cancel is not None and run.cancel.is_set())
                if (plan.compile != "none" and request.parallel <= 1 and not stopped and not is_out_of_memory(exc)
                        and compiled.raised_by_compiler(exc)):
                    first_line = str(exc).splitlines()[0][:160] if str(exc) else ""
                    note = f"The compiled blocks failed ({type(exc).__name__}: {first_line}); ran again uncompiled."
                    log.warning(note)
                    run.messages.append(note)
                    self.compile_failed.add(record.id)  # later jobs of this checkpoint run uncompiled at once
                    run.plan = dataclasses.replace(plan, compile="none")
                    continue
                # a split job's ranks chose their own plans; a rank out of memory ends the job
                if not is_out_of_memory(exc) or request.parallel > 1:
                    raise
                self.swap.release()  # frees the accelerator before the smaller plan loads
                smaller = next_rung(record, run.choice.machine, plan)
                if smaller is None:
                    raise OutOfMemory(
                        f"Out of memory even with the {plan.label} memory plan ({exc.__class__.__name__}). "
                        "Use fewer frames, a smaller size or a smaller checkpoint; "
                        "`python -m wan_studio plan` shows what fits this machine."
                    ) from exc
                note = f"Out of memory with the {plan.label} plan; ran again with {smaller.label}."
                log.warning(note)
                run.messages.append(note)
                run.steps_down.append({"from": plan.name, "to": smaller.name, "error": str(exc).splitlines()[0][:200]})
                run.plan = smaller

    def _save(self, run: GenerationRun, denoised: Denoised, extracted: dict) -> Result:
        """Inputs copied beside the result, then mp4 (or png) + thumbnail + recipe, atomically."""
        import pipelines

        request, record, wrapper, report = run.request, run.record, run.wrapper, run.report
        generated = time.perf_counter()
        total = denoised.total_steps
        report(JobStatus("saving", step=total, total=total, elapsed_s=generated - denoised.loaded_at))
        result_id = new_result_id(request.mode)
        recipe = self._recipe(run, timings={
            "load_s": round(denoised.loaded_at - run.started, 3),
            "generate_s": round(generated - denoised.loaded_at, 3), "per_step_s": denoised.per_step_s,
        })
        recipe["cache"] = denoised.cache.as_recipe()
        if denoised.compiling is not None and denoised.compiling.note():  # this job compiled or read graphs
            recipe["memory"]["compile_s"] = denoised.compiling.seconds
            recipe["memory"]["notes"].append(denoised.compiling.note())
        if denoised.windows:
            recipe["windows"] = denoised.windows
        if denoised.parallel:  # the ranks it was split over
            recipe["parallel"] = denoised.parallel
        if request.extra.get("parent"):  # made from another result (Extend): its id, for the lineage
            recipe["parent"] = request.extra["parent"]
        recipe["messages"] = run.messages + ([denoised.cache.message] if denoised.cache.message else [])
        try:
            copied = self.library.copy_inputs(result_id, request.input_files())
            for name, paths in copied.items():
                recipe["request"][name] = paths if isinstance(recipe["request"][name], list) else paths[0]
            recipe["inputs"] = copied
            if extracted:  # the control videos made for this run are its inputs now: a re-run uses them
                recipe["extracted"] = extracted
            if getattr(wrapper, "OUTPUT", "video") == "image":
                result = self.library.save_image(denoised.frames[0], recipe, result_id)
            else:
                result = self.library.save_video(denoised.frames, record.fps, recipe, result_id,
                                                 audio=pipelines.audio_track(wrapper, request))
        except BaseException:
            self.library.delete(result_id)  # no half-saved result, inputs included
            raise
        if denoised.windows:
            run.saved_windows.clear()  # the result has them now
        report(JobStatus("done", step=total, total=total, elapsed_s=time.perf_counter() - run.started, remaining_s=0.0))
        return result

    def make_controls(self, request, folder: Path, report=None, cancel=None) -> tuple[dict, dict]:
        """Make the controls the request wants from plain videos (depth, pose, face, ...) with
        annotator models: a run does it before the Wan pipeline loads; the page can do it first, for
        a look. Returns field -> the control video written in `folder`, and what the recipe says of
        each. Controls from the same video share one pass (pose and face: one person search)."""
        import pipelines
        from wan_studio import extract

        request = request.prepare()
        record = request.checkpoint
        wrapper = pipelines.wrapper_for(request)
        report = report or (lambda event: None)
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        stamp = secrets.token_hex(3)  # a folder may keep several runs' controls (the page's)

        by_source: dict[str, dict[str, str]] = {}
        for field, (kind, source) in request.controls_to_extract().items():
            by_source.setdefault(source, {})[field] = kind
        from wan_studio.memory.estimate import extraction_gb

        self.swap.make_room(extraction_gb(request))
        made, extracted = {}, {}
        for source, wanted in by_source.items():
            frames = pipelines.extraction_frames(wrapper, request, record, source)
            task, started = ", ".join(wanted.values()), time.perf_counter()

            def progress(done: int, total: int, task=task, started=started) -> None:
                report(JobStatus("extracting", step=done, total=total, task=task,
                                 elapsed_s=time.perf_counter() - started))
                if cancel is not None and cancel.is_set():
                    raise Cancelled("Stopped by the user; nothing was saved.")

            progress(0, len(frames))
            name = Path(getattr(request, source)).name
            options = request.extraction_options()
            controls = extract.controls(list(wanted.values()), frames, record.is_tiny, device=self.swap.backend.device,
                                        settings=self.settings, field=source, name=name, progress=progress, **options)
            seconds = round(time.perf_counter() - started, 3)
            for field, kind in wanted.items():
                path = folder / f"{Path(name).stem}-{kind}-{stamp}.mp4"
                write_mp4(path, np.stack([np.asarray(frame) for frame in controls[kind]]), record.fps)
                made[field] = str(path)
                extracted[field] = {"kind": kind, "from": name, "seconds": seconds,
                                    "annotator": extract.annotator_for(kind, record.is_tiny).id}
                if kind == "pose" and options.get("character"):
                    extracted[field]["fitted_to"] = Path(options["character"]).name
        return made, extracted

    def _denoise(self, run: GenerationRun) -> Denoised:
        """Activate the pipeline with the run's plan, then denoise and decode, reporting every step."""
        import pipelines
        from wan_studio.runtime import windows

        if run.request.parallel > 1:  # split over several GPUs, in processes of their own
            return self._denoise_in_parallel(run)
        if self.swap.backend.has_gpu:
            parallel.end_warm_groups()  # their GPU memory is this job's
        request, record, wrapper, plan = run.request, run.record, run.wrapper, run.plan
        report, cancel, previews = run.report, run.cancel, run.previews
        long_video = request.windows(record) if getattr(request, "long_video", False) else None  # None: one pass
        total = pipelines.total_steps(wrapper, request) * (long_video.count if long_video else 1)
        window_now, skipped = [None], [0]  # the window being made; steps of windows kept from an earlier run
        report(JobStatus("loading"))
        pipe = self.swap.activate(record, pipelines.pipeline_mode(wrapper, request), plan)
        from wan_studio.loras import apply as lora_apply

        lora_apply.prepare(pipe, request, record)  # the job's LoRAs on, any others off (no reload)
        cache = step_cache.apply(pipe, request, record)  # after the LoRAs: outside group offloading
        loaded = time.perf_counter()
        step_times: list[float] = []
        preview_every = max(1, total // 8)

        def on_step_end(pipe_, step, timestep, callback_kwargs):
            step_times.append(time.perf_counter())
            done = len(step_times) + skipped[0]
            per_step = (step_times[-1] - loaded) / len(step_times)
            preview = None
            if previews and (done % preview_every == 0 or done == total):
                preview = latent_preview(callback_kwargs.get("latents"), vae=record.shared.get("vae"))
            report(JobStatus("running", step=done, total=total, elapsed_s=step_times[-1] - loaded,
                             remaining_s=per_step * max(0, total - done), preview=preview,
                             clip=callback_kwargs.get("clip") or window_now[0],
                             clips=callback_kwargs.get("clips") or (long_video.count if long_video else None)))
            if cancel is not None and cancel.is_set():
                raise Cancelled("Stopped by the user; nothing was saved.")
            return callback_kwargs

        account = None
        compiling_before = compiled.so_far() if plan.compile == "repeated-blocks" else None
        try:
            if long_video is None:
                frames = wrapper.run(pipe, request, record, on_step_end)
            else:
                def activate(mode: str):
                    return self.swap.activate(record, mode, plan)

                def report_window(index: int, resumed: bool) -> None:
                    window_now[0] = index + 1
                    if resumed:  # made before a restart or a Stop: its steps count as done
                        skipped[0] += total // long_video.count

                try:
                    frames, account = windows.run(request, record, wrapper, activate, on_step_end, run.saved_windows,
                                                  report_window, budget=self.windows_per_run)
                except Cancelled:
                    kept = run.saved_windows.kept()
                    if kept:  # stopped after some windows: they stay, and the message says so
                        raise WindowsKept(kept, long_video.count) from None
                    raise
        finally:
            cache.remove()
        compiling = compiled.so_far() - compiling_before if compiling_before is not None else None
        if compiling is not None and (compiling.compiled or compiling.cached):  # keep them for the next start
            compiled.save_artifacts(self.swap.compiled_graphs)
        per_step = round((step_times[-1] - loaded) / len(step_times), 4) if step_times else None
        return Denoised(frames, total, loaded, per_step, cache, windows=account, compiling=compiling)

    def _denoise_in_parallel(self, run: GenerationRun) -> Denoised:
        """The job's ranks load and run it on their GPUs (runtime/parallel.py): this process's
        pipeline is released first, so the first GPU has room for rank 0."""
        import pipelines

        request, report = run.request, run.report
        self.swap.release()
        report(JobStatus("loading"))
        loaded = time.perf_counter()
        rank = torchrun_rank()
        if rank is not None:  # torchrun started this process as one rank: it runs its share here
            from wan_studio.runtime.rank import run_group

            frames, account = run_group(request, self.settings, report if rank == 0 else None)
        else:
            frames, account = parallel.run(request, self.settings, self._scratch_root(), report, run.cancel,
                                           self.parallel_devices)
        cache = step_cache.StepCache.from_recipe(account.pop("cache"))  # as rank 0 ran it
        return Denoised(frames, pipelines.total_steps(run.wrapper, request), loaded, None, cache, parallel=account)

    def _saved_windows(self, request):
        """Where a long job keeps its finished windows until its result is saved."""
        from wan_studio.runtime.windows import SavedWindows, job_key

        return SavedWindows(self.library.root / ".scratch" / "windows" / job_key(request))  # made when one is saved

    def _recipe(self, run: GenerationRun, timings: dict) -> dict:
        """What the result's recipe says of the run; `timings`: how long loading and generating took."""
        from wan_studio.memory.apply import vae_tiling_in_use

        request, record, plan, choice = run.request, run.record, run.plan, run.choice
        backend = self.swap.backend
        estimate = choice.estimate
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
                **plan.as_dict(), "plan": plan.name, "pinned": choice.pinned, "vae_dtype": backend.vae_dtype,
                "attention": self.swap.attention.name if self.swap.attention else plan.attention,
                "device": backend.device, "machine": choice.machine.describe(),
                "vae_tiling_used": vae_tiling_in_use(self.swap.active_pipeline),
                "estimate": {"peak_gb": estimate.peak_gb, "ram_gb": estimate.ram_gb, "seconds": estimate.seconds},
                "steps_down": run.steps_down, "notes": list(self.swap.plan_notes),
            },
            **({"files": self.swap.files} if self.swap.files else {}),  # the user's own files, as loaded
            "timings": timings,
            "backend": backend.as_dict(),
            "versions": dict(package_versions()),
        }

    def _revision(self, record) -> str:
        from wan_studio import models
        from wan_studio.models import tiny

        if record.is_tiny:
            return f"tiny-v{tiny.TINY_FORMAT_VERSION}"
        folder = models.find_local(record, self.settings)
        if folder is not None and folder.parent.name == "snapshots":
            return folder.name  # the Hub commit hash of the cached snapshot
        return f"local:{folder}" if folder else "unknown"


@functools.cache  # installed versions do not change while the studio runs; reading them scans site-packages
def package_versions() -> dict[str, str]:
    found = {"wan_studio": __version__, "python": platform.python_version()}
    for name in ("torch", "diffusers", "transformers", "accelerate", "imageio-ffmpeg"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found
