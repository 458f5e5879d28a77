"""FLF2V: first and last frame to video through WanImageToVideoPipeline's `last_image`
(Wan 2.1 FLF2V-14B-720P, Wan 2.2 I2V-A14B). The output takes the first frame's aspect ratio;
the last frame is centre-cropped and resized to the same size."""

from __future__ import annotations

from pipelines.common import call_pipeline
from wan_studio import media


def pipeline_kwargs(request, record) -> dict:
    size = (request.width, request.height)
    first = media.center_crop_resize(media.load_image(request.image), *size)
    last = media.center_crop_resize(media.load_image(request.last_image, field="last_image"), *size)
    kwargs = dict(image=first, last_image=last, height=request.height, width=request.width, num_frames=request.frames)
    if record.is_moe:
        kwargs["guidance_scale_2"] = request.guidance_2
    return kwargs


def run(pipe, request, record, callback):
    return call_pipeline(pipe, request, callback, **pipeline_kwargs(request, record))
