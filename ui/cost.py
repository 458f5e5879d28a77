"""The line under Generate: what a run will cost (checkpoint, frames x size, time, memory)."""

from __future__ import annotations


def cost_line(request) -> str:
    try:
        from wan_studio.plans import cost_line as engine_cost_line
    except ImportError:
        engine_cost_line = None
    if engine_cost_line is not None:
        return engine_cost_line(request)
    # TODO(issue 6): the memory-plan estimator provides wan_studio.plans.cost_line; remove this fallback at merge
    record = request.checkpoint
    return (f"{record.name} · {request.frames} frames x {request.width}x{request.height} · "
            f"{request.duration_s:.2f} s of video at {record.fps} fps")
