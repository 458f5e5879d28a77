"""Wan Studio: start the studio page.  `python app.py [--port N] [--output-dir DIR] [--models-dir DIR]`

Also the Hugging Face Space's app file. Nothing heavy is imported here: torch and diffusers load
on the first generation.
"""

from __future__ import annotations

import argparse


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Wan Studio")
    parser.add_argument("--port", type=int, help="port to serve on (default: config.json, 7860)")
    parser.add_argument("--host", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--output-dir", help="where results go")
    parser.add_argument("--models-dir", help="where model folders live")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from wan_studio.settings import load_settings

    settings = load_settings(output_dir=args.output_dir, models_dir=args.models_dir, port=args.port, host=args.host)
    from ui.first_page import build_first_page, theme

    demo = build_first_page(settings)
    settings.output_dir.mkdir(parents=True, exist_ok=True)
    demo.queue(default_concurrency_limit=1).launch(
        server_name=settings.host, server_port=settings.port, allowed_paths=[str(settings.output_dir)],
        theme=theme(), footer_links=["api", "settings"],
    )


if __name__ == "__main__":
    main()
