"""Finishing a result as a queued job; each prints the new result's path:

    python -m wan_studio interpolate outputs/20261130-t2v-ab12.mp4 --factor 2 [--model rife-4.25 | FILE.pkl] [--quiet]
    python -m wan_studio upscale outputs/20261130-t2v-ab12.mp4 --scale 2 [--model realesrgan-x2 | FILE.pth] [--tile 512]
    python -m wan_studio upscale outputs/20261130-t2v-ab12.mp4 --target 1080p|1440p|4k

`interpolate` smooths it to 2 or 4 times its frame rate (RIFE); `upscale` makes it 2 or 4 times
larger (Real-ESRGAN, or any RRDBNet / SRVGGNetCompact weight file), or a target size: its short
side 1080, 1440 or 2160 px, the aspect kept (a target wins over --scale). The new result sits beside
its parent and its recipe names it; the job joins the output folder's queue like a generation
(a running studio runs it; Ctrl+C stops it).
"""

from __future__ import annotations

from pathlib import Path

from wan_studio.cli.request_flags import add_field_flag
from wan_studio.requests import InterpolateRequest, UpscaleRequest


def add_finishing_parsers(sub) -> None:
    smooth = sub.add_parser("interpolate",
                            help="smooth a result to 2 or 4 times its frame rate (RIFE); print the new result")
    smooth.add_argument("result", type=Path, help="the result's .mp4")
    smooth.add_argument("--factor", type=int, default=2, help="2 or 4 (default 2: 16 fps becomes 32)")
    smooth.add_argument("--model", default="", help="the interpolator's id (default: rife-4.25; tiny-rife for Tiny "
                                                    "results), or a RIFE 4.x flownet.pkl file")
    smooth.add_argument("--quiet", action="store_true", help="no progress on stderr")
    upscale = sub.add_parser("upscale", help="make a result 2 or 4 times larger, or 1080p, 1440p or 4K (Real-ESRGAN); "
                                             "print the new result")
    upscale.add_argument("result", type=Path, help="the result's .mp4")
    upscale.add_argument("--scale", type=int, default=2, help="2 or 4: the width and height times this (default 2)")
    upscale.add_argument("--model", default="", help="an upscaler's id (default: realesrgan-x2 or -x4 for the scale; "
                                                     "tiny-upscaler for Tiny results), a .pth/.safetensors file, or a "
                                                     "Hub file as hf://owner/repo/file.pth")
    upscale.add_argument("--tile", type=int, help="input pixels per tile side (default: what the memory allows)")
    add_field_flag(upscale, UpscaleRequest, "target")  # --target, as the request declares it
    upscale.add_argument("--quiet", action="store_true", help="no progress on stderr")


def cmd_finish(args, settings) -> int:
    from wan_studio.cli.jobs import run_and_print

    if args.command == "interpolate":
        request = InterpolateRequest(result=str(args.result), model=args.model, factor=args.factor)
    else:
        request = UpscaleRequest(result=str(args.result), model=args.model, scale=args.scale, tile=args.tile,
                                 target=args.target)
    return run_and_print(request.prepare(), settings, args.quiet)
