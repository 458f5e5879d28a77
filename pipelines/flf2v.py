"""FLF2V: first and last frame to video through WanImageToVideoPipeline's `last_image`
(Wan 2.1 FLF2V-14B-720P, Wan 2.2 I2V-A14B). The output takes the first frame's aspect ratio;
the last frame is centre-cropped and resized to the same size."""

from __future__ import annotations

from pipelines.common import call_pipeline
from wan_studio import media


def pipeline_kwargs(request, record) -> dict:
    size = (request.width, request.height)
    first = media.center_crop_resize(media.load_image(request.image), *size)
    kwargs = dict(image=first, height=request.height, width=request.width, num_frames=request.frames)
    if request.last_image:  # a long video's earlier windows are free; only its last ends on the last image
        kwargs["last_image"] = media.center_crop_resize(media.load_image(request.last_image, field="last_image"), *size)
    if record.is_moe:
        kwargs["guidance_scale_2"] = request.guidance_2
    return kwargs


def run(pipe, request, record, callback):
    kwargs = pipeline_kwargs(request, record)
    transformer = getattr(pipe, "transformer", None)
    if "last_image" in kwargs or not getattr(getattr(transformer, "config", None), "pos_embed_seq_len", None):
        return call_pipeline(pipe, request, callback, **kwargs)
    # Wan 2.1 FLF2V's transformer always reads two image embeddings; a free window (no last frame to
    # reach) gives the first image's twice, while only the first frame is held in the latents.
    # diffusers takes either the image or its embeddings, so its encoder is wrapped for this call.
    encode = pipe.encode_image
    pipe.encode_image = lambda image, device=None: encode([image, image], device)
    try:
        return call_pipeline(pipe, request, callback, **kwargs)
    finally:
        del pipe.encode_image  # the class's own again
