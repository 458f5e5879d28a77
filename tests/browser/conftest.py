"""The browser tests' set-up: each module gets its own app (on the Tiny generation, its own output
folder) and its own Chromium, so the modules run side by side on pytest-xdist's workers. After a
module, the app's log must hold no handler traceback."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.walk import CHROMIUM, HOLD_LONG_RUN_UNTIL_STOPPED, WAIT_MS
from tests.media_fixtures import make_image, make_video


@pytest.fixture(scope="module", autouse=True)
def chromium():
    """The browser tests never skip: without Chromium they fail, saying how to get it."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: install it (apt-get install chromium); .ci/run does")


@pytest.fixture(scope="module")
def studio(tmp_path_factory, tiny_dir):
    """The app on a free port with its own output folder; the Tiny generation (no GPU here)."""
    from tests.test_app import launch

    base = tmp_path_factory.mktemp("studio")
    env = dict(os.environ, WAN_STUDIO_OUTPUT_DIR=str(base / "outputs"),
               WAN_STUDIO_MODELS_DIR=str(base / "models"), WAN_STUDIO_TINY_MODELS_DIR=str(tiny_dir),
               WAN_STUDIO_DEFAULT_GENERATION="tiny", WAN_STUDIO_CONFIG=str(base / "config.json"))
    proc, url = launch(env, prelude=HOLD_LONG_RUN_UNTIL_STOPPED)
    log = Path(proc.log_path)
    yield url, base / "outputs", log
    proc.terminate()
    proc.wait(timeout=30)
    # whatever the module's walk did (bad uploads, values past their limits, stops), no handler failed
    printed = log.read_text()
    failed = failures(printed)
    assert not failed and "ComponentProcessingError" not in printed, (failed, printed[-3000:])


def failures(printed: str) -> list[str]:
    """The last line (the exception) of each traceback in an app's log."""
    found = []
    for block in printed.split("Traceback (most recent call last):")[1:]:
        lines = block.splitlines()[1:]
        last = next((line for line in lines if line.strip() and not line.startswith(" ")), block[:200])
        found.append(last)
    return found


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        profile = Path(os.environ.get("TMPDIR", "/tmp")) / f"wan-chromium-{os.getpid()}"
        shutil.rmtree(profile, ignore_errors=True)
        context = p.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, viewport={"width": 1400, "height": 1000},
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"])
        context.add_init_script(PLAY_RESULTS_ONCE)
        yield context
        context.close()
        shutil.rmtree(profile, ignore_errors=True)


# A result video looping in a headless tab costs its renderer about a fifth of a core for the rest of
# the walk (docs/development.md#tests): the walks' result and gallery players play once. The compare
# players keep looping, as their synced-playback check needs.
PLAY_RESULTS_ONCE = """document.addEventListener('play', (event) => {
  const video = event.target;
  if (video.closest && video.closest('[id$="-result"], #gallery-player')) video.loop = false;
}, true);"""


@pytest.fixture
def page(studio, browser):
    page = browser.new_page()
    page.set_default_timeout(WAIT_MS)
    expect.set_options(timeout=WAIT_MS)
    page.goto(studio[0])
    page.wait_for_selector("#nav-t2v")
    page.wait_for_function("() => document.querySelector('#t2v-cost')?.innerText.includes('frames')")
    yield page
    page.close()


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    folder = tmp_path_factory.mktemp("media")
    return {
        "image": make_image(folder / "start.png", (96, 64)),
        "image2": make_image(folder / "end.png", (96, 64), color=(20, 90, 200)),
        "clip": make_video(folder / "clip.mp4", (96, 64), fps=16, seconds=1.0),
        "pose": make_video(folder / "pose.mp4", (64, 64), fps=30, seconds=0.6),
        "face": make_video(folder / "face.mp4", (64, 64), fps=30, seconds=0.6, source="testsrc"),
        "dance": make_video(folder / "dance.mp4", (96, 64), fps=30, seconds=0.6),
        "voice": speech_like(folder / "voice.wav"),
    }


def speech_like(path: Path) -> Path:
    from ui.examples import speechlike_wav

    speechlike_wav(path, 1.0)
    return path

