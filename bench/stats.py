"""Stats sampling cost: seconds per `take_sample()` (host figures, NVML when present, torch when loaded).

The first sample pays one-off costs (NVML init, psutil's first CPU reading); it is timed apart.
The stats panel samples every second or so in the UI's process, so a sample should stay cheap.
Target: median < 50 ms.

    python bench/stats.py [--runs 50]
"""

from __future__ import annotations

import argparse
import time

from _common import print_table, summarize, write_json

TARGET_S = 0.05


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()

    from wan_studio.runtime.stats import take_sample

    start = time.perf_counter()
    first = take_sample()
    first_s = time.perf_counter() - start
    durations = []
    for _ in range(args.runs):
        start = time.perf_counter()
        take_sample()
        durations.append(time.perf_counter() - start)

    stats = summarize({"take_sample": durations})
    s = stats["take_sample"]
    print_table(f"take_sample(): {args.runs} runs after a first one of {first_s * 1000:.1f} ms, "
                f"{len(first.gpus)} GPU(s) seen",
                [("take_sample", f"{s['median_s'] * 1000:.2f}", f"{s['min_s'] * 1000:.2f}",
                  f"{s['max_s'] * 1000:.2f}")],
                ("call", "median ms", "min ms", "max ms"))
    print(f"\nmedian {s['median_s'] * 1000:.2f} ms  (target < {TARGET_S * 1000:.0f} ms)")
    write_json("stats", {"runs": args.runs, "first_s": first_s, "gpus": len(first.gpus), "runners": stats,
                         "target_median_s": TARGET_S})


if __name__ == "__main__":
    main()
