"""Named Gradio API endpoints, one per mode: `/t2v`, `/i2v`, `/flf2v`, `/v2v`, `/vace`, `/ti2v`,
`/animate`, `/preview`, `/s2v`.

Every endpoint takes the same shape: `model`, `prompt`, the mode's input files (uploaded by
gradio_client's `handle_file`), and `options`, a dict of any other request fields (frames, width,
height, seed, steps, guidance, vace_mode, strength, ...); a file input added after its endpoint was
released comes after `options`, optional (`added_later` in its declaration), so clients written
against an earlier release keep working. The parameters are kept in tests/data/api_snapshot.json
(tests/test_api_contract.py: none removed, renamed, moved or newly required). They build the same typed request the
page and the CLI build, so validation and messages are identical; a bad field comes back as the
error's message. They return the result file and its recipe. Each call is one job in the studio's
persistent queue, so calls from many clients run one at a time, in order, and none is lost.

Also: `/stats` (the latest CPU / RAM / GPU / VRAM sample), `/queue` (the caller's jobs; every
job on a single-user studio), `/stop` (stop one of them by id) and `/resume` (a long job stopped
after some windows, `resumable` in `/queue`, goes on from the next window). `/rerun` (result id) runs a
result's recipe again; `/extend` (result id, seconds, options {prompt, seed}) continues a T2V,
I2V or TI2V result by that many seconds, as a new result whose recipe names its parent;
`/interpolate` (result id, factor 2 or 4, options {model}) smooths a result with RIFE, as a new
result with its parent's sound; `/upscale` (result id, scale 2 or 4, options {model, tile, target}) makes
it 2 or 4 times larger with Real-ESRGAN, or with {"target": "1080p" | "1440p" | "4k"} that size (its
short side 1080, 1440 or 2160 px; the target wins over the scale). A finishing endpoint's options are
its request's declared fields. Both are jobs of the queue like a generation.

Presets and LoRAs go through `options` like any request field: `{"preset": "fast", "loras":
[{"source": "style.safetensors", "weight": 0.8, "expert": "both"}]}`; over the API a LoRA is named
(a file of the LoRAs folder, a preset-table name or `hf://...`), never a server path.
`/enhance` (prompt, mode, llm) returns {prompt, method, language, messages}.
`/extract` (kind, video, options) makes a control video from a plain one (kind: depth, pose, face,
mask, background, layout; options: {"annotator": ID, "point": [x, y] or "box": [x0, y0, x1, y1]
(the object clicked or boxed on the first frame, for mask and background; else the main person),
"mask_shape": "outline" or "box"}) and returns the file and {kind, frames, fps}; it waits for the
running job, as the annotator shares the accelerator.
"""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import gradio as gr

from ui.runtime import owner_of, refused
from wan_studio.errors import RequestError, StudioError
from wan_studio.settings import Settings


def file_inputs() -> dict[str, tuple[str, ...]]:
    """mode -> its file inputs (request field names) in endpoint parameter order, as the request declares them."""
    from wan_studio.requests import request_types
    from wan_studio.requests.fields import meta

    # Extend's video to continue is a result of the library: `/extend` takes it, by id
    return {mode: tuple(sorted((name for name in cls.file_fields if meta(cls, name).get("page", True)),
                               key=lambda name: meta(cls, name).get("added_later", False)))
            for mode, cls in request_types().items()}


def endpoint_parameters(mode: str) -> tuple[str, ...]:
    """The mode endpoint's parameters in order: model, prompt, the files, options, then files added later."""
    from wan_studio.requests import request_types
    from wan_studio.requests.fields import meta

    cls = request_types()[mode]
    names = file_inputs()[mode]
    later = tuple(name for name in names if meta(cls, name).get("added_later"))
    return ("model", "prompt", *(name for name in names if name not in later), "options", *later)


def option_names(mode: str) -> list[str]:
    """What `options` may hold for a mode: its request fields that are not parameters of their own."""
    from wan_studio.requests import request_types

    cls = request_types()[mode]
    return [f.name for f in dataclasses.fields(cls) if f.name not in {"model", "prompt", "mode", *cls.file_fields}]


def build_request(mode: str, model: str, prompt: str, files: dict, options: dict | None):
    from wan_studio.requests import request_types, unknown_option_message

    options = dict(options or {})
    clash = sorted(set(options) & ({"model", "prompt", "mode"} | set(files)))
    if clash:
        raise RequestError(clash[0], f"'{clash[0]}' is a parameter of its own; leave it out of options.")
    _check_lora_names(options.get("loras"))
    cls = request_types()[mode]
    paths = sorted(set(options) & set(cls.file_fields))  # a path in options would read any file on the server
    if paths:
        raise RequestError(paths[0], f"'{paths[0]}' is a file, not an option; to continue a result use /extend.")
    unknown = sorted(set(options) - set(option_names(mode)))
    if unknown:
        raise RequestError("options",
                           unknown_option_message(f"Unknown option for /{mode}", unknown, option_names(mode)))
    return cls(model=model, prompt=prompt or "", **{k: v for k, v in files.items() if v}, **options)


def _check_lora_names(value) -> None:
    """API clients name LoRAs; a path would let a client read any .safetensors file on the server."""
    for item in value if isinstance(value, list) else []:
        source = item.get("source") if isinstance(item, dict) else item
        if isinstance(source, str) and not source.startswith("hf://") and (
                "/" in source or "\\" in source or source.startswith(("~", "."))):
            raise RequestError("loras", f"LoRA '{source}': over the API a LoRA is named by its file name in the LoRAs "
                                        "folder or by a preset-table name (see `python -m wan_studio loras`), "
                                        "not a path.")


def _paths(value):
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return [getattr(v, "name", v) for v in value] or None
    return getattr(value, "name", value)


def make_endpoint(mode: str, settings: Settings, get_studio):
    parameters = endpoint_parameters(mode)

    def endpoint(*values):
        *values, request = values
        given = dict(zip(parameters, values))
        model, prompt, options = given.pop("model"), given.pop("prompt"), given.pop("options")
        files = {name: _paths(value) for name, value in given.items()}
        try:
            typed = build_request(mode, model, prompt, files, options)
            result = get_studio(settings).run(typed, owner=owner_of(settings, request))
        except StudioError as exc:
            raise refused(str(exc))
        return str(result.media), result.recipe

    endpoint.__name__ = f"api_{mode}"
    # an explicit signature, so gradio maps one input per parameter and passes the gr.Request last;
    # a default of None makes a parameter optional for clients: options, and the files added later
    P = inspect.Parameter
    optional = parameters[parameters.index("options"):]
    endpoint.__signature__ = inspect.Signature(
        [P(name, P.POSITIONAL_OR_KEYWORD, **({"default": None} if name in optional else {})) for name in parameters]
        + [P("request", P.POSITIONAL_OR_KEYWORD, default=None)]
    )
    endpoint.__annotations__ = {"request": gr.Request}
    return endpoint


def register_api(settings: Settings, get_studio) -> None:
    """Hidden components and the named endpoints; call inside a gr.Blocks context."""
    def stats():
        from wan_studio.runtime.stats import format_sample

        sample = get_studio(settings).sampler.latest()
        return {"sample": sample.as_dict() if sample else None, "text": format_sample(sample)}

    def queue(request: gr.Request):
        """Each of the caller's jobs: its status (queue/status.py JobStatus) with its mode, model and messages."""
        studio = get_studio(settings)
        rows = []
        for job in studio.store.list(owner=owner_of(settings, request)):
            status = studio.status(job.id)
            rows.append({"id": job.id, **status.as_dict(), "resumable": status.resumable, "mode": job.mode,
                         "model": job.model, "result": job.result_path, "error": job.error_message,
                         "messages": job.messages})
        return rows

    def own_job(studio, job_id, request):
        """The caller's job (on a shared studio, another session's is not there for them)."""
        job = studio.store.get(str(job_id))
        owner = owner_of(settings, request)
        if job is None or (owner is not None and job.owner != owner):
            raise refused(f"There is no job {job_id} of yours in the queue.")
        return job

    def stop(job_id: str, request: gr.Request):
        studio = get_studio(settings)
        job = own_job(studio, job_id, request)
        try:
            return studio.worker.stop_job(job.id).state
        except StudioError as exc:
            raise refused(str(exc))

    def resume(job_id: str, request: gr.Request):
        """Queue a long job stopped after some windows again (`/queue` says `resumable`); it goes on from the
        next window. Returns its state: queued (`/queue` follows it); on ZeroGPU it runs in this call, which
        returns its final state."""
        studio = get_studio(settings)
        job = own_job(studio, job_id, request)
        try:
            job = studio.resume(job.id)
            if studio.gpu_call is not None:  # ZeroGPU: GPU work runs inside the request
                studio.gpu_call(job.id)
                job = studio.store.get(job.id)
        except StudioError as exc:
            raise refused(str(exc))
        return job.state

    def extend(result_id: str, seconds, options: dict | None, request: gr.Request):
        """Continue a result of the library by `seconds` (options: prompt, seed): a new result."""
        from wan_studio.runtime.extend import extension_request
        from wan_studio.safety import check_inside

        studio = get_studio(settings)
        options = dict(options or {})
        try:
            unknown = sorted(set(options) - {"prompt", "seed"})
            if unknown:
                raise StudioError(f"Unknown option for /extend: {unknown[0]!r}; the options are 'prompt' and 'seed'.")
            check_inside(settings.output_dir, f"{result_id}.json", "result")
            result = studio.engine.library.get(str(result_id))
            if result is None or result.recipe is None:
                raise StudioError(f"There is no result {result_id!r} with a recipe in the library.")
            try:
                seconds = float(seconds)
            except (TypeError, ValueError):
                raise StudioError(f"Seconds must be a number; got {seconds!r}.") from None
            typed = extension_request(result.media, seconds, options.get("prompt"), options.get("seed"))
            new = studio.run(typed, owner=owner_of(settings, request))
        except StudioError as exc:
            raise refused(str(exc))
        return str(new.media), new.recipe

    def finishing(mode: str, amount: str):
        """An endpoint that finishes a result as a queued job: (result id, amount, options) -> a new result;
        the options are the request's other declared fields (its result and parent are the endpoint's)."""
        from wan_studio.requests import job_types
        from wan_studio.requests.fields import meta

        cls = job_types()[mode]
        option_names = tuple(f.name for f in dataclasses.fields(cls)
                             if f.name not in ("result", amount) and meta(cls, f.name).get("page", True))

        def finish(result_id: str, value, options: dict | None, request: gr.Request):
            from wan_studio.safety import check_inside

            studio = get_studio(settings)
            options = dict(options or {})
            try:
                unknown = sorted(set(options) - set(option_names))
                if unknown:
                    raise StudioError(f"Unknown option for /{mode}: {unknown[0]!r}; the options are "
                                      f"{', '.join(repr(name) for name in option_names)}.")
                model = str(options.get("model") or "")
                if Path(model).suffix and not model.startswith("hf://"):  # never a path on the server
                    raise StudioError(f"Over the API the model is an id (see `python -m wan_studio models`) or a Hub "
                                      f"file (hf://owner/repo/file.pth); got {model!r}.")
                check_inside(settings.output_dir, f"{result_id}.json", "result")
                result = studio.engine.library.get(str(result_id))
                if result is None or result.recipe is None or result.media.suffix != ".mp4":
                    raise StudioError(f"There is no video result {result_id!r} in the library.")
                value = int(value) if isinstance(value, (int, float)) and float(value).is_integer() else value
                amounts = {} if value is None else {amount: value}  # none given: the declared default
                typed = cls(result=str(result.media), **amounts, **options)
                made = studio.run(typed, owner=owner_of(settings, request))
            except StudioError as exc:
                raise refused(str(exc))
            return str(made.media), made.recipe

        return finish

    def rerun(result_id: str, request: gr.Request):
        """Re-run a result of the library from its recipe (the inputs are the library's copies)."""
        from wan_studio.requests import absolutize_inputs, request_from_dict
        from wan_studio.safety import check_inside

        studio = get_studio(settings)
        try:
            check_inside(settings.output_dir, f"{result_id}.json", "result")
            result = studio.engine.library.get(str(result_id))
            if result is None or result.recipe is None:
                raise StudioError(f"There is no result {result_id!r} with a recipe in the library.")
            data = absolutize_inputs(result.recipe["request"], settings.output_dir)
            typed = request_from_dict(data)
            for paths in typed.input_files().values():
                for path in paths:
                    check_inside(settings.output_dir, path, "input file")
            new = studio.run(typed, owner=owner_of(settings, request))
        except StudioError as exc:
            raise refused(str(exc))
        return str(new.media), new.recipe

    def enhance_prompt(prompt: str, mode: str, llm: str):
        from wan_studio.runtime.enhance import enhance_in_studio

        try:
            return enhance_in_studio(get_studio(settings), prompt, mode or "t2v", llm or "rules").as_dict()
        except StudioError as exc:
            raise refused(str(exc))

    def extract(kind: str, video, options: dict | None):
        from wan_studio import media
        from wan_studio.runtime.controls import extract_in_studio

        options = dict(options or {})
        try:
            unknown = sorted(set(options) - {"annotator", "point", "box", "mask_shape"})
            if unknown:
                raise StudioError(f"Unknown option for /extract: {unknown[0]!r}; the options are 'annotator', 'point', "
                                  "'box' and 'mask_shape'.")
            if video is None:
                raise StudioError("No video was given; upload the plain video to make the control from.")
            made = extract_in_studio(get_studio(settings), str(kind or ""), _paths(video), options.get("annotator"),
                                     options.get("point"), options.get("box"), options.get("mask_shape"))
            info = media.probe_video(made)
        except StudioError as exc:
            raise refused(str(exc))
        return str(made), {"kind": kind, "frames": info.frames, "fps": info.fps}

    with gr.Column(visible=False):
        extract_in = [gr.Textbox(label="kind"), gr.File(label="video"), gr.JSON(label="options")]
        extract_out = [gr.File(label="control"), gr.JSON(label="info")]
        gr.Button("api extract").click(extract, extract_in, extract_out, api_name="extract", concurrency_limit=None)
    with gr.Column(visible=False):
        enhance_in = [gr.Textbox(label="prompt"), gr.Textbox(label="mode"), gr.Textbox(label="llm")]
        enhance_out = gr.JSON(label="enhanced")
        gr.Button("api enhance").click(enhance_prompt, enhance_in, enhance_out, api_name="enhance",
                                       concurrency_limit=None)
    with gr.Column(visible=False):
        job_box, stats_out, queue_out, state_out = gr.Textbox(), gr.JSON(), gr.JSON(), gr.Textbox()
        result_box, rerun_file, rerun_recipe = gr.Textbox(), gr.File(), gr.JSON()
        gr.Button("api rerun").click(rerun, result_box, [rerun_file, rerun_recipe], api_name="rerun",
                                     concurrency_limit=None)
        extend_in = [gr.Textbox(label="result"), gr.Number(label="seconds"), gr.JSON(label="options")]
        gr.Button("api extend").click(extend, extend_in, [gr.File(), gr.JSON()], api_name="extend",
                                      concurrency_limit=None)
        smooth_in = [gr.Textbox(label="result"), gr.Number(label="factor"), gr.JSON(label="options")]
        gr.Button("api interpolate").click(finishing("interpolate", "factor"), smooth_in,
                                           [gr.File(), gr.JSON()], api_name="interpolate", concurrency_limit=None)
        upscale_in = [gr.Textbox(label="result"), gr.Number(label="scale"), gr.JSON(label="options")]
        gr.Button("api upscale").click(finishing("upscale", "scale"), upscale_in,
                                       [gr.File(), gr.JSON()], api_name="upscale", concurrency_limit=None)
        gr.Button("api stats").click(stats, None, stats_out, api_name="stats", queue=False)
        # through gradio's queue (never behind a job: no concurrency limit) so the caller's session is known
        gr.Button("api queue").click(queue, None, queue_out, api_name="queue", concurrency_limit=None)
        gr.Button("api stop").click(stop, job_box, state_out, api_name="stop", concurrency_limit=None)
        gr.Button("api resume").click(resume, job_box, state_out, api_name="resume", concurrency_limit=None)
        from wan_studio.requests import request_types
        from wan_studio.requests.fields import meta

        # the mode endpoints share their components, one per field: each hidden component costs
        # start-up time and page size, and holds nothing between calls
        model, prompt, options = gr.Textbox(label="model"), gr.Textbox(label="prompt"), gr.JSON(label="options")
        out_file, out_recipe = gr.File(label="result"), gr.JSON(label="recipe")
        shared_files = {}
        for mode, names in file_inputs().items():
            cls = request_types()[mode]
            for name in names:
                if name not in shared_files:
                    shared_files[name] = gr.File(label=name,
                                                 file_count="multiple" if meta(cls, name)["multiple"] else "single")
            fixed = {"model": model, "prompt": prompt, "options": options}
            inputs = [fixed[name] if name in fixed else shared_files[name] for name in endpoint_parameters(mode)]
            trigger = gr.Button(f"api {mode}")
            # the studio's queue orders the work; these handlers only wait on their own job
            trigger.click(make_endpoint(mode, settings, get_studio), inputs,
                          [out_file, out_recipe], api_name=mode, concurrency_limit=None)
