"""What a run would be, without running it: the prepared request, its memory plan and estimate.

`generate --dry-run` prints this as JSON. It loads no weights (a real checkpoint need not be
downloaded): the plan and estimate come from the checkpoint's exact size counted on the meta
device, for this machine.
"""

from __future__ import annotations

import dataclasses

from wan_studio.requests import GenerationRequest
from wan_studio.settings import Settings


def _gib(value: float) -> float:
    return round(value, 2)


def _cache_summary(request, record) -> dict:
    from wan_studio.memory import step_cache

    method, reason = step_cache.method_for(record, request.mode_info.step_cache, step_cache.conditioning_of(request))
    found = {"setting": request.cache, "method": method if request.cache != "off" else None,
             "expected_skip": step_cache.expected_skip(request.cache, method)}
    if request.cache != "off" and reason:
        found["message"] = f"Runs without a step cache: {reason}."
    return found


def prepared_summary(request: GenerationRequest, settings: Settings, machine=None) -> dict:
    from wan_studio.backend import detect
    from wan_studio.memory.choose import attention_of, choose
    from wan_studio.memory.estimate import estimate
    from wan_studio.memory.plans import NoPlanFits, ladder, machine_from_backend

    request = request.prepare()
    record = request.checkpoint
    machine = machine or machine_from_backend(detect(), settings.memory_limit_gb, settings.compile)
    pinned = request.memory_plan if request.memory_plan != "auto" else settings.memory_plan
    summary = {
        "mode": request.mode, "model": record.id, "prompt": request.prompt, "negative_prompt": request.negative_prompt,
        "width": request.width, "height": request.height, "frames": request.frames, "fps": record.fps,
        "duration_s": round(request.duration_s, 3), "steps": request.steps, "guidance": request.guidance,
        "guidance_2": request.guidance_2, "flow_shift": request.flow_shift, "seed": request.seed,
        "preset": request.preset, "loras": [lora.as_recipe() for lora in request.resolved_loras],
        "inputs": request.input_files(), "messages": request.preset_messages,
        "cache": _cache_summary(request, record),
        "scheduler": (request.sampler if request.sampler != "dmd"
                      else f"dmd ({', '.join(map(str, record.timesteps))})"),
    }
    if record.is_moe:  # diffusers: guidance_scale drives `transformer` (high noise), guidance_scale_2 `transformer_2`
        summary["experts"] = {"high_noise": {"guidance": request.guidance, "boundary_ratio": record.boundary_ratio},
                              "low_noise": {"guidance": request.guidance_2}}
    # the mode's own fields (VACE sub-mode, strength, clip length, ...) as the request holds them
    shared = {f.name for f in dataclasses.fields(GenerationRequest)}
    for f in dataclasses.fields(request):
        if f.name not in shared and f.name not in request.file_fields:
            summary[f.name] = getattr(request, f.name)
    for derived in ("clips", "segments", "audio_duration_s"):  # S2V clips and audio, Animate segments
        if hasattr(type(request), derived):
            summary[derived] = getattr(request, derived)
    windows = request.windows() if getattr(request, "long_video", False) else None
    if windows is not None:  # a long video: made in windows, each continuing from the one before
        from wan_studio.runtime.windows import prompt_for

        summary["windows"] = {**windows.as_dict(),
                              "prompts": [prompt_for(request.prompt, i) for i in range(windows.count)]}
    from wan_studio.models import single_file

    files = single_file.describe(record, settings)
    if files:  # the user's own single files, loaded instead of the folder's weights for these components
        summary["files"] = files
    wanted = request.controls_to_extract()
    if wanted:  # what annotator models will make first, from which input
        from wan_studio.extract import annotator_for

        summary["extract"] = {field: {"kind": kind, "from": source, "annotator": annotator_for(kind, record.is_tiny).id}
                              for field, (kind, source) in wanted.items()}
    try:
        choice = choose(record, request, machine, pinned, attention_of(request, settings))
        plan, est, fits, notes = choice.plan, choice.estimate, choice.estimate.fits(choice.machine), choice.messages
        machine = choice.machine
    except NoPlanFits as exc:  # say what the smallest plan would need, and that it does not fit
        plan = ladder(machine, record)[-1]
        est, fits, notes = estimate(record, request, plan, machine), False, (str(exc),)
    summary.update(
        plan=plan.name, plan_label=plan.label, attention=plan.attention, machine=machine.describe(), fits=fits,
        estimate={"seconds": round(est.seconds, 1), "peak_gib": _gib(est.peak_gb), "ram_gib": _gib(est.ram_gb)},
    )
    summary["messages"] = [*summary["messages"], *notes]
    return summary
