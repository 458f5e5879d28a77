"""T2V: text to video with WanPipeline, dense (Wan 2.1, TI2V-5B) or MoE (Wan 2.2 A14B)."""

from __future__ import annotations

from pipelines.common import call_pipeline


def pipeline_kwargs(request, record) -> dict:
    kwargs = dict(height=request.height, width=request.width, num_frames=request.frames)
    if record.is_moe:
        # high-noise expert uses guidance_scale, low-noise expert guidance_scale_2
        kwargs["guidance_scale_2"] = request.guidance_2
    return kwargs


def run(pipe, request, record, callback):
    return call_pipeline(pipe, request, callback, **pipeline_kwargs(request, record))
