"""Wan Studio: start the studio.

    python app.py [--port N] [--listen] [--share] [--auth user:password | --auth users.txt]
                  [--max-upload 500MB] [--output-dir DIR] [--models-dir DIR] [--gpus 0,1 | all]
                  [--ray HOST:PORT | auto]

Also the Hugging Face Space's app file. Nothing heavy is imported here: torch and diffusers load
on the first generation. By default the page is served on 127.0.0.1 only (this machine).
"""

from __future__ import annotations

import argparse
import gc
import logging

from wan_studio.backend import quiet_library_noise
from wan_studio.errors import StudioError

log = logging.getLogger("wan_studio.app")


def parse_args(argv=None):
    from wan_studio.settings import COMPILE_CHOICES

    parser = argparse.ArgumentParser(description="Wan Studio")
    parser.add_argument("--port", type=int, help="port to serve on (default: config.json, 7860)")
    parser.add_argument("--host", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--listen", action="store_true", help="serve on every network interface (0.0.0.0)")
    parser.add_argument("--share", action="store_true", help="also make a public gradio.live link")
    parser.add_argument("--auth", help="user:password, or a file with one user:password per line")
    parser.add_argument("--max-upload", help="largest upload accepted, e.g. 500MB (default: config.json)")
    parser.add_argument("--output-dir", help="where results go")
    parser.add_argument("--models-dir", help="where model folders live")
    parser.add_argument("--gpus", help="run jobs on several GPUs at once, one worker each: 0,1,3 or all "
                                       "(default: config.json; one GPU)")
    parser.add_argument("--ray", help="run jobs on the workers of a Ray cluster: its address (host:port), or auto "
                                      "(the cluster this machine joined with `ray start`)")
    parser.add_argument("--memory-limit", type=float, metavar="GIB",
                        help="use at most this much GPU memory (GiB), leaving the rest to other programs "
                             "(default: config.json memory_limit_gb; all of it)")
    parser.add_argument("--compile", choices=COMPILE_CHOICES,
                        help="compile the transformers' repeated blocks: auto (on CUDA with Triton), on (the CPU "
                             "too), off (no compile wait before the first job) (default: config.json compile; auto)")
    return parser.parse_args(argv)


def serve(args):
    """Build the page and start serving it (without blocking); returns (demo, settings)."""
    from wan_studio.safety import exposure_warning, parse_auth, parse_size
    from wan_studio.settings import load_settings

    host = "0.0.0.0" if args.listen else args.host
    try:
        settings = load_settings(output_dir=args.output_dir, models_dir=args.models_dir, port=args.port, host=host,
                                 max_upload=args.max_upload, gpus=args.gpus, ray_address=args.ray,
                                 memory_limit_gb=args.memory_limit, compile=args.compile)
    except StudioError as exc:  # a setting that cannot be read is said before anything starts
        raise SystemExit(f"error: {exc}") from None
    if settings.gpus:  # a GPU this machine lacks is said now, not after the page is up
        from wan_studio.queue.pool import check_gpus, parse_gpus

        try:
            check_gpus(parse_gpus(settings.gpus))
        except StudioError as exc:
            raise SystemExit(f"error: {exc}") from None
    if settings.ray_address:
        from wan_studio.runtime.cluster import check_address

        try:
            check_address(settings.ray_address)
        except StudioError as exc:
            raise SystemExit(f"error: {exc}") from None
    auth = parse_auth(args.auth)
    warning = exposure_warning(args.listen or settings.host not in ("127.0.0.1", "localhost", "::1"), args.share, auth)
    if warning:
        print(f"WARNING: {warning}", flush=True)

    from ui.shell import build_studio, launch_options

    demo = build_studio(settings)
    demo.launch(
        server_name=settings.host, server_port=settings.port, share=args.share or None, auth=auth or None,
        max_file_size=parse_size(settings.max_upload), allowed_paths=[str(settings.output_dir)],
        **launch_options(), footer_links=["api", "settings"], prevent_thread_lock=True,
        quiet=True,  # gradio's own lines tell you to edit launch(); ours name the app's flags
    )
    print(f"Wan Studio is running at {demo.local_url}", flush=True)
    if demo.share_url:
        print(f"Public link (anyone with it can use this studio): {demo.share_url}", flush=True)
    elif not args.share:
        print("For a public link, start it with --share; for your network, with --listen.", flush=True)
    return demo, settings


def main(argv=None):
    quiet_library_noise()  # before any library loads: the console shows the studio's lines, not theirs
    args = parse_args(argv)
    # No cyclic garbage collection while gradio is imported and the page is built: nearly every object
    # made then lives as long as the process, and collecting over them again and again took 0.7 s of
    # a 3.4 s start. Frozen afterwards, so later collections (the torch warm-up's too) skip them.
    gc.disable()
    try:
        demo, settings = serve(args)
    finally:
        gc.freeze()
        gc.enable()

    # after the page is up: the studio (queue database, engine), then its worker, the stats sampler
    # and the torch warm-up
    from ui.runtime import get_studio

    studio = get_studio(settings)
    if studio.warning:
        print(f"WARNING: {studio.warning}", flush=True)
    studio.start()
    try:
        demo.block_thread()
    finally:
        studio.stop()


if __name__ == "__main__":
    main()
