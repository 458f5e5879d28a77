"""What one browser tab of the studio costs: CPU seconds of headless Chromium and of the app for
loading the page, for a Tiny T2V Generate, for 10 s idle before and after a job (the result then
plays in the player), and for a walk through every page of the sidebar. app.py on the Tiny
generation, Playwright's Chromium (/usr/bin/chromium unless --chromium). Medians over --runs tabs,
each loading the page anew; the app's first page load (imports, the first estimates) is reported
apart. These are the costs the browser tests pay per step, and a creator's laptop pays per open tab.

    python bench/page.py [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil
from _common import ROOT, print_table, write_json
from startup import free_port

COST_SHOWN = "() => document.querySelector('#t2v-cost')?.innerText.includes('frames')"
RESULT_SHOWN = "() => document.querySelector('#t2v-progress [data-state=done]')"


def cpu_seconds(processes) -> float:
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def start_app(folder: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = dict(os.environ, WAN_STUDIO_OUTPUT_DIR=str(folder / "outputs"), WAN_STUDIO_MODELS_DIR=str(folder / "models"),
               WAN_STUDIO_TINY_MODELS_DIR=str(folder / "tiny"), WAN_STUDIO_DEFAULT_GENERATION="tiny",
               WAN_STUDIO_CONFIG=str(folder / "config.json"), HF_HUB_OFFLINE="1")
    app = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=ROOT, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    for _ in range(600):
        try:
            if urllib.request.urlopen(url, timeout=1).status == 200:
                return app, url
        except OSError:
            if app.poll() is not None:
                raise RuntimeError(f"app.py exited with {app.returncode}")
            time.sleep(0.2)
    app.kill()
    raise RuntimeError("app.py did not answer in 120 s")


def measure(chromium_path: str, runs: int) -> dict[str, list[float]]:
    from playwright.sync_api import sync_playwright

    samples: dict[str, list[float]] = {}

    def add(name, chromium, app):
        samples.setdefault(f"{name}: chromium", []).append(round(chromium, 2))
        samples.setdefault(f"{name}: app", []).append(round(app, 2))

    with tempfile.TemporaryDirectory(prefix="bench-page-") as folder:
        app, url = start_app(Path(folder))
        app_process = psutil.Process(app.pid)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium_path, headless=True,
                                                     args=["--no-sandbox", "--disable-gpu"])

                def chromium_processes():
                    return [p for p in psutil.Process().children(recursive=True) if "chrom" in p.name()]

                def span(name, action):
                    chromium0, app0 = cpu_seconds(chromium_processes()), cpu_seconds([app_process])
                    action()
                    add(name, cpu_seconds(chromium_processes()) - chromium0, cpu_seconds([app_process]) - app0)

                for run in range(runs + 1):
                    page = browser.new_page(viewport={"width": 1400, "height": 1000})
                    page.set_default_timeout(180_000)
                    span("first page load" if run == 0 else "page load",
                         lambda: (page.goto(url), page.wait_for_function(COST_SHOWN)))
                    if run == 0:  # and the Tiny model built by a first job, neither counted
                        page.fill("#t2v-prompt textarea", "a paper boat on a pond")
                        page.click("#t2v-generate")
                        page.wait_for_function(RESULT_SHOWN)
                        page.close()
                        continue
                    span("10 s idle", lambda: time.sleep(10))
                    page.fill("#t2v-prompt textarea", f"a paper boat on a pond, take {run}")

                    def generate():
                        page.click("#t2v-generate")
                        page.wait_for_function(RESULT_SHOWN)

                    span("Tiny T2V Generate", generate)
                    span("10 s idle, result playing", lambda: time.sleep(10))
                    page.evaluate("() => document.querySelectorAll('video').forEach((v) => v.pause())")

                    def visit_every_page():
                        keys = page.eval_on_selector_all("#studio-sidebar button[id^=nav-]:not([disabled])",
                                                         "(all) => all.map((b) => b.id.slice(4))")
                        for key in keys[1:] + keys[:1]:
                            page.click(f"#nav-{key}")
                            page.wait_for_function("(key) => document.body.dataset.opened === key", arg=key)

                    span("visit every page", visit_every_page)
                    page.close()
                browser.close()
        finally:
            app.terminate()
            app.wait(timeout=30)
    return samples


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    samples = measure(args.chromium, args.runs)
    rows = [(name, f"{statistics.median(values):.2f}", len(values)) for name, values in samples.items()]
    print_table("CPU seconds per step of one tab (median)", rows, ("step: process", "cpu s", "runs"))
    write_json("page", {"cpu_s": {name: {"median": statistics.median(values), "samples": values}
                                  for name, values in samples.items()},
                        "cpus": os.cpu_count(), "runs": args.runs})


if __name__ == "__main__":
    main()
