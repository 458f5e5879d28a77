"""`python -m wan_studio interpolate RESULT --factor 2|4`: a result smoothed to 2 or 4 times its frame
rate by RIFE, as a new result beside it (its recipe names its parent); prints the new video's path.

    python -m wan_studio interpolate outputs/20261130-t2v-ab12.mp4 --factor 2 [--model rife-4.25] [--quiet]
"""

from __future__ import annotations

import sys
from pathlib import Path


def add_interpolate_parser(sub) -> None:
    parser = sub.add_parser("interpolate", help="smooth a result to 2 or 4 times its frame rate (RIFE); print the new result")
    parser.add_argument("result", type=Path, help="the result's .mp4")
    parser.add_argument("--factor", type=int, default=2, help="2 or 4 (default 2: 16 fps becomes 32)")
    parser.add_argument("--model", help="the interpolator's id (default: rife-4.25; tiny-rife for Tiny results)")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")


def cmd_interpolate(args, settings) -> int:
    from wan_studio.backend import detect
    from wan_studio.runtime.finishing import interpolate
    from wan_studio.runtime.library import OutputLibrary

    def progress(done: int, total: int) -> None:
        if not args.quiet:
            print(f"\rinterpolating: {done}/{total} frame pairs", end="" if done < total else "\n", file=sys.stderr,
                  flush=True)

    result = interpolate(OutputLibrary(settings.output_dir), args.result, args.factor, settings, detect().device,
                         args.model, progress)
    print(result.media)
    return 0
