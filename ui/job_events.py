"""What a panel's job buttons do, and how the panel follows each job it queued.

Generate (with its variations), Extend, Smooth, Upscale, Vary and Resume each queue jobs through
the studio, add a card per job to the panel's job list (ui/job_cards.py) and follow it: its
progress, the live preview, then its result, its line and its recipe in the player. A refused
request marks the input that caused it. Stop ends the panel's running job. The panel itself (its
inputs, the estimate line, the sub-mode switch) is built and wired in ui/panels.py.
"""

from __future__ import annotations

import dataclasses
import inspect

import gradio as gr

from ui import job_cards
from ui import panel_tools as tools
from ui.panel_specs import build_request
from ui.progress_cards import final_card
from ui.runtime import get_studio, owner_of
from wan_studio.errors import Cancelled, StudioError
from wan_studio.settings import Settings

# a job's progress reaches the page at most this often (driven by the worker's events): each update
# costs the page a walk of its ~700 components, and a person reads no faster
PROGRESS_INTERVAL_S = 0.25


def error_updates(panel, exc: Exception | None) -> list:
    """Show the message next to the input that caused it; hide every other error slot."""
    field_name = getattr(exc, "field", None)
    if field_name in ("width", "height"):
        field_name = "size"
    if field_name == "guidance_2":
        field_name = "guidance"
    slot = field_name if field_name in panel.errors else None
    # (values only: an empty slot is hidden by the stylesheet; see the result player in build_panel)
    updates = [f"⚠ {exc}" if exc is not None and name == slot else "" for name in panel.errors]
    return updates + [f"⚠ {exc}" if exc is not None and slot is None else ""]


def wire_jobs(panel, settings: Settings, names: list[str], components: list) -> None:
    """The panel's (ui.panels.Panel) Generate, follow-on actions, Resume and Stop; `names` and
    `components`: the request's fields as the panel holds them."""
    private = dict(api_visibility="private")
    mode = panel.mode
    recent = panel.extras["recent"]
    resume = panel.extras["resume"]
    # what following a job updates: the last job started, the job list, the live preview, the result,
    # its line, its recipe (values only: the toolbar and Resume follow the job list by the stylesheet)
    followed = [panel.job_id, panel.progress, panel.preview, panel.video, panel.status, panel.recipe]

    def follow(job_id: str, session: str):
        """Each change of one job, drawn with the panel's other jobs, then its result (a generator per job)."""
        studio = get_studio(settings)
        keep = gr.update()

        def cards():
            return job_cards.render(studio, session, mode)

        yield [job_id, cards(), keep, keep, keep, keep]
        if studio.gpu_call is not None:  # ZeroGPU: the job runs here, inside the GPU reservation
            try:
                studio.gpu_call(job_id)
            except StudioError:
                pass
        shown_preview = None
        try:
            for status in studio.watch(job_id, min_interval_s=PROGRESS_INTERVAL_S):
                if status.is_final:
                    break
                preview = keep
                if status.preview is not None and status.preview is not shown_preview:
                    shown_preview = status.preview
                    preview = gr.update(value=status.preview)
                yield [keep, cards(), preview, keep, keep, keep]
        except StudioError:  # removed from the queue while waiting: its card goes with it
            pass
        job_cards.ended(session, mode, job_id)
        gone = gr.update(value=None)
        job = studio.store.get(job_id)
        if job is None:
            yield [keep, final_card("failed", f"Job {job_id} was removed from the queue."), gone, keep, keep, keep]
            return
        try:
            result = studio.result_of(job)
        except Cancelled:
            yield [keep, cards(), gone, keep, f"Job {job_id} stopped.", keep]
            return
        except StudioError as exc:
            yield [keep, cards(), gone, keep, f"**Failed:** {exc}", keep]
            return
        yield [keep, cards(), gone, gr.update(value=str(result.media)), saved_text(result), result.recipe]

    def generate(*values):
        *values, request = values
        named = dict(zip(names, values))
        keep = gr.update()
        try:
            typed = build_request(mode, named)
            studio = get_studio(settings)
            jobs = studio.worker.add_many(variations_of(typed, int(named.get("variations") or 1)),
                                          owner=owner_of(settings, request))
        except StudioError as exc:  # said beside its input (no toast: it would outlive the fix)
            yield ([keep, final_card("refused", "Not queued: fix the marked input.")] + [keep] * (len(followed) - 2)
                   + error_updates(panel, exc) + [keep, keep])
            return
        session = _session(request)
        for job in jobs:
            job_cards.add(session, mode, job.id)
        # one after another, as the queue runs them; every card shows meanwhile. The marks of an earlier
        # refusal and the last Generate's variations go with the first update (the last one carries the
        # result, and nothing else changes with it); each variation made joins the grid after its result
        errors = error_updates(panel, None)
        grid, ids = [], []
        variants = [grid, ids]
        for job in jobs:
            for update in follow(job.id, session):
                yield update + errors + variants
                errors, variants = [keep] * len(errors), [keep, keep]
            if len(jobs) > 1 and (result := _result(studio, job.id)) is not None:
                seed = result.recipe.get("request", {}).get("seed")
                grid.append((str(result.media), f"seed {seed}"))
                ids.append(result.id)
                yield [keep] * (len(followed) + len(errors)) + [list(grid), list(ids)]

    def show_variant(ids, evt: gr.SelectData):
        """The variation clicked, in the player with its line and recipe (the toolbar then acts on it)."""
        result = get_studio(settings).engine.library.get(ids[evt.index]) if 0 <= evt.index < len(ids) else None
        if result is None:
            return gr.update(), "That variation is no longer in the gallery.", gr.update()
        return str(result.media), saved_text(result), result.recipe

    def following_on(queue_it):
        """A job made from the result shown (Extend, Smooth, Upscale) or a stopped one resumed: its
        toolbar waits for the new result, so the next action is on that one, never on the one before."""
        def run(*values):
            *values, request = values
            try:
                job = queue_it(*values, request)
            except StudioError as exc:
                yield [gr.update(), final_card("refused", f"Not queued: {exc}")] + [gr.update()] * (len(followed) - 2)
                return
            session = _session(request)
            job_cards.add(session, mode, job.id, follow_on=True)
            yield from follow(job.id, session)

        return run

    def extend_shown(recipe, seconds, prompt, request):
        """Continue the result shown by `seconds`, as a new job (the prompt box says what comes next)."""
        from wan_studio.runtime.extend import extension_request

        studio = get_studio(settings)
        result = studio.engine.library.get(str((recipe or {}).get("id") or ""))
        if result is None:
            raise StudioError("Generate a video first: Extend continues the result shown here.")
        return studio.submit(extension_request(result.media, float(seconds or 0), prompt or None),
                             owner=owner_of(settings, request))

    def resume_stopped(request):
        studio = get_studio(settings)
        with_windows = [job_id for job_id in job_cards.jobs_of(_session(request), mode)[::-1]
                        if (job := studio.store.get(job_id)) is not None and job.resumable]
        if not with_windows:
            raise StudioError("No stopped job of this page has windows to go on from.")
        return studio.resume(with_windows[0])

    # explicit signatures, so gradio passes one value per component and the gr.Request last
    P = inspect.Parameter

    def signed(fn, count: int):
        fn.__signature__ = inspect.Signature(
            [P(f"v_{k}", P.POSITIONAL_OR_KEYWORD) for k in range(count)]
            + [P("request", P.POSITIONAL_OR_KEYWORD, default=None, annotation=gr.Request)])
        fn.__annotations__ = {"request": gr.Request}  # (gradio finds the gr.Request by its type hint)
        return fn

    # our own queue orders the work, so these handlers may run side by side: each follows its own job
    # ("multiple": a click while an earlier one still follows its job queues another, as a person expects)
    variants = [panel.extras["variants"], panel.extras["variant_ids"]]
    panel.generate.click(signed(generate, len(components)), components,
                         followed + panel.error_components() + variants,
                         concurrency_limit=None, show_progress="hidden", trigger_mode="multiple", **private).then(
        tools.recent_prompts(mode, settings), None, recent, queue=False, show_progress="hidden", **private)
    if "extend" in panel.extras:  # (named apart from the API's /extend: private events take names too)
        panel.extras["extend"].click(signed(following_on(extend_shown), 3),
                                     [panel.recipe, panel.extras["extend_seconds"], panel.prompt], followed,
                                     concurrency_limit=None, show_progress="hidden", trigger_mode="multiple",
                                     **private)
    if "smooth" in panel.extras:
        panel.extras["smooth"].click(signed(following_on(tools.finish_shown(settings, "interpolate", factor=2)), 1),
                                     panel.recipe, followed, concurrency_limit=None, show_progress="hidden",
                                     trigger_mode="multiple", **private)
    if "upscale" in panel.extras:
        panel.extras["upscale"].click(signed(following_on(tools.upscale_shown(settings)), 2),
                                      [panel.recipe, panel.extras["upscale_to"]], followed, concurrency_limit=None,
                                      show_progress="hidden", trigger_mode="multiple", **private)

    def vary_shown(recipe, request):
        """The result shown, made again with a new seed (its own inputs, as its recipe keeps them)."""
        from wan_studio.requests import request_from_dict
        from wan_studio.runtime.gallery import reload_request

        studio = get_studio(settings)
        data = reload_request(studio.engine.library, str((recipe or {}).get("id") or ""))
        data.pop("seed", None)
        return studio.submit(request_from_dict(data), owner=owner_of(settings, request))

    panel.extras["vary"].click(signed(following_on(vary_shown), 1), panel.recipe, followed, concurrency_limit=None,
                               show_progress="hidden", trigger_mode="multiple", **private)
    panel.extras["reuse_seed"].click(
        lambda recipe: [gr.update(value=((recipe or {}).get("request") or {}).get("seed")), False],
        panel.recipe, [panel.seed, panel.randomize], queue=False, **private)
    panel.extras["variants"].select(show_variant, panel.extras["variant_ids"],
                                    [panel.video, panel.status, panel.recipe], show_progress="hidden", **private)
    resume.click(signed(following_on(resume_stopped), 0), None, followed, concurrency_limit=None,
                 show_progress="hidden", **private)
    # the stop event never waits behind a job
    panel.stop.click(_stop_job(settings, mode), None, None, queue=False, **private)


def saved_text(result) -> str:
    """The line under the player: the file and what it is."""
    out = result.recipe.get("output", {})
    seed = result.recipe.get("request", {}).get("seed")
    return (f"Saved **{result.media.name}**: {out.get('frames')} frames, {out.get('width')}x{out.get('height')}, "
            f"{out.get('fps')} fps ({out.get('duration_s')} s), seed {seed}.")


def _result(studio, job_id: str):
    """A job's result, or None when it has none (stopped, failed, removed)."""
    job = studio.store.get(job_id)
    try:
        return studio.result_of(job) if job is not None else None
    except StudioError:
        return None


def variations_of(request, count: int) -> list:
    """The request `count` times, each with its own seed: the next seeds after a chosen one, else
    random ones (each run picks its own)."""
    if not 1 <= count <= 4:
        raise StudioError(f"Variations must be 1 to 4; got {count}.")
    return [request] + [dataclasses.replace(request, seed=None if request.seed is None else request.seed + k)
                        for k in range(1, count)]


def _session(request: gr.Request | None) -> str:
    """The browser tab's session (one job list per tab and mode); a call without one shares a list."""
    return getattr(request, "session_hash", None) or "-"


def _stop_job(settings: Settings, mode: str):
    def stop_job(request: gr.Request):
        studio = get_studio(settings)
        job_id = job_cards.to_stop(studio, _session(request), mode)
        if not job_id:
            return
        try:
            studio.worker.stop_job(job_id)
        except StudioError as exc:
            gr.Warning(str(exc), duration=4)

    return stop_job
