"""`python -m wan_studio extract KIND VIDEO`: a control video made from a plain one by annotator
models, with the input's frame count and fps (and size, but for face crops: 512x512); prints its path.

    python -m wan_studio extract depth|pose|face|mask|background|layout dance.mp4 [--output FILE.mp4] [--annotator ID]
    python -m wan_studio extract mask dance.mp4 --point 320,200    (the object clicked on the first frame)
    python -m wan_studio extract mask dance.mp4 --box 280,120,400,460 --shape box    (a boxed object; a filled box)
    python -m wan_studio extract pose dance.mp4 --fit-to character.png    (the character's proportions)
"""

from __future__ import annotations

import sys
from pathlib import Path


def add_extract_parser(sub) -> None:
    from wan_studio.extract import KINDS

    parser = sub.add_parser("extract", help="make a control video (depth, pose, face crops, mask, background, layout) "
                                            "from a plain video and print its path")
    parser.add_argument("kind", choices=KINDS, help="the control to make")
    parser.add_argument("video", help="the plain video")
    parser.add_argument("--output", type=Path, help="where to write it (default: OUTPUT_DIR/controls/NAME-KIND.mp4)")
    parser.add_argument("--annotator", help="the annotator model id (default: the real one for KIND; tiny-depth, "
                                            "tiny-pose or tiny-detector for tests)")
    parser.add_argument("--point", help="X,Y on the first frame: mask and background of the object there "
                                        "(default: the main person)")
    parser.add_argument("--box", help="X0,Y0,X1,Y1 on the first frame: mask and background of the object in that box")
    parser.add_argument("--shape", choices=("outline", "box"),
                        help="mask: the object's outline, grown a little (default), or the box around it")
    parser.add_argument("--fit-to", help="pose: a character picture whose body proportions the skeleton takes")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")


def cmd_extract(args, settings) -> int:
    from wan_studio.backend import detect
    from wan_studio.cli.progress import library_progress_bars
    from wan_studio.runtime.controls import annotator_of, extract_to_file, parse_box, parse_point

    options = {"point": parse_point(args.point), "box": parse_box(args.box), "mask_shape": args.shape,
               "character": args.fit_to}
    annotator = annotator_of(args.kind, args.annotator, options)
    output = args.output or settings.output_dir / "controls" / f"{Path(args.video).stem}-{args.kind}.mp4"

    def progress(done: int, total: int) -> None:
        if not args.quiet:
            print(f"\r{args.kind}: {done}/{total} frames", end="" if done < total else "\n", file=sys.stderr,
                  flush=True)

    with library_progress_bars(shown=not args.quiet):
        print(extract_to_file(args.kind, args.video, output, annotator, detect().device, settings, progress, **options))
    return 0
