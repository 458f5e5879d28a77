"""Command line: the same engine calls as the studio page.

    python -m wan_studio generate --mode t2v --prompt "..." [--model M] [--seed N] [--frames N] [--size WxH]
    python -m wan_studio generate --recipe RESULT.json     (or the result's .mp4: its recipe is embedded)
    python -m wan_studio models [--generation G] [--json]
    python -m wan_studio download MODEL

`generate` prints the output path on stdout (progress goes to stderr), so scripts can use it.
Errors print one clear message and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from wan_studio.errors import StudioError


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = text.lower().split("x")
        return int(w), int(h)
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 832x480 (width x height), got {text!r}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m wan_studio", description="Wan Studio from the command line")
    parser.add_argument("--output-dir", help="where results go (default: WAN_STUDIO_OUTPUT_DIR, else config.json)")
    parser.add_argument("--models-dir", help="where model folders live (default: WAN_STUDIO_MODELS_DIR, else config.json)")
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="make a video and print its path")
    gen.add_argument("--mode", default="t2v", help="t2v (more modes arrive with their wrappers)")
    gen.add_argument("--model", help="catalog id (see `models`); default: the machine's default for the mode")
    gen.add_argument("--prompt")
    gen.add_argument("--negative-prompt")
    gen.add_argument("--seed", type=int)
    gen.add_argument("--frames", type=int, help="4k+1, e.g. 81")
    gen.add_argument("--size", type=_size, help="WIDTHxHEIGHT, e.g. 832x480")
    gen.add_argument("--steps", type=int)
    gen.add_argument("--guidance", type=float)
    gen.add_argument("--guidance-2", type=float, help="low-noise expert guidance (Wan 2.2 A14B only)")
    gen.add_argument("--flow-shift", type=float)
    gen.add_argument("--recipe", type=Path, help="re-run a saved recipe (.json) or result (.mp4) exactly")
    gen.add_argument("--quiet", action="store_true", help="no progress on stderr")

    models = sub.add_parser("models", help="list the catalog with download state")
    models.add_argument("--generation", help="only this generation (2.1, 2.2, tiny)")
    models.add_argument("--json", action="store_true", help="machine-readable output")

    dl = sub.add_parser("download", help="download a model's files from the Hugging Face Hub")
    dl.add_argument("model")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from wan_studio.settings import load_settings

    settings = load_settings(output_dir=args.output_dir, models_dir=args.models_dir)
    try:
        return {"generate": cmd_generate, "models": cmd_models, "download": cmd_download}[args.command](args, settings)
    except StudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def request_from_args(args, settings):
    from wan_studio.defaults import default_model_id
    from wan_studio.errors import RequestError
    from wan_studio.requests import REQUEST_TYPES, request_from_dict

    if args.recipe:
        return request_from_dict(load_recipe(args.recipe)["request"])
    cls = REQUEST_TYPES.get(args.mode)
    if cls is None:
        raise RequestError("mode", f"Unknown or unavailable mode {args.mode!r}; available: {', '.join(REQUEST_TYPES)}.")
    if args.prompt is None:
        raise RequestError("prompt", "The prompt is empty: pass --prompt \"describe the video you want\".")
    width, height = args.size or (None, None)
    return cls(
        model=args.model or default_model_id(args.mode, settings), prompt=args.prompt,
        negative_prompt=args.negative_prompt, width=width, height=height, frames=args.frames, steps=args.steps,
        guidance=args.guidance, guidance_2=args.guidance_2, flow_shift=args.flow_shift, seed=args.seed,
    )


def load_recipe(path: Path) -> dict:
    from wan_studio.errors import RequestError
    from wan_studio.library import read_embedded_recipe

    if not path.is_file():
        raise RequestError("recipe", f"Recipe file not found: {path}")
    if path.suffix.lower() == ".mp4":
        recipe = read_embedded_recipe(path)
        if recipe is None:
            raise RequestError("recipe", f"{path} carries no Wan Studio recipe in its metadata.")
        return recipe
    try:
        recipe = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestError("recipe", f"{path} is not a valid recipe JSON file ({exc}).")
    if not isinstance(recipe, dict) or "request" not in recipe:
        raise RequestError("recipe", f"{path} is not a Wan Studio recipe (it has no 'request').")
    return recipe


def cmd_generate(args, settings) -> int:
    from wan_studio.engine import Engine

    request = request_from_args(args, settings)

    def show(event):
        if not args.quiet:
            print(f"\r{event.describe():<60}", end="" if event.stage == "denoising" else "\n", file=sys.stderr)

    result = Engine(settings).generate(request, on_progress=show)
    print(result.media)
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

    record = catalog.get(args.model)
    print(f"Downloading {record.name} ({record.repo_id}, about {record.download_gb:.0f} GB)...", file=sys.stderr)
    print(models.download(record, settings))
    return 0
