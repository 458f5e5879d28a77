"""Named Gradio API endpoints, one per mode: `/t2v`, `/i2v`, `/flf2v`, `/v2v`, `/vace`, `/ti2v`,
`/animate`, `/preview`.

Every endpoint takes the same shape: `model`, `prompt`, the mode's input files (uploaded by
gradio_client's `handle_file`), and `options`, a dict of any other request fields (frames, width,
height, seed, steps, guidance, vace_mode, strength, ...). They build the same typed request the
page and the CLI build, so validation and messages are identical; a bad field comes back as the
error's message. They return the result file and its recipe.
"""

from __future__ import annotations

import gradio as gr

from wan_studio.errors import StudioError
from wan_studio.settings import Settings

# mode -> file inputs (request field names), in endpoint parameter order
FILE_INPUTS = {
    "t2v": (), "preview": (), "i2v": ("image",), "ti2v": ("image",), "flf2v": ("image", "last_image"),
    "v2v": ("video",), "vace": ("video", "mask", "image", "last_image", "reference"),
    "animate": ("image", "pose_video", "face_video", "background_video", "mask_video"),
}


def build_request(mode: str, model: str, prompt: str, files: dict, options: dict | None):
    from wan_studio.errors import RequestError
    from wan_studio.requests import request_types

    options = dict(options or {})
    clash = sorted(set(options) & ({"model", "prompt", "mode"} | set(files)))
    if clash:
        raise RequestError(clash[0], f"'{clash[0]}' is a parameter of its own; leave it out of options.")
    cls = request_types()[mode]
    try:
        return cls(model=model, prompt=prompt or "", **{k: v for k, v in files.items() if v}, **options)
    except TypeError as exc:  # an option that is not a field of this mode
        raise RequestError("options", f"Unknown option for {mode}: {exc}.") from None


def _paths(value):
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return [getattr(v, "name", v) for v in value] or None
    return getattr(value, "name", value)


def make_endpoint(mode: str, run_request):
    names = FILE_INPUTS[mode]

    def endpoint(model, prompt, *rest):
        *file_values, options = rest
        files = {name: _paths(value) for name, value in zip(names, file_values)}
        try:
            request = build_request(mode, model, prompt, files, options)
            result = run_request(request)
        except StudioError as exc:
            raise gr.Error(str(exc))
        return str(result.media), result.recipe

    endpoint.__name__ = f"api_{mode}"
    return endpoint


def register_api(run_request) -> None:
    """Hidden components and one named endpoint per mode; call inside a gr.Blocks context.

    `run_request(request) -> Result` is how a job gets done (the engine, or the queue).
    """
    with gr.Column(visible=False):
        for mode, names in FILE_INPUTS.items():
            model = gr.Textbox(label="model")
            prompt = gr.Textbox(label="prompt")
            files = [gr.File(label=name, file_count="multiple" if name == "reference" else "single") for name in names]
            options = gr.JSON(label="options")
            out_file, out_recipe = gr.File(label="result"), gr.JSON(label="recipe")
            trigger = gr.Button(f"api {mode}")
            trigger.click(make_endpoint(mode, run_request), [model, prompt, *files, options], [out_file, out_recipe],
                          api_name=mode, concurrency_id="gpu", concurrency_limit=1)
