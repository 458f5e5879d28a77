"""TI2V (Wan 2.2 TI2V-5B): text to video, or text + image when an image is given. Both go through
diffusers with `expand_timesteps` (WanPipeline, or WanImageToVideoPipeline with the image)."""

from __future__ import annotations

from pipelines import i2v, t2v


def pipeline_mode(request) -> str:
    """Which catalog pipeline serves this request: the I2V class when an image is given."""
    return "i2v" if request.image else "ti2v"


def run(pipe, request, record, callback):
    return (i2v if request.image else t2v).run(pipe, request, record, callback)
