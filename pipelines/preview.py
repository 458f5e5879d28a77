"""Preview: one frame from a T2V-capable checkpoint (WanPipeline with num_frames=1), saved as PNG."""

from __future__ import annotations

from pipelines import t2v

OUTPUT = "image"


def run(pipe, request, record, callback):
    return t2v.run(pipe, request, record, callback)
