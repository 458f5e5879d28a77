"""The studio in a real browser: Playwright driving Debian's Chromium against a launched app on the
Tiny generation. Each test does what a person would: pick a mode, upload files, Generate, watch
the progress, play the video. Screenshots of every mode panel go to test-artifacts/.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.conftest import ROOT
from tests.media_fixtures import make_image, make_video

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"
WAIT_MS = 120_000  # every wait is on a condition; this only bounds it on a loaded machine
LONG_RUN = "a very long run"  # the prompt of the run the stop test stops

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
    if job.request.get("prompt") != {LONG_RUN!r} or event.kind != "progress" or event.progress.stage != "denoising":
        return
    if event.progress.preview is not None:
        previewed.add(job.id)
    elif job.id in previewed:
        stop_pressed.setdefault(job.id, threading.Event()).wait(600)

def init(self, *args, **kwargs):
    plain_init(self, *args, **kwargs)
    self.add_listener(hold_long_run)

QueueWorker.stop_job, QueueWorker.__init__ = stop_job, init
"""


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
    yield url, base / "outputs", Path(proc.log_path)
    proc.terminate()
    proc.wait(timeout=30)


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
        yield context
        context.close()
        shutil.rmtree(profile, ignore_errors=True)


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


# -- helpers ------------------------------------------------------------------------------------
def open_mode(page, mode: str) -> None:
    page.click(f"#nav-{mode}")
    page.wait_for_selector(f"#panel-{mode}", state="visible")


def set_number(page, elem_id: str, value) -> None:
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Enter")


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


def played_duration(page, mode: str, previous_src: str | None = None) -> tuple[float, str]:
    """Wait until the player holds a new video the browser can play; its duration in seconds."""
    page.wait_for_function(
        """([mode, previous]) => { const v = document.querySelector('#' + mode + '-result video');
            return v && v.currentSrc && v.currentSrc !== previous && v.readyState >= 1 && v.duration > 0; }""",
        arg=[mode, previous_src])
    return page.evaluate("""(mode) => { const v = document.querySelector('#' + mode + '-result video');
        return [v.duration, v.currentSrc, v.loop, v.autoplay]; }""", mode)[:2]


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


# -- tests --------------------------------------------------------------------------------------
def test_every_mode_generates_a_playable_video(page, studio, media):
    outputs = studio[1]
    # T2V: a prompt, 13 frames
    page.fill("#t2v-prompt textarea", "a lighthouse in a storm")
    set_number(page, "t2v-frames", 13)
    page.wait_for_function("() => document.querySelector('#t2v-cost').innerText.includes('13 frames')")
    screenshot(page, "mode-t2v")
    assert generate_and_play(page, outputs, "t2v")["output"]["frames"] == 13
    # Extend: the video shown, 1 s longer (16 frames at 16 fps), as a new result naming its parent
    first = newest_recipe(outputs, "t2v")
    set_number(page, "t2v-extend-seconds", 1)
    page.wait_for_function("() => document.querySelector('#t2v-extend-seconds input').value === '1'")
    page.click("#t2v-extend")
    page.wait_for_function("(id) => { const r = document.querySelector('#t2v-status')?.innerText || '';"
                           " return r.includes('29 frames'); }", arg=first["id"])
    extended = newest_recipe(outputs, "t2v")
    assert extended["parent"] == first["id"] and extended["output"]["frames"] == 29
    # Smooth: the video shown at twice its frame rate, as a new result shown in its place
    page.click("#t2v-smooth")
    expect(page.locator("#t2v-status")).to_contain_text("57 frames, 64x64, 32 fps")
    smoothed = newest_recipe(outputs, "t2v")
    assert smoothed["parent"] == extended["id"] and smoothed["finishing"]["factor"] == 2
    # Upscale: the smoothed video twice as large, as a queued job whose progress shows frame by frame
    page.click("#t2v-upscale")
    expect(page.locator("#t2v-status")).to_contain_text("57 frames, 128x128, 32 fps")
    expect(page.locator("#t2v-progress")).to_contain_text(f"Done: upscaled ×2 from {smoothed['id']}")
    upscaled = newest_recipe(outputs, "t2v")
    assert upscaled["parent"] == smoothed["id"] and upscaled["finishing"]["scale"] == 2
    # the prompt history: type to search the mode's earlier prompts, pick one to use it again
    page.fill("#t2v-prompt textarea", "")
    page.click("#t2v-recent input")
    page.keyboard.type("lighthouse")
    page.get_by_role("option", name="a lighthouse in a storm").click()
    expect(page.locator("#t2v-prompt textarea")).to_have_value("a lighthouse in a storm")

    open_mode(page, "i2v")
    upload(page, "i2v-image", media["image"], "img")
    page.fill("#i2v-prompt textarea", "the gradient starts to move")
    screenshot(page, "mode-i2v")
    recipe = generate_and_play(page, outputs, "i2v")
    assert recipe["request"]["image"].endswith("image.png")

    open_mode(page, "ti2v")
    upload(page, "ti2v-image", media["image"], "img")
    page.fill("#ti2v-prompt textarea", "a boat on a rainy street")
    screenshot(page, "mode-ti2v")
    assert generate_and_play(page, outputs, "ti2v")["output"]["fps"] == 24

    open_mode(page, "flf2v")
    upload(page, "flf2v-image", media["image"], "img")
    # the end frame from the "Generate" tab: a one-frame preview run, put into the Upload tab
    page.locator("#flf2v-end-tabs").get_by_role("tab", name="Generate").click()
    page.fill("#flf2v-end-prompt textarea", "a night sky")
    page.click("#flf2v-end-generate")
    page.locator("#flf2v-last_image img").wait_for(state="visible")
    page.fill("#flf2v-prompt textarea", "day turns to night")
    screenshot(page, "mode-flf2v")
    recipe = generate_and_play(page, outputs, "flf2v")
    assert newest_recipe(outputs, "preview")["request"]["prompt"] == "a night sky"
    assert recipe["request"]["last_image"].endswith("last_image.png")

    open_mode(page, "v2v")
    upload(page, "v2v-video", media["clip"], "video")
    page.fill("#v2v-prompt textarea", "as a watercolour")
    screenshot(page, "mode-v2v")
    assert generate_and_play(page, outputs, "v2v")["output"]["frames"] == 13  # 1 s at 16 fps, as 4k+1

    open_mode(page, "vace")
    upload(page, "vace-video", media["clip"], "video")
    for box in ("vace-mask", "vace-reference"):  # tall enough for their words
        assert_upload_box_fits(page, box)
    page.fill("#vace-bbox textarea, #vace-bbox input", "16, 16, 64, 48")
    page.fill("#vace-prompt textarea", "flowers in the box")
    screenshot(page, "mode-vace")
    recipe = generate_and_play(page, outputs, "vace")
    assert recipe["request"]["vace_mode"] == "inpaint" and recipe["request"]["bbox"] == [16, 16, 64, 48]

    open_mode(page, "animate")
    upload(page, "animate-image", media["image"], "img")
    upload(page, "animate-pose_video", media["pose"], "video")
    upload(page, "animate-face_video", media["face"], "video")
    page.fill("#animate-prompt textarea", "the figure dances")
    screenshot(page, "mode-animate")
    assert generate_and_play(page, outputs, "animate")["output"]["fps"] == 30

    open_mode(page, "s2v")  # Tiny has S2V (test_sidebar_follows_the_generation)
    upload(page, "s2v-image", media["image"], "img")
    # the waveform player keeps its <audio> hidden; the read-only duration shows the upload arrived
    page.locator("#s2v-audio input[type=file]").set_input_files(str(media["voice"]))
    page.wait_for_function(
        "() => document.querySelector('#s2v-duration textarea, #s2v-duration input').value.includes('s')")
    page.fill("#s2v-prompt textarea", "someone speaks")
    screenshot(page, "mode-s2v")
    generate_and_play(page, outputs, "s2v")
    open_mode(page, "gallery")
    screenshot(page, "page-gallery")
    open_mode(page, "queue")
    page.wait_for_function("() => ['t2v', 'i2v', 'vace', 'animate']"
                           ".every(m => document.querySelector('#queue-table').innerText.includes(m))")
    screenshot(page, "page-queue")
    open_mode(page, "settings")
    page.wait_for_function("() => document.querySelector('#settings-about').innerText.includes('Backend')")
    screenshot(page, "page-settings")


def test_animate_makes_pose_and_face_from_a_plain_video_for_a_look_first(page, studio, media):
    """A character picture and a plain driving video: the button makes the pose and face videos into
    their inputs (the user can watch them), and Generate then uses them without extracting again."""
    outputs = studio[1]
    open_mode(page, "animate")
    upload(page, "animate-image", media["image"], "img")
    upload(page, "animate-driving_video", media["dance"], "video")
    page.click("#animate-make-controls")
    expect(page.locator("#animate-controls-note")).to_contain_text("Made pose, face from dance.mp4")
    for field in ("pose_video", "face_video"):
        page.wait_for_function("""(id) => { const v = document.querySelector('#' + id + ' video');
            return v && v.currentSrc.includes('dance-') && v.readyState >= 1 && v.duration > 0; }""",
                               arg=f"animate-{field}")
    screenshot(page, "animate-made-controls")
    page.fill("#animate-prompt textarea", "the figure dances")
    recipe = generate_and_play(page, outputs, "animate")
    assert "extracted" not in recipe and recipe["output"]["frames"] == 18  # 0.6 s at 30 fps, made beforehand


def test_vace_inpaint_takes_a_click_on_the_first_frame(page, studio, media):
    """The first frame shows at the output size once a video is given; a click there is the point
    (output pixels) of the object to regenerate, and a marker shows where it landed."""
    open_mode(page, "vace")
    upload(page, "vace-video", media["clip"], "video")
    picture = page.locator("#vace-point-picker img")
    picture.wait_for(state="visible")
    page.wait_for_function("() => document.querySelector('#vace-point-picker img').naturalWidth > 0")
    box, plain = picture.bounding_box(), picture.get_attribute("src")
    picture.click(position={"x": box["width"] * 0.25, "y": box["height"] * 0.75})
    point = page.locator("#vace-point textarea, #vace-point input")
    expect(point).not_to_have_value("")
    x, y = (int(v) for v in point.input_value().split(","))
    assert abs(x - 64 * 0.25) <= 1 and abs(y - 48 * 0.75) <= 1  # tiny-vace makes 64x48 from this 96x64 clip
    page.wait_for_function("(src) => document.querySelector('#vace-point-picker img').getAttribute('src') !== src",
                           arg=plain)  # redrawn with the marker
    screenshot(page, "vace-click-the-object")


def test_send_to_v2v_and_i2v_fill_the_input_and_run(page, studio):
    outputs = studio[1]
    page.fill("#t2v-prompt textarea", "a red ball rolls")
    generate_and_play(page, outputs, "t2v")

    page.click("#t2v-send-v2v")
    page.wait_for_selector("#panel-v2v", state="visible")
    page.locator("#v2v-video video").wait_for(state="attached")
    page.fill("#v2v-prompt textarea", "the same ball, as a sketch")
    recipe = generate_and_play(page, outputs, "v2v")
    assert recipe["request"]["video"].endswith("video.mp4")

    open_mode(page, "t2v")
    page.click("#t2v-send-i2v")
    page.wait_for_selector("#panel-i2v", state="visible")
    page.locator("#i2v-image img").wait_for(state="visible")
    page.fill("#i2v-prompt textarea", "the ball keeps rolling")
    recipe = generate_and_play(page, outputs, "i2v")
    assert recipe["output"]["width"] == 64 and recipe["output"]["height"] == 64  # the last frame's 1:1 shape


def test_gallery_reload_restores_every_parameter(page, studio, media):
    outputs = studio[1]
    open_mode(page, "i2v")
    upload(page, "i2v-image", media["image"], "img")
    page.fill("#i2v-prompt textarea", "reload me exactly")
    open_advanced(page, "i2v")
    page.fill("#i2v-negative_prompt textarea", "blurry")
    set_number(page, "i2v-steps", 3)
    set_number(page, "i2v-guidance", 4.5)
    page.locator("#i2v-randomize input").uncheck()
    set_number(page, "i2v-seed", 4242)
    set_number(page, "i2v-frames", 13)
    original = generate_and_play(page, outputs, "i2v")["request"]
    assert original["seed"] == 4242 and original["steps"] == 3

    # scramble the panel, then reload the result from the gallery
    page.fill("#i2v-prompt textarea", "something else")
    set_number(page, "i2v-seed", 1)
    set_number(page, "i2v-steps", 9)
    upload(page, "i2v-image", media["image2"], "img[src*='end.png']")
    open_mode(page, "gallery")
    newest = page.locator("#gallery-grid button.thumbnail-item").first
    expect(newest).to_contain_text("reload me exactly")  # the grid has refreshed since the run
    # however few results, a tile is a tile (not a stretched, blurry panel) and its caption shows whole
    tiles = page.evaluate("""() => [...document.querySelectorAll('#gallery-grid button.thumbnail-item')].map(t => {
        const c = t.querySelector('.caption-label'), box = t.getBoundingClientRect(), cap = c.getBoundingClientRect();
        return {width: box.width,
                inside: cap.left >= box.left - 1 && cap.right <= box.right + 1 && cap.bottom <= box.bottom + 1,
                whole: c.scrollWidth <= c.clientWidth + 1 && c.scrollHeight <= c.clientHeight + 1,
                opacity: getComputedStyle(c).opacity}; })""")
    assert tiles and all(t["width"] <= 400 and t["inside"] and t["whole"] and float(t["opacity"]) > 0.9
                         for t in tiles), tiles
    screenshot(page, "gallery-first-use")
    newest.click()
    page.wait_for_function("() => document.querySelector('#gallery-info').innerText.includes('reload me exactly')")
    page.click("#gallery-reload")
    page.wait_for_selector("#panel-i2v", state="visible")
    page.wait_for_function("() => document.querySelector('#i2v-prompt textarea').value === 'reload me exactly'")
    assert page.input_value("#i2v-seed input") == "4242"
    assert page.input_value("#i2v-steps input[type=number]") == "3"
    assert page.input_value("#i2v-guidance input[type=number]") == "4.5"
    assert page.input_value("#i2v-frames input[type=number]") == "13"
    assert page.input_value("#i2v-negative_prompt textarea") == "blurry"
    assert not page.locator("#i2v-randomize input").is_checked()
    page.locator("#i2v-image img[src*='image.png']").wait_for(state="visible")  # the library's copy, not end.png
    again = generate_and_play(page, outputs, "i2v")["request"]
    for key in ("prompt", "seed", "steps", "guidance", "frames", "width", "height", "negative_prompt", "model"):
        assert again[key] == original[key], key


def test_gallery_compares_two_results_side_by_side(page, studio):
    """Pick one result, select another, Compare: both play side by side, in step, over a table of what
    differs in their recipes."""
    outputs = studio[1]
    for prompt, steps in (("a red kite", 2), ("a blue kite", 3)):
        page.fill("#t2v-prompt textarea", prompt)
        open_advanced(page, "t2v")
        set_number(page, "t2v-steps", steps)
        generate_and_play(page, outputs, "t2v")
    open_mode(page, "gallery")
    tiles = page.locator("#gallery-grid button.thumbnail-item")
    expect(tiles.first).to_contain_text("a blue kite")
    tiles.nth(1).click()  # the red kite
    page.wait_for_function("() => document.querySelector('#gallery-info').innerText.includes('a red kite')")
    page.click("#gallery-pick")
    expect(page.locator("#gallery-differences")).to_contain_text("Picked")
    tiles.first.click()  # the blue kite
    page.wait_for_function("() => document.querySelector('#gallery-info').innerText.includes('a blue kite')")
    page.click("#gallery-compare")
    differences = page.locator("#gallery-differences")
    expect(differences).to_contain_text("a red kite")
    text = differences.inner_text()
    assert "a blue kite" in text and "steps" in text and "model" not in text  # only what differs
    for side in ("compare-a", "compare-b"):
        page.wait_for_function("(id) => { const v = document.querySelector('#' + id + ' video');"
                               " return v && v.readyState >= 1 && v.duration > 0; }", arg=side)
    # in step: pausing or seeking one does the same to the other
    page.evaluate("() => { const a = document.querySelector('#compare-a video'); a.pause(); a.currentTime = 0.25; }")
    page.wait_for_function("() => { const b = document.querySelector('#compare-b video');"
                           " return b.paused && Math.abs(b.currentTime - 0.25) < 0.05; }")
    screenshot(page, "gallery-compare")


def drag_result_onto(page, mode: str, elem_id: str) -> None:
    """Drag the gallery's first result over the sidebar's entry of `mode` (its page opens), then
    drop it on the input `elem_id`: the drag events a person's mouse makes, sent by the page itself
    (Chromium's own drag under a loaded machine sometimes never starts; what is tested is ours)."""
    page.evaluate("""() => { window.__drag = new DataTransfer();
        document.querySelector('#gallery-grid img').dispatchEvent(
            new DragEvent('dragstart', {bubbles: true, cancelable: true, dataTransfer: window.__drag})); }""")
    over = ("(id) => document.getElementById(id).dispatchEvent("
            "new DragEvent('dragover', {bubbles: true, cancelable: true, dataTransfer: window.__drag}))")
    for _ in range(400):  # held there until its page opens (a bound, not a timing)
        page.evaluate(over, f"nav-{mode}")
        if page.locator(f"#panel-{mode}").is_visible():
            break
        page.wait_for_timeout(50)
    page.wait_for_selector(f"#{elem_id}", state="visible")
    page.evaluate(over, elem_id)
    page.evaluate("""(id) => document.getElementById(id).dispatchEvent(
        new DragEvent('drop', {bubbles: true, cancelable: true, dataTransfer: window.__drag}))""", elem_id)


def test_a_gallery_result_dragged_onto_an_input_fills_it(page, studio):
    """From the gallery onto V2V's video input: the result's video; onto I2V's image: its last frame."""
    outputs = studio[1]
    page.fill("#t2v-prompt textarea", "a paper boat")
    made = generate_and_play(page, outputs, "t2v")
    open_mode(page, "gallery")
    expect(page.locator("#gallery-grid button.thumbnail-item").first).to_contain_text("a paper boat")
    drag_result_onto(page, "v2v", "v2v-video")
    page.wait_for_function("(id) => (document.querySelector('#v2v-video video')?.src || '').includes(id)",
                           arg=made["id"])
    open_mode(page, "gallery")
    drag_result_onto(page, "i2v", "i2v-image")
    page.wait_for_function("(id) => (document.querySelector('#i2v-image img')?.src || '').includes(id + '-last.png')",
                           arg=made["id"])


def test_favourite_settings_are_saved_by_name_and_put_back(page, studio):
    """"my draft": the panel's settings saved under a name; changed; picked again: they come back
    (the prompt stays what it is now). The favourite is still there after a reload of the page."""
    open_mode(page, "t2v")
    open_advanced(page, "t2v")
    set_number(page, "t2v-steps", 7)
    set_number(page, "t2v-frames", 17)
    page.fill("#t2v-negative_prompt textarea", "no text")
    page.click("#t2v-favourites-box")
    page.fill("#t2v-favourite-name textarea, #t2v-favourite-name input", "my draft")
    page.click("#t2v-favourite-save")
    page.wait_for_function(
        "() => document.querySelector('#t2v-favourite-name textarea, #t2v-favourite-name input')?.value === ''")
    set_number(page, "t2v-steps", 3)
    set_number(page, "t2v-frames", 9)
    page.fill("#t2v-negative_prompt textarea", "")
    page.reload()
    page.wait_for_function("() => document.querySelector('#t2v-cost')?.innerText.includes('frames')")
    page.fill("#t2v-prompt textarea", "a prompt of now")
    page.click("#t2v-favourites-box")
    page.click("#t2v-favourites input")
    page.get_by_role("option", name="my draft").click()
    page.wait_for_function("() => document.querySelector('#t2v-frames input[type=number]')?.value === '17'")
    open_advanced(page, "t2v")
    page.wait_for_function("() => document.querySelector('#t2v-steps input[type=number]')?.value === '7'")
    assert page.input_value("#t2v-negative_prompt textarea") == "no text"
    assert page.input_value("#t2v-prompt textarea") == "a prompt of now"  # the prompt is not part of a favourite
    expect(page.locator("#t2v-cost")).to_contain_text("17 frames")  # the estimate follows


def test_stop_and_bad_input_leave_the_page_working(page, studio):
    outputs = studio[1]
    before = set(outputs.glob("*.mp4"))
    # a bad input: its message beside the prompt, nothing queued or written
    page.click("#t2v-generate")
    error = page.locator("#t2v-error-prompt")
    error.wait_for(state="visible")
    assert "The prompt is empty" in error.inner_text()
    assert set(outputs.glob("*.mp4")) == before
    assert page.locator(".toast-body").count() == 0  # said beside the prompt only, no toast to outlive the fix

    # a number out of its range: what is wrong, on the cost line at once and beside Steps on Generate
    page.locator("#t2v-prompt textarea").press_sequentially("a paper boat")  # typed, as a person does
    error.wait_for(state="hidden")  # fixed: the message goes at once
    open_advanced(page, "t2v")
    set_number(page, "t2v-steps", 400)
    expect(page.locator("#t2v-cost")).to_contain_text("Steps must be at most 200; got 400.")
    page.click("#t2v-generate")
    page.locator("#t2v-error-steps").wait_for(state="visible")
    assert "Steps must be at most 200; got 400." in page.locator("#t2v-error-steps").inner_text()
    set_number(page, "t2v-frames", 999)  # a slider: the typed value reaches the request, which names it
    expect(page.locator("#t2v-cost")).to_contain_text(
        "Frames must be at most 960 (60 s at 16 fps, the studio's longest video); got 999.")
    set_number(page, "t2v-frames", 9)
    log = studio[2].read_text()
    assert "greater than maximum" not in log and "Traceback" not in log, log[-2000:]
    assert set(outputs.glob("*.mp4")) == before

    # a long run, stopped while it is denoising (the app holds it after its first preview until Stop)
    page.fill("#t2v-prompt textarea", LONG_RUN)
    open_advanced(page, "t2v")
    set_number(page, "t2v-steps", 200)
    watch_progress(page, "t2v")
    page.locator("#t2v-prompt textarea").press("Control+Enter")  # queues the prompt's job, like Generate
    page.wait_for_selector("#t2v-progress [data-state=running]")
    expect(page.locator("#t2v-progress")).to_contain_text("Step")
    page.wait_for_function("() => document.querySelector('#t2v-preview img')")  # the live preview
    page.wait_for_function(r"() => /^\[\d+%\] Wan Studio$/.test(document.title)")  # the tab shows the progress
    page.keyboard.press("Escape")  # stops the job shown
    page.wait_for_selector("#t2v-progress [data-state=stopped]")
    page.wait_for_function("() => document.title === '[stopped] Wan Studio'")
    assert not error.is_visible()
    assert set(outputs.glob("*.mp4")) == before

    # still usable: the next run goes through
    set_number(page, "t2v-steps", 2)
    generate_and_play(page, outputs, "t2v")

    # a missing file is marked beside its own input
    open_mode(page, "i2v")
    page.fill("#i2v-prompt textarea", "no picture given")
    page.click("#i2v-generate")
    page.locator("#i2v-error-image").wait_for(state="visible")
    assert "needs an input image" in page.locator("#i2v-error-image").inner_text()
    assert not page.locator("#i2v-error-prompt").is_visible()


def test_the_chime_sounds_when_a_job_ends_once_switched_on(page, studio):
    """Off at first; "Chime: on" in the header, and a finished job plays it (counted on the page,
    as no ear is here); the choice is remembered in this browser."""
    chime = page.locator("#header-chime")
    expect(chime).to_have_text("Chime: off")
    chime.click()
    expect(chime).to_have_text("Chime: on")
    try:
        page.fill("#t2v-prompt textarea", "a bell rings")
        open_advanced(page, "t2v")
        set_number(page, "t2v-steps", 12)
        generate_and_play(page, studio[1], "t2v")
        page.wait_for_function("() => document.body.dataset.chimes === '1'")
        page.reload()
        page.wait_for_function("() => document.querySelector('#t2v-cost')?.innerText.includes('frames')")
        expect(page.locator("#header-chime")).to_have_text("Chime: on")
    finally:
        page.evaluate("() => localStorage.removeItem('wan-studio-chime')")  # the other tests share this browser


@pytest.mark.parametrize("width", [360, 390, 1440, 2560])
def test_every_page_fits_a_phone_a_laptop_and_a_wide_screen(studio, browser, width):
    """Nothing runs past the right edge at any width (no sideways scrolling); a screenshot of each
    page is kept; on a phone the sidebar's toggle does not cover the title and the Generation
    dropdown's text stops before its caret."""
    page = browser.new_page()
    page.set_viewport_size({"width": width, "height": 900})
    page.set_default_timeout(WAIT_MS)
    try:
        page.goto(studio[0])
        page.wait_for_selector("#nav-t2v", state="attached")
        page.wait_for_function("() => document.querySelector('#t2v-cost')?.innerText.includes('frames')")
        for section in ("t2v", "vace", "gallery", "queue", "settings"):
            if section != "t2v":
                page.evaluate("(id) => { delete document.body.dataset.opened; document.getElementById(id).click(); }",
                              f"nav-{section}")
                # opened and filled in: its outputs no longer fade while they load
                page.wait_for_function("(key) => document.body.dataset.opened === key", arg=section)
                page.wait_for_selector(f"#panel-{section}", state="visible")
            wide = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
            assert wide[0] <= wide[1], (section, width, wide)
            screenshot(page, f"width-{width}-{section}")
        if width < 768:
            gaps = page.evaluate("""() => {
                const toggle = document.querySelector('button.toggle-button').getBoundingClientRect();
                const title = document.querySelector('#studio-name h2').getBoundingClientRect();
                const input = document.querySelector('#generation input'), box = input.getBoundingClientRect();
                const caret = document.querySelector('#generation .icon-wrap').getBoundingClientRect();
                const textRight = box.right - parseFloat(getComputedStyle(input).paddingRight);
                return {title: title.left - toggle.right, caret: caret.left - textRight}; }""")
            assert gaps["title"] >= 0 and gaps["caret"] >= 0, gaps
    finally:
        page.close()


AXE = ROOT / ".cache" / "axe" / "node_modules" / "axe-core" / "axe.min.js"  # npm's axe-core: `make test` installs it
PAGES = ("t2v", "i2v", "ti2v", "flf2v", "v2v", "vace", "s2v", "animate", "gallery", "queue", "settings")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_no_page_has_a_serious_accessibility_violation(studio, browser, scheme):
    """axe-core on every page (each mode's panel, the gallery, the queue, settings), in the light and
    the dark theme: no serious or critical violation (names, roles, contrast of 4.5:1, ...)."""
    assert AXE.is_file(), f"{AXE} is missing: `make test` installs it (npm install axe-core)"
    page = browser.new_page()
    page.set_default_timeout(WAIT_MS)
    try:
        page.emulate_media(color_scheme=scheme)
        page.goto(studio[0])
        page.wait_for_function("() => document.querySelector('#t2v-cost')?.innerText.includes('frames')")
        page.add_script_tag(path=str(AXE))
        for section in PAGES:
            if section != "t2v":
                page.evaluate("(id) => document.getElementById(id).click()", f"nav-{section}")
                page.wait_for_selector(f"#panel-{section}", state="visible")
            # no output faded while it loads, and no fade back still running (axe would read its colours midway)
            page.wait_for_function("() => !document.querySelector('.pending')"
                                   " && !document.getAnimations().some((a) => a instanceof CSSTransition)")
            found = page.evaluate("""async () => (await axe.run(document, {resultTypes: ['violations']})).violations
                .filter((v) => ['serious', 'critical'].includes(v.impact))
                .map((v) => v.id + ': ' + v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | '))""")
            assert found == [], (scheme, section, found)
    finally:
        page.close()


FOCUSED = """(e) => (e.id || (e.closest('[id]') || {}).id || '') + ' ' + e.tagName + ' '
                      + (e.getAttribute('aria-label') || e.innerText || e.value || '').trim().slice(0, 30)"""


def test_the_keyboard_reaches_every_control_in_reading_order(page):
    """Tab alone visits every control on the page once, in the order they are read (header, the
    modes, the panel top to bottom), with no control skipped and none visited out of turn."""
    controls = page.evaluate(f"""() => [...document.querySelectorAll(
            'button, input, textarea, select, a[href], [tabindex]')]
        .filter((e) => e.offsetParent !== null && !e.disabled && e.tabIndex >= 0
            && !(e.type === 'radio' && !e.checked))
        .map({FOCUSED})""")
    visited = []
    for _ in range(len(controls) + 5):
        page.keyboard.press("Tab")
        name = page.evaluate(f"() => ({FOCUSED})(document.activeElement)")
        if name in visited:
            break  # round again
        visited.append(name)
    assert [name for name in visited if name in controls] == controls
    ids = [name.split()[0] for name in visited]
    assert ids.index("nav-t2v") < ids.index("t2v-prompt") < ids.index("t2v-generate") < ids.index("t2v-upscale")


def test_the_theme_follows_the_system_until_the_toggle_picks_one(studio, browser):
    page = browser.new_page()
    page.set_default_timeout(WAIT_MS)
    dark = "() => document.body.classList.contains('dark')"
    try:
        page.emulate_media(color_scheme="light")
        page.goto(studio[0])
        page.wait_for_selector("#header-theme")
        page.wait_for_function(f"() => !({dark})()")
        page.emulate_media(color_scheme="dark")  # the system changes: the page follows
        page.wait_for_function(dark)
        page.click("#header-theme")  # picked: light, whatever the system says
        page.wait_for_function(f"() => !({dark})()")
        page.reload()
        page.wait_for_function("() => document.querySelector('#t2v-cost')?.innerText.includes('frames')")  # loaded
        assert page.evaluate("() => localStorage.getItem('wan-studio-theme')") == "light"
        assert not page.evaluate(dark)  # remembered in this browser, over the system's dark
    finally:
        page.evaluate("() => localStorage.removeItem('wan-studio-theme')")  # the other tests share this browser
        page.close()


def test_sidebar_follows_the_generation(page):
    def choose_generation(label):
        page.click("#generation input")
        page.get_by_role("option", name=label).first.click()

    assert page.locator("#nav-t2v").is_enabled() and page.locator("#nav-s2v").is_enabled()  # Tiny has every mode
    # every sidebar and header icon is an SVG picture that loaded: nothing needs an emoji font
    buttons = "#studio-sidebar button[id^='nav-'], #header-history, #header-settings"  # (the theme toggle has no icon)
    page.wait_for_function("(sel) => [...document.querySelectorAll(sel)].every(b => { const i = b.querySelector('img');"
                           " return i && i.complete && i.naturalWidth > 0 && i.src.includes('.svg'); })", arg=buttons)
    labels = page.evaluate("(sel) => [...document.querySelectorAll(sel)].map(b => b.innerText.trim())", buttons)
    assert len(labels) == 13 and all(label and all(ord(ch) < 0x2190 for ch in label) for label in labels), labels
    choose_generation("Wan 2.2")
    page.wait_for_function("() => document.querySelector('#nav-vace').disabled")
    assert page.locator("#nav-v2v").is_disabled() and page.locator("#nav-animate").is_enabled()
    assert "Wan 2.2 has no VACE checkpoint" in page.locator("#nav-vace").get_attribute("title")
    assert "— Wan 2.2" in page.locator("#t2v-title").inner_text()  # the panel took a 2.2 checkpoint
    screenshot(page, "sidebar-wan22")
    choose_generation("Wan 2.1")
    page.wait_for_function("() => document.querySelector('#nav-animate').disabled")
    assert page.locator("#nav-vace").is_enabled() and page.locator("#nav-ti2v").is_disabled()
    assert page.locator("#nav-s2v").is_disabled() and "Wan 2.1 has no S2V checkpoint" in page.locator(
        "#nav-s2v").get_attribute("title")
    assert "Wan 2.1 has no ANIMATE checkpoint" in page.locator("#nav-animate").get_attribute("title")
    assert "ANIMATE checkpoint" in page.locator("#nav-off-note").inner_text()
    # a disabled mode's chip is off too, and the page still generates on the Tiny generation
    assert page.locator("#t2v-send-animate").is_disabled()


def test_gallery_exports_deletes_and_shows_a_deleted_file_as_missing(page, studio):
    import zipfile

    outputs = studio[1]
    page.fill("#t2v-prompt textarea", "export me")
    exported = generate_and_play(page, outputs, "t2v")
    page.fill("#t2v-prompt textarea", "lose my file")
    lost = generate_and_play(page, outputs, "t2v")
    (outputs / lost["output"]["file"]).unlink()  # deleted by hand

    open_mode(page, "gallery")
    thumbnails = page.locator("#gallery-grid button.thumbnail-item")
    expect(thumbnails.first).to_contain_text("lose my file (file missing)")  # the grid has refreshed since the runs
    expect(thumbnails.nth(1)).to_contain_text("export me")
    thumbnails.first.click()  # the newest: the one whose file is gone
    page.wait_for_function("() => document.querySelector('#gallery-info').innerText.includes('is missing')")
    expect(page.locator("#gallery-export")).to_be_disabled()
    expect(page.locator("#gallery-reload")).to_be_enabled()

    thumbnails.nth(1).click()
    page.wait_for_function("() => document.querySelector('#gallery-info').innerText.includes('export me')")
    expect(page.locator("#gallery-reload")).to_have_text("Reload into T2V")
    expect(page.locator("#gallery-export")).to_be_enabled()
    page.click("#gallery-export")
    link = page.locator("#gallery-export-file a[download]").first
    link.wait_for(state="attached")
    with page.expect_download() as download:
        link.click()
    with zipfile.ZipFile(download.value.path()) as archive:
        assert f"{exported['id']}.mp4" in archive.namelist() and f"{exported['id']}.json" in archive.namelist()

    page.click("#gallery-delete")
    page.wait_for_function("() => document.querySelector('#gallery-info').innerText.includes('Select a result')")
    assert not (outputs / f"{exported['id']}.mp4").exists() and not (outputs / f"{exported['id']}.json").exists()
    expect(page.locator("#gallery-grid")).not_to_contain_text("export me")


def test_queue_page_takes_a_batch_and_acts_on_jobs(page, studio, tmp_path):
    batch = tmp_path / "batch.json"
    batch.write_text(json.dumps([{"mode": "t2v", "model": "tiny-t2v", "prompt": f"batch shot {n}", "steps": 2,
                                  "seed": n} for n in (1, 2)]))
    open_mode(page, "queue")
    assert_upload_box_fits(page, "queue-batch")
    page.locator("#queue-batch input[type=file]").set_input_files(str(batch))
    page.wait_for_function("() => document.querySelector('#queue-batch-status').innerText.includes('Queued 2 job')")
    page.wait_for_function(
        "() => (document.querySelector('#queue-table').innerText.match(/batch shot/g) || []).length == 2")
    # the worker runs them; the table follows on the stats timer
    page.wait_for_function("""() => [...document.querySelectorAll('#queue-table [role=row]')]
        .filter(r => r.innerText.includes('batch shot') && r.innerText.includes('done')).length == 2""")
    page.wait_for_function("() => document.querySelector('#stats-text').innerText.includes('CPU')")
    row = page.locator("#queue-table [role=row]", has_text="batch shot 1").first
    job_id = row.inner_text().split()[0]
    page.fill("#queue-job textarea, #queue-job input", job_id)
    page.click("#queue-remove")
    page.wait_for_function("(id) => document.querySelector('#queue-action-status').innerText.includes(id)", arg=job_id)
    expect(page.locator("#queue-table")).not_to_contain_text("batch shot 1")
    page.fill("#queue-job textarea, #queue-job input", "nope")
    page.click("#queue-cancel")
    page.wait_for_function("() => document.querySelector('#queue-action-status').innerText.includes('no job')")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"mode": "t2v", "model": "tiny-t2v", "prompt": "ok"},
                               {"mode": "t2v", "model": "tiny-t2v", "prompt": "", "frames": 14}]))
    page.locator("#queue-batch input[type=file]").set_input_files(str(bad))
    page.wait_for_function(
        "() => document.querySelector('#queue-batch-status').innerText.includes('Nothing was queued')")
    assert "row 2" in page.locator("#queue-batch-status").inner_text()
