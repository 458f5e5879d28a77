"""`python -m wan_studio extract KIND VIDEO`: a control video made from a plain one by annotator
models, with the input's frame count and fps (and size, but for face crops: 512x512); prints its path.

    python -m wan_studio extract depth|pose|face dance.mp4 [--output FILE.mp4] [--annotator ID]
"""

from __future__ import annotations

import sys
from pathlib import Path

from wan_studio.errors import RequestError


def add_extract_parser(sub) -> None:
    from wan_studio.media.extract import KINDS

    parser = sub.add_parser("extract", help="make a control video (depth, pose, face crops) from a plain video and print its path")
    parser.add_argument("kind", choices=KINDS, help="the control to make")
    parser.add_argument("video", help="the plain video")
    parser.add_argument("--output", type=Path, help="where to write it (default: OUTPUT_DIR/controls/NAME-KIND.mp4)")
    parser.add_argument("--annotator", help="the annotator model id (default: the real one for KIND; tiny-depth or tiny-pose for tests)")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")


def cmd_extract(args, settings) -> int:
    import numpy as np

    from wan_studio import catalog, media
    from wan_studio.backend import detect
    from wan_studio.cli import library_progress_bars
    from wan_studio.media.extract import MODEL_KIND, control
    from wan_studio.runtime.library import write_mp4

    annotator = catalog.annotator(args.annotator) if args.annotator else catalog.annotator_for(MODEL_KIND[args.kind], tiny=False)
    if annotator.kind != MODEL_KIND[args.kind]:
        raise RequestError("annotator", f"{annotator.name} makes {annotator.kind} controls, not {args.kind}.")
    output = args.output or settings.output_dir / "controls" / f"{Path(args.video).stem}-{args.kind}.mp4"
    if output.suffix.lower() != ".mp4":
        raise RequestError("output", f"The control video is written as MP4; name it .mp4, not {output.name!r}.")
    info = media.probe_video(args.video)
    frames = media.load_video_frames(args.video)

    def progress(done: int, total: int) -> None:
        if not args.quiet:
            print(f"\r{args.kind}: {done}/{total} frames", end="" if done < total else "\n", file=sys.stderr, flush=True)

    with library_progress_bars(shown=not args.quiet):
        made = control(args.kind, frames, annotator, device=detect().device, settings=settings,
                       name=Path(args.video).name, progress=progress)
    output.parent.mkdir(parents=True, exist_ok=True)
    write_mp4(output, np.stack([np.asarray(frame) for frame in made]), info.fps)
    print(output)
    return 0
