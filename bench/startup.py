"""Start-up: seconds from launching `app.py` to the page answering HTTP 200, against a bare
one-textbox Gradio app launched the same way in the same run. Runs interleaved.
Target: app / bare <= 1.2, ratio of medians.

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
    env = dict(os.environ, WAN_STUDIO_OUTPUT_DIR=str(work / "outputs"), GRADIO_ANALYTICS_ENABLED="False")

    samples = {"bare gradio app": [], "app.py": []}
    for _ in range(args.runs):
        port = free_port()
        samples["bare gradio app"].append(time_to_200([sys.executable, str(bare), str(port)], port, env))
        port = free_port()
        samples["app.py"].append(time_to_200([sys.executable, "app.py", "--port", str(port)], port, env))

    stats = summarize(samples)
    ratio = stats["app.py"]["median_s"] / stats["bare gradio app"]["median_s"]
    rows = [(name, f"{s['median_s']:.2f}", f"{s['min_s']:.2f}", f"{s['max_s']:.2f}") for name, s in stats.items()]
    print_table(f"Start-up to HTTP 200, {args.runs} runs each", rows, ("app", "median s", "min s", "max s"))
    print(f"\napp.py / bare = {ratio:.3f}  (target <= 1.2)")
    write_json("startup", {"runners": stats, "ratio": ratio, "target": 1.2})


if __name__ == "__main__":
    main()
