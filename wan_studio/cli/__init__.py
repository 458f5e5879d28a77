"""Command line: the same engine calls as the studio page.

    python -m wan_studio generate --mode t2v --prompt "..." [--model M] [--seed N] [--frames N] [--size WxH]
    python -m wan_studio generate --mode s2v --image IMG --audio SPEECH [--pose-video V] --prompt "..."
    python -m wan_studio generate --recipe RESULT.json     (or the result's .mp4: its recipe is embedded)
    python -m wan_studio models [--generation G] [--json]
    python -m wan_studio download MODEL
    python -m wan_studio queue list|add FILE|cancel ID|retry ID|resume ID|remove ID|run
    python -m wan_studio plan --model M [--size WxH] [--frames N] [--vram 16GiB] [--backend cuda|mps|zerogpu-large|...]
    python -m wan_studio generate ... --preset fast|quality --lora PATH_OR_NAME[:WEIGHT[:high|low|both]] (repeatable)
    python -m wan_studio loras [--json]
    python -m wan_studio enhance "PROMPT" [--mode MODE] [--llm rules|local|endpoint]
    python -m wan_studio extract depth|pose|face|mask|background|layout VIDEO [--output FILE.mp4] [--annotator ID]
        [--quiet]
    python -m wan_studio extend RESULT.mp4 --seconds S [--prompt "..."] [--seed N]
    python -m wan_studio interpolate RESULT.mp4 --factor 2|4 [--model ID]
    python -m wan_studio upscale RESULT.mp4 --scale 2|4 [--target 1080p|1440p|4k] [--model ID|FILE]
    python -m wan_studio cluster start|status|stop

`generate` prints the output path on stdout (progress goes to stderr), so scripts can use it. It
goes through the output folder's queue: while a studio or `queue run` serves it, the job runs
there and this waits; otherwise this process serves its own job. `--dry-run` prints the prepared
request as JSON and loads nothing.
Errors print one clear message and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from wan_studio.backend import quiet_library_noise
from wan_studio.errors import RequestError, StudioError


def build_parser() -> argparse.ArgumentParser:
    from wan_studio.cli.request_flags import add_request_flags
    from wan_studio.requests import request_types

    parser = argparse.ArgumentParser(prog="python -m wan_studio", description="Wan Studio from the command line")
    parser.add_argument("--output-dir", help="where results go (default: WAN_STUDIO_OUTPUT_DIR, else config.json)")
    parser.add_argument("--models-dir",
                        help="where model folders live (default: WAN_STUDIO_MODELS_DIR, else config.json)")
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="make a video and print its path")
    gen.add_argument("--mode", default="t2v", help=", ".join(request_types()))
    gen.add_argument("--recipe", type=Path, help="re-run a saved recipe (.json) or result (.mp4) exactly")
    add_request_flags(gen)  # one flag per request field, from the request classes
    gen.add_argument("--quiet", action="store_true", help="no progress on stderr")
    gen.add_argument("--dry-run", action="store_true",
                     help="check and prepare the request, print it as JSON with its memory plan and estimate; "
                          "load nothing")

    models = sub.add_parser("models", help="list the catalog with download state")
    models.add_argument("--generation", help="only this generation (2.1, 2.2, tiny)")
    models.add_argument("--json", action="store_true", help="machine-readable output")

    dl = sub.add_parser("download", help="download a model's (or a preset LoRA's) files from the Hugging Face Hub")
    dl.add_argument("model")

    lo = sub.add_parser("loras", help="list LoRA files (LoRAs folder and the preset table) with what they fit")
    lo.add_argument("--json", action="store_true", help="machine-readable output")

    en = sub.add_parser("enhance", help="expand a short prompt into a detailed one and print it")
    en.add_argument("prompt")
    en.add_argument("--mode", default="t2v", help="the mode the prompt is for (i2v: describe the motion)")
    en.add_argument("--llm", default="rules", choices=["rules", "local", "endpoint"],
                    help="rules (instant), local (enhancer_model) or endpoint (enhancer_url, OpenAI-compatible)")

    from wan_studio.cli.cluster import add_cluster_parser
    from wan_studio.cli.extend import add_extend_parser
    from wan_studio.cli.extract import add_extract_parser
    from wan_studio.cli.finish import add_finishing_parsers
    from wan_studio.cli.plan import add_plan_parser
    from wan_studio.cli.queue import add_queue_parser

    add_queue_parser(sub)
    add_plan_parser(sub)
    add_extract_parser(sub)
    add_extend_parser(sub)
    add_finishing_parsers(sub)
    add_cluster_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    quiet_library_noise()  # before any library loads: stderr carries our progress and errors only
    args = build_parser().parse_args(argv)
    from wan_studio.settings import load_settings

    try:
        settings = load_settings(output_dir=args.output_dir, models_dir=args.models_dir)
        from wan_studio.cli.cluster import cmd_cluster
        from wan_studio.cli.extend import cmd_extend
        from wan_studio.cli.extract import cmd_extract
        from wan_studio.cli.finish import cmd_finish
        from wan_studio.cli.plan import cmd_plan
        from wan_studio.cli.queue import cmd_queue

        commands = {"generate": cmd_generate, "models": cmd_models, "download": cmd_download, "queue": cmd_queue,
                    "plan": cmd_plan, "loras": cmd_loras, "enhance": cmd_enhance, "extract": cmd_extract,
                    "extend": cmd_extend, "interpolate": cmd_finish, "upscale": cmd_finish, "cluster": cmd_cluster}
        return commands[args.command](args, settings)
    except StudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def request_from_args(args, settings):
    from wan_studio.catalog.defaults import default_model_id
    from wan_studio.cli.request_flags import request_values
    from wan_studio.requests import absolutize_inputs, request_from_dict, request_types

    if args.recipe:
        from wan_studio.media.recipe import load_recipe

        recipe = load_recipe(args.recipe)
        return request_from_dict(absolutize_inputs(recipe["request"], args.recipe.resolve().parent))
    types = request_types()
    cls = types.get(args.mode)
    if cls is None:
        raise RequestError("mode", f"Unknown mode {args.mode!r}; available: {', '.join(types)}.")
    if args.prompt is None and not cls.default_prompt:
        raise RequestError("prompt", "The prompt is empty: pass --prompt \"describe the video you want\".")
    values = request_values(args, cls)
    values["model"] = args.model or default_model_id(args.mode, settings)
    if getattr(args, "duration", None) is not None:
        if "frames" in values:
            raise RequestError("frames", "Give --frames or --duration, not both.")
        values["frames"] = frames_for_duration(args.duration, values["model"])
    _check_paths_exist(cls, values)
    return cls(**values)


def frames_for_duration(text: str, model_id: str) -> int:
    """'20', '20s' or '1:30' -> the frame count of that many seconds at the checkpoint's fps (4k+1
    within one pass; past the checkpoint's range, made in windows, any count)."""
    from wan_studio import catalog

    value = str(text).strip().lower().removesuffix("s")
    try:
        minutes, _, seconds = value.rpartition(":")
        total = float(seconds) + 60 * float(minutes or 0)
    except ValueError:
        raise RequestError("frames", f"--duration takes seconds (20, 20s or 1:30); got {text!r}.") from None
    if total <= 0:
        raise RequestError("frames", f"--duration must be more than 0 seconds; got {text!r}.")
    record = catalog.get(model_id)
    frames = round(total * record.fps)
    if frames + 1 <= record.frames_max:
        return max(record.frames_min, round(frames / 4) * 4 + 1)
    return frames


def _check_paths_exist(cls, values: dict) -> None:
    """A mistyped path is named as typed, with its flag (the engine's message is the page's: the
    page has no path to show, only an upload)."""
    for field in cls.file_fields:
        given = values.get(field)
        for path in given if isinstance(given, (list, tuple)) else [given]:
            if path and not Path(path).expanduser().exists():
                raise RequestError(field, f"--{field.replace('_', '-')} {path}: no such file.")


def cmd_generate(args, settings) -> int:
    request = request_from_args(args, settings).prepare()  # reads the inputs once; the job keeps what it found
    if args.dry_run:
        from wan_studio.runtime.dry_run import prepared_summary

        print(json.dumps(prepared_summary(request, settings), indent=2, ensure_ascii=False))
        return 0
    for message in request.preset_messages:
        print(f"note: {message}", file=sys.stderr)
    from wan_studio.runtime.parallel import torchrun_rank

    if torchrun_rank() is not None:
        from wan_studio.cli.jobs import run_as_rank

        return run_as_rank(request, settings, args.quiet, seed_given=args.seed is not None)
    from wan_studio.cli.jobs import run_and_print

    return run_and_print(request, settings, args.quiet)


def cmd_loras(args, settings) -> int:
    from wan_studio.loras import list_loras, loras_dir

    rows = list_loras(settings)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"LoRAs folder: {loras_dir(settings)}")
    print(f"{'source':<36} {'layout/licence':<16} {'rank':>4}  {'state':<15} fits")
    for row in rows:
        kind = row.get("layout") or row.get("licence", "")
        state = row.get("state", "file")
        extra = f"  trigger: {row['trigger_words']}" if row.get("trigger_words") else ""
        extra += "  (non-commercial: never in a preset)" if row.get("non_commercial") else ""
        print(f"{row['source']:<36} {kind:<16} {row.get('rank') or 0:>4}  {state:<15} "
              f"{', '.join(row.get('fits', [])) or 'nothing in the catalog'}{extra}")
    return 0


def cmd_enhance(args, settings) -> int:
    from wan_studio.runtime.enhance import enhance

    swap = None
    if args.llm == "local":  # on the machine's accelerator, through the swap manager like the studio
        from wan_studio.runtime.swap import SwapManager

        swap = SwapManager(settings)
    result = enhance(args.prompt, args.mode, llm=args.llm, settings=settings, swap=swap)
    for message in result.messages:
        print(f"note: {message}", file=sys.stderr)
    print(result.prompt)
    return 0


def cmd_models(args, settings) -> int:
    from wan_studio import catalog, models

    rows = [c for c in catalog.checkpoints() if args.generation in (None, c.generation)]
    if args.json:
        print(json.dumps([
            {"id": c.id, "name": c.name, "generation": c.generation, "modes": list(c.modes),
             "repo_id": c.repo_id, "download_gb": c.download_gb, "state": models.local_state(c, settings)}
            for c in rows
        ], indent=2))
        return 0
    print(f"{'id':<24} {'generation':<10} {'modes':<26} state")
    for c in rows:
        print(f"{c.id:<24} {c.generation:<10} {','.join(c.modes):<26} {models.local_state(c, settings)}")
    for slot in catalog.api_only_slots():
        if args.generation in (None, slot.generation):
            print(f"{'(' + slot.name + ')':<24} {slot.generation:<10} {'-':<26} {slot.note}")
    return 0


def cmd_download(args, settings) -> int:
    from wan_studio import catalog, models
    from wan_studio.loras.presets import lora_record

    if lora_record(args.model) is not None:  # a LoRA of the preset table (Lightning files)
        from wan_studio.loras import locate

        print(locate(args.model, settings, allow_download=True))
        return 0
    known_annotators = {a.id for a in catalog.annotators()}
    record = catalog.annotator(args.model) if args.model in known_annotators else catalog.get(args.model)
    records = [record] + ([catalog.annotator(record.detector)] if getattr(record, "detector", None) else [])
    from wan_studio.models.downloads import download_lock

    for each in records:  # a pose annotator brings its person detector
        print(f"Downloading {each.name} ({each.repo_id}, about {models.hub.size_text(each.download_gb)})...",
              file=sys.stderr)
        with download_lock(each.repo_id):  # another download of it (a job's, the page's) finishes first
            print(models.download(each, settings))
    return 0
