"""Finishing a result as a queued job; each prints the new result's path:

    python -m wan_studio interpolate outputs/20261130-t2v-ab12.mp4 --factor 2 [--model rife-4.25 | FILE.pkl] [--quiet]
    python -m wan_studio upscale outputs/20261130-t2v-ab12.mp4 --scale 2 [--model realesrgan-x2 | FILE.pth] [--tile 512]

`interpolate` smooths it to 2 or 4 times its frame rate (RIFE); `upscale` makes it 2 or 4 times
larger (Real-ESRGAN, or any RRDBNet / SRVGGNetCompact weight file). The new result sits beside
its parent and its recipe names it; the job joins the output folder's queue like a generation
(a running studio runs it; Ctrl+C stops it).
"""

from __future__ import annotations

from pathlib import Path


def add_finishing_parsers(sub) -> None:
    smooth = sub.add_parser("interpolate",
                            help="smooth a result to 2 or 4 times its frame rate (RIFE); print the new result")
    smooth.add_argument("result", type=Path, help="the result's .mp4")
    smooth.add_argument("--factor", type=int, default=2, help="2 or 4 (default 2: 16 fps becomes 32)")
    smooth.add_argument("--model", default="", help="the interpolator's id (default: rife-4.25; tiny-rife for Tiny "
                                                    "results), or a RIFE 4.x flownet.pkl file")
    smooth.add_argument("--quiet", action="store_true", help="no progress on stderr")
    upscale = sub.add_parser("upscale", help="make a result 2 or 4 times larger (Real-ESRGAN); print the new result")
    upscale.add_argument("result", type=Path, help="the result's .mp4")
    upscale.add_argument("--scale", type=int, default=2, help="2 or 4: the width and height times this (default 2)")
    upscale.add_argument("--model", default="", help="an upscaler's id (default: realesrgan-x2 or -x4 for the scale; "
                                                     "tiny-upscaler for Tiny results), a .pth/.safetensors file, or a "
                                                     "Hub file as hf://owner/repo/file.pth")
    upscale.add_argument("--tile", type=int, help="input pixels per tile side (default: what the memory allows)")
    upscale.add_argument("--quiet", action="store_true", help="no progress on stderr")


def cmd_finish(args, settings) -> int:
    from wan_studio.cli.jobs import run_and_print
    from wan_studio.requests import InterpolateRequest, UpscaleRequest

    if args.command == "interpolate":
        request = InterpolateRequest(result=str(args.result), model=args.model, factor=args.factor)
    else:
        request = UpscaleRequest(result=str(args.result), model=args.model, scale=args.scale, tile=args.tile)
    return run_and_print(request.prepare(), settings, args.quiet)
