"""`python -m wan_studio extend RESULT --seconds S`: a finished video continued by S seconds with the
long-video windows (wan_studio/runtime/windows.py), from its own recipe; prints the new result.

    python -m wan_studio extend outputs/20261130-t2v-ab12.mp4 --seconds 5 [--prompt "the boat sails on"] [--seed N]

The new result is the whole video (the old frames, then the new ones); its recipe names its parent.
"""

from __future__ import annotations

import json
from pathlib import Path


def add_extend_parser(sub) -> None:
    parser = sub.add_parser("extend", help="continue a finished video by some seconds and print the new result")
    parser.add_argument("result", type=Path, help="the result to continue (its .mp4 or .json)")
    parser.add_argument("--seconds", type=float, required=True, help="how much longer to make it")
    parser.add_argument("--prompt", help="what happens next (default: the result's prompt; one line per window)")
    parser.add_argument("--seed", type=int, help="default: a new random seed")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    parser.add_argument("--dry-run", action="store_true", help="print the prepared request as JSON; load nothing")


def cmd_extend(args, settings) -> int:
    from wan_studio.cli.jobs import run_and_print
    from wan_studio.runtime.extend import extension_request

    request = extension_request(args.result, args.seconds, args.prompt, args.seed).prepare()
    if args.dry_run:
        from wan_studio.runtime.dry_run import prepared_summary

        print(json.dumps(prepared_summary(request, settings), indent=2, ensure_ascii=False))
        return 0
    return run_and_print(request, settings, args.quiet)
