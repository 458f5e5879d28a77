"""What the browser tests share: the page's waits and actions as a person does them (open a mode,
upload, Generate and watch the progress, play the result) and the app's hold on a long run, so a
test can always stop it mid-way however fast the CPU."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.conftest import ROOT

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"
WAIT_MS = 120_000  # every wait is on a condition; this only bounds it on a loaded machine
LONG_RUN = "a very long run"  # the prompt of the run the stop test stops
LONG_VIDEO = "a river through two windows"  # held in its second window, so its first is kept when stopped


# In the app's process: a run prompted LONG_RUN, once it has shown a live preview, waits at its next
# step until Stop is pressed for it, so the page can always stop it mid-denoising however fast the CPU.
HOLD_LONG_RUN_UNTIL_STOPPED = f"""
import threading
from wan_studio.queue.worker import QueueWorker

stop_pressed, previewed = {{}}, set()
plain_stop_job, plain_init = QueueWorker.stop_job, QueueWorker.__init__

def stop_job(self, job_id):
    job = plain_stop_job(self, job_id)
    stop_pressed.setdefault(job_id, threading.Event()).set()
    return job

def hold_long_run(job, event):
    prompt = job.request.get("prompt")
    if prompt not in ({LONG_RUN!r}, {LONG_VIDEO!r}) or event.kind != "progress" or event.progress.stage != "denoising":
        return
    if prompt == {LONG_VIDEO!r}:  # (a long video shows no live preview) held from its second window on
        if (event.progress.clip or 0) >= 2:
            stop_pressed.setdefault(job.id, threading.Event()).wait(600)
        return
    if job.id in previewed:  # (the step after its first preview, whatever its step count)
        stop_pressed.setdefault(job.id, threading.Event()).wait(600)
    elif event.progress.preview is not None:
        previewed.add(job.id)

def init(self, *args, **kwargs):
    plain_init(self, *args, **kwargs)
    self.add_listener(hold_long_run)

QueueWorker.stop_job, QueueWorker.__init__ = stop_job, init
"""


def open_mode(page, mode: str) -> None:
    page.click(f"#nav-{mode}")
    page.wait_for_selector(f"#panel-{mode}", state="visible")


def set_number(page, elem_id: str, value) -> None:
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Enter")
    box.blur()  # (gradio takes a number box's value on blur too; the next click must not race it)


def open_advanced(page, mode: str) -> None:
    steps = page.locator(f"#{mode}-steps")
    if not steps.is_visible():
        page.locator(f"#panel-{mode} button.label-wrap:has-text('Advanced')").click()
        steps.wait_for(state="visible")


def upload(page, elem_id: str, path: Path, ready: str) -> None:
    page.locator(f"#{elem_id} input[type=file]").set_input_files(str(path))
    page.locator(f"#{elem_id} {ready}").first.wait_for(state="visible")


def watch_progress(page, mode: str) -> None:
    """Record every state the progress card goes through (a tiny run is over in a second)."""
    page.evaluate("""(mode) => {
        window.__states = [];
        const card = document.querySelector('#' + mode + '-progress');
        const note = () => card.querySelectorAll('.progress-card').forEach(c => {
            const s = c.dataset.state; if (s && window.__states.at(-1) !== s) window.__states.push(s); });
        new MutationObserver(note).observe(card,
            {subtree: true, childList: true, attributes: true, characterData: true});
    }""", mode)


def watch_toolbar(page, mode: str) -> None:
    """Record each time the result's toolbar (Smooth, Upscale, ...) goes or comes back."""
    page.evaluate("""(mode) => {
        window.__toolbar = [];
        const smooth = () => document.querySelector('#' + mode + '-smooth');
        const note = () => { const b = smooth(); const s = b && b.offsetParent !== null ? 'shown' : 'hidden';
            if (window.__toolbar.at(-1) !== s) window.__toolbar.push(s); };
        new MutationObserver(note).observe(document.body,
            {subtree: true, childList: true, attributes: true});
    }""", mode)


def toolbar_states(page) -> list:
    """What the toolbar did since the action's click (which itself shows it as it was, pressed)."""
    states = page.evaluate("window.__toolbar")
    return states[1:] if states[:1] == ["shown"] else states


def played_duration(page, mode: str, previous_src: str | None = None) -> tuple[float, str]:
    """Wait until the player holds a new video the browser can play; its duration in seconds."""
    page.wait_for_function(
        """([mode, previous]) => { const v = document.querySelector('#' + mode + '-result video');
            return v && v.currentSrc && v.currentSrc !== previous && v.readyState >= 1 && v.duration > 0; }""",
        arg=[mode, previous_src])
    return page.evaluate("""(mode) => { const v = document.querySelector('#' + mode + '-result video');
        return [v.duration, v.currentSrc, v.loop, v.autoplay]; }""", mode)[:2]


def exported_zip(page) -> str:
    """The zip the gallery's Export link gives, downloaded as a person would; its path."""
    link = page.locator("#gallery-export-file a[download]").first
    link.wait_for(state="attached")
    with page.expect_download() as download:
        link.click()
    return download.value.path()


def newest_recipe(outputs: Path, mode: str) -> dict:
    recipes = sorted(outputs.glob(f"*-{mode}-*.json"))
    assert recipes, f"no {mode} result in {outputs}"
    return json.loads(recipes[-1].read_text())


def generate_and_play(page, outputs: Path, mode: str) -> dict:
    previous = page.evaluate("(m) => document.querySelector('#' + m + '-result video')?.currentSrc || null", mode)
    watch_progress(page, mode)
    page.click(f"#{mode}-generate")
    duration, _ = played_duration(page, mode, previous)
    page.wait_for_function("(m) => document.querySelector('#' + m + '-progress [data-state=done]')", arg=mode)
    recipe = newest_recipe(outputs, mode)
    out = recipe["output"]
    assert duration == pytest.approx(out["frames"] / out["fps"], abs=0.08), (duration, out)
    states = page.evaluate("window.__states")
    assert states[-1] == "done" and len(states) >= 2, states  # queued / loading / running, then done
    expect(page.locator(f"#{mode}-status")).to_contain_text("Saved")
    expect(page.locator(f"#{mode}-preview img")).to_have_count(0)  # the live preview gave way to the video
    return recipe


def assert_upload_box_fits(page, elem_id: str) -> None:
    """The empty upload box shows "Click to Upload" whole, inside the box and below its label."""
    found = page.evaluate("""(id) => {
        const label = document.getElementById(id).querySelector('[data-testid="block-label"]');
        const box = document.getElementById(id).querySelector('.upload-container');
        const text = box && box.querySelector('[data-testid="upload-text"]');
        if (!text || !/Click to Upload/.test(text.innerText)) return null;
        const range = document.createRange();
        range.selectNodeContents(text);  // the icon and the words themselves, not their centring box
        const b = box.getBoundingClientRect(), t = range.getBoundingClientRect();
        const l = label ? label.getBoundingClientRect() : null;
        return {inside: t.top >= b.top && t.bottom <= b.bottom && t.left >= b.left && t.right <= b.right,
                below_label: !l || t.top >= l.bottom - 1, height: t.height}; }""", elem_id)
    assert found and found["inside"] and found["below_label"] and found["height"] > 0, (elem_id, found)


def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

