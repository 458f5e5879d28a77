"""I2V: image to video with WanImageToVideoPipeline (Wan 2.1 I2V 480P/720P, Wan 2.2 I2V-A14B MoE,
TI2V-5B). The image is loaded upright and in RGB, then resized to the output size; the output
size itself was chosen from the image's aspect ratio when the request was built."""

from __future__ import annotations

from pipelines.common import call_pipeline
from wan_studio import media


def pipeline_kwargs(request, record) -> dict:
    image = media.center_crop_resize(media.load_image(request.image), request.width, request.height)
    kwargs = dict(image=image, height=request.height, width=request.width, num_frames=request.frames)
    if record.is_moe:
        kwargs["guidance_scale_2"] = request.guidance_2
    return kwargs


def run(pipe, request, record, callback):
    return call_pipeline(pipe, request, callback, **pipeline_kwargs(request, record))
