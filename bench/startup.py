"""Start-up: seconds from launching `app.py` to the page answering HTTP 200, against a bare
one-textbox Gradio app launched the same way in the same run. Runs interleaved.
Target: app / bare <= 1.2, ratio of medians.

app.py turns cyclic garbage collection off while gradio is imported and the page is built; that
also spares it collections a bare app makes during gradio's own import. So a second bare app with
the same setting is timed too, and app / that one (not the target) is our own start-up cost.

    python bench/startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from _common import ROOT, print_table, summarize, write_json

BARE_APP = """
import gradio as gr
import sys
with gr.Blocks() as demo:
    gr.Textbox()
demo.launch(server_name="127.0.0.1", server_port=int(sys.argv[1]))
"""
BARE_APP_NO_GC = "import gc\ngc.disable()\n" + BARE_APP


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def time_to_200(cmd: list[str], port: int, env: dict, timeout: float = 180.0) -> float:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.perf_counter() - start < timeout:
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).status == 200:
                    return time.perf_counter() - start
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError(f"{cmd} exited with {proc.returncode}")
                time.sleep(0.05)
        raise RuntimeError(f"{cmd} did not answer within {timeout} s")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="wan-startup-"))
    bare = work / "bare_app.py"
    bare.write_text(BARE_APP)
    bare_no_gc = work / "bare_app_no_gc.py"
    bare_no_gc.write_text(BARE_APP_NO_GC)
    env = dict(os.environ, WAN_STUDIO_OUTPUT_DIR=str(work / "outputs"), GRADIO_ANALYTICS_ENABLED="False")

    commands = {
        "bare gradio app": lambda port: [sys.executable, str(bare), str(port)],
        "bare gradio app, GC off": lambda port: [sys.executable, str(bare_no_gc), str(port)],
        "app.py": lambda port: [sys.executable, "app.py", "--port", str(port)],
    }
    samples = {name: [] for name in commands}
    for _ in range(args.runs):
        for name, command in commands.items():
            port = free_port()
            samples[name].append(time_to_200(command(port), port, env))

    stats = summarize(samples)
    ratio = stats["app.py"]["median_s"] / stats["bare gradio app"]["median_s"]
    ratio_no_gc = stats["app.py"]["median_s"] / stats["bare gradio app, GC off"]["median_s"]
    rows = [(name, f"{s['median_s']:.2f}", f"{s['min_s']:.2f}", f"{s['max_s']:.2f}") for name, s in stats.items()]
    print_table(f"Start-up to HTTP 200, {args.runs} runs each", rows, ("app", "median s", "min s", "max s"))
    print(f"\napp.py / bare = {ratio:.3f}  (target <= 1.2)")
    print(f"app.py / bare with GC off = {ratio_no_gc:.3f}  (our own start-up cost, no target)")
    write_json("startup", {"runners": stats, "ratio": ratio, "target": 1.2, "ratio_vs_bare_gc_off": ratio_no_gc})


if __name__ == "__main__":
    main()
