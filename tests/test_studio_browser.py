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
    watch_toolbar(page, "t2v")
    page.click("#t2v-extend")
    page.wait_for_function("(id) => { const r = document.querySelector('#t2v-status')?.innerText || '';"
                           " return r.includes('29 frames'); }", arg=first["id"])
    extended = newest_recipe(outputs, "t2v")
    assert extended["parent"] == first["id"] and extended["output"]["frames"] == 29
    # while a follow-on job runs, the result's toolbar waits for its result: the next action is on that one
    states = toolbar_states(page)
    assert "hidden" in states and states[-1] == "shown", states
    # Smooth: the video shown at twice its frame rate, as a new result shown in its place
    watch_toolbar(page, "t2v")
    page.click("#t2v-smooth")
    expect(page.locator("#t2v-status")).to_contain_text("57 frames, 64x64, 32 fps")
    smoothed = newest_recipe(outputs, "t2v")
    assert smoothed["parent"] == extended["id"] and smoothed["finishing"]["factor"] == 2
    states = toolbar_states(page)
    assert "hidden" in states and states[-1] == "shown", states
    # Upscale: the smoothed video twice as large, as a queued job whose progress shows frame by frame
    page.click("#t2v-upscale")
    expect(page.locator("#t2v-status")).to_contain_text("57 frames, 128x128, 32 fps")
    done = page.locator("#t2v-progress [data-state=done]")
    expect(done).to_contain_text("Done: upscaled ×2")
    expect(done).to_contain_text("from “a lighthouse in a storm”")  # its source by its prompt, not an id
    assert smoothed["id"] not in done.inner_text()
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
    # the Wan 2.2 MoE VACE's twin: both experts, each with its own guidance
    page.click("#vace-model input")
    page.get_by_role("option", name="Tiny VACE MoE (random weights, two experts)").click()
    upload(page, "vace-video", media["clip"], "video")
    for box in ("vace-mask", "vace-reference"):  # tall enough for their words
        assert_upload_box_fits(page, box)
    page.fill("#vace-bbox textarea, #vace-bbox input", "16, 16, 64, 48")
    page.fill("#vace-prompt textarea", "flowers in the box")
    screenshot(page, "mode-vace")
    recipe = generate_and_play(page, outputs, "vace")
    assert recipe["request"]["vace_mode"] == "inpaint" and recipe["request"]["bbox"] == [16, 16, 64, 48]
    assert recipe["request"]["model"] == "tiny-vace-moe" and recipe["request"]["guidance_2"] == 5.0

    open_mode(page, "animate")
    upload(page, "animate-image", media["image"], "img")
    upload(page, "animate-pose_video", media["pose"], "video")
    upload(page, "animate-face_video", media["face"], "video")
    # its prompt is optional, as its label says: an empty one runs as upstream's own
    expect(page.locator("#animate-prompt textarea")).to_have_value("")
    screenshot(page, "mode-animate")
    animated = generate_and_play(page, outputs, "animate")
    assert animated["output"]["fps"] == 30 and animated["request"]["prompt"] == "视频中的人在做动作"

    open_mode(page, "s2v")  # Tiny has S2V (test_sidebar_follows_the_generation)
    expect(page.locator("#s2v-solver")).to_be_hidden()  # the sampler waits in the closed Advanced section
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
    page.click("#queue-finished button.label-wrap")  # finished jobs are folded under the active ones
    page.wait_for_function("() => ['T2V', 'I2V', 'VACE', 'Animate']"
                           ".every(m => document.querySelector('#queue-finished')?.innerText.includes(m))")
    screenshot(page, "page-queue")
    open_mode(page, "settings")
    page.wait_for_function("() => document.querySelector('#settings-about').innerText.includes('Backend')")
    screenshot(page, "page-settings")


def test_three_quick_generates_each_get_their_own_card(page, studio):
    """Generate pressed three times in a row: one card per job, each always showing its own job, a
    count of what runs and waits, and the three results with their own prompts."""
    outputs = studio[1]
    # the first is held by the app after its first preview until Stop, so the other two surely wait behind it
    prompts = [LONG_RUN, "a green boat at dawn", "a blue tram in snow"]
    page.evaluate("""() => {
        window.__cards = {};
        const list = document.querySelector('#t2v-progress');
        const note = () => {
            for (const card of list.querySelectorAll('.progress-card[data-job]')) {
                const id = card.dataset.job, words = card.querySelector('.job-what')?.innerText;
                (window.__cards[id] = window.__cards[id] || []).includes(words) || window.__cards[id].push(words);
            }
        };
        new MutationObserver(note).observe(list, {subtree: true, childList: true, characterData: true});
    }""")
    for prompt in prompts:
        page.fill("#t2v-prompt textarea", prompt)
        page.click("#t2v-generate")
        page.wait_for_function("(p) => [...document.querySelectorAll('#t2v-progress .job-what')]"
                               ".some(e => e.innerText === p)", arg=prompt)  # its card is there at once
    expect(page.locator("#t2v-progress .job-list-head")).to_have_text("running 1 · queued 2")
    expect(page.locator("#t2v-progress .progress-card[data-job]")).to_have_count(3)
    page.wait_for_function("() => document.querySelector('#t2v-preview img')")  # the held run has its preview
    page.click("#t2v-stop")  # stops the running one; the two waiting go on
    expect(page.locator("#t2v-progress .progress-card[data-job]")).to_have_count(1)  # all ended: the last one
    expect(page.locator("#t2v-progress [data-state=done] .job-what")).to_have_text(prompts[-1])
    cards = page.evaluate("window.__cards")
    assert sorted(words for shown in cards.values() for words in shown) == sorted(prompts), cards  # never swapped
    made = [json.loads(path.read_text())["request"]["prompt"] for path in outputs.glob("*-t2v-*.json")]
    assert LONG_RUN not in made and all(made.count(prompt) == 1 for prompt in prompts[1:]), made


def test_variations_vary_reuse_seed_and_upscale_to_a_size(page, studio):
    """Two variations from one Generate (the next seed after the chosen one), then from the result
    shown: Reuse this seed, Vary (same request, a new seed), and Upscale to 1080p."""
    outputs = studio[1]
    before = set(outputs.glob("*-t2v-*.json"))
    page.fill("#t2v-prompt textarea", "two paper cranes")
    page.locator("#t2v-variations").get_by_text("2", exact=True).click()
    open_advanced(page, "t2v")
    page.locator("#t2v-randomize input").uncheck()
    set_number(page, "t2v-seed", 7)
    page.click("#t2v-generate")
    expect(page.locator("#t2v-status")).to_contain_text("seed 8.")  # the second, made after the first
    made = [json.loads(path.read_text()) for path in set(outputs.glob("*-t2v-*.json")) - before]
    assert sorted(recipe["request"]["seed"] for recipe in made) == [7, 8], made
    assert {recipe["request"]["prompt"] for recipe in made} == {"two paper cranes"}
    # Reuse this seed: the seed of the result shown, Random off
    set_number(page, "t2v-seed", 0)
    page.locator("#t2v-randomize input").check()
    page.click("#t2v-reuse-seed")
    expect(page.locator("#t2v-randomize input")).not_to_be_checked()
    expect(page.locator("#t2v-seed input")).to_have_value("8")  # the last one made is the one shown
    # Vary: the same request as the result shown, with a new seed
    before = set(outputs.glob("*-t2v-*.json"))
    page.click("#t2v-vary")
    page.wait_for_function("(b) => document.querySelector('#t2v-status').innerText.includes('Saved') &&"
                           " !document.querySelector('#t2v-status').innerText.includes(b)",
                           arg=newest_recipe(outputs, "t2v")["id"])
    varied = [json.loads(path.read_text()) for path in set(outputs.glob("*-t2v-*.json")) - before]
    assert len(varied) == 1 and varied[0]["request"]["prompt"] == "two paper cranes"
    assert varied[0]["request"]["seed"] not in (7, 8)
    # Upscale to a standard size: 1080p is the short side
    page.locator("#t2v-upscale-to input").click()
    page.get_by_role("option", name="1080p (Full HD)").click()
    page.click("#t2v-upscale")
    expect(page.locator("#t2v-status")).to_contain_text("1080x1080")
    upscaled = newest_recipe(outputs, "t2v")
    assert upscaled["finishing"]["target"] == "1080p" and upscaled["parent"] == varied[0]["id"]
    page.locator("#t2v-variations").get_by_text("1", exact=True).click()


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


def test_animate_2_takes_the_plain_driving_video_itself(page, studio, media):
    """Wan 2.2 Animate-2's twin on the Animate page: a picture and a plain driving video, nothing
    made first; the video is as long as the driving one at Animate-2's 24 fps."""
    open_mode(page, "animate")
    page.click("#animate-model input")
    page.get_by_role("option", name="Tiny Animate-2 (random weights)").click()
    upload(page, "animate-image", media["image"], "img")
    upload(page, "animate-driving_video", media["dance"], "video")
    page.fill("#animate-prompt textarea", "the figure dances on its own")
    recipe = generate_and_play(page, studio[1], "animate")
    assert recipe["request"]["model"] == "tiny-animate-2" and "extracted" not in recipe
    assert (recipe["output"]["fps"], recipe["output"]["frames"]) == (24, 14)  # 0.6 s at 24 fps


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


# what each VACE sub-mode asks for (besides the reference pictures and the strength, always there)
VACE_SUBMODE_SHOWS = {
    "Control · depth": {"video", "control_source"},
    "Edit · outpaint (widen the frame)": {"video", "outpaint_directions", "outpaint_ratio"},
    "Control · pose": {"video", "control_source"},
    "Edit · extension (frames before or after)": {"extension", "image", "last_image", "video"},
    "Edit · reference images only": set(),
    "Edit · inpaint (redo an area)": {"video", "mask", "bbox", "point", "point-picker"},
    "Control · edges": {"video", "control_source"},
}
VACE_SWITCHED = {"video", "control_source", "mask", "bbox", "point", "point-picker", "outpaint_directions",
                 "outpaint_ratio", "extension", "image", "last_image"}


def test_vace_sub_modes_each_show_their_own_inputs(page, studio):
    """Going from sub-mode to sub-mode, each shows what it needs, with a line saying what it does."""
    open_mode(page, "vace")
    for words, shown in VACE_SUBMODE_SHOWS.items():
        page.click("#vace-vace_mode input")
        page.get_by_role("option", name=words, exact=True).click()
        for name in sorted(VACE_SWITCHED):
            box = page.locator(f"#vace-{name}")
            if name in shown:
                expect(box, f"{words}: {name}").to_be_visible()
            else:
                expect(box, f"{words}: {name}").to_be_hidden()
        for name in ("reference", "conditioning_scale"):
            expect(page.locator(f"#vace-{name}")).to_be_visible()
        expect(page.locator("#vace-vace_mode-help")).not_to_be_empty()
    help_line = page.locator("#vace-vace_mode-help").inner_text()
    assert "keeps the outlines" in help_line, help_line
    assert "Traceback" not in studio[2].read_text()


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
    assert not any(word in text for word in ("extra", "continue", "None")), text  # no bookkeeping, no "None"
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


def test_stop_and_bad_input_leave_the_page_working(page, studio, tmp_path):
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
    # frames typed past the range: refused with the API's own message, on the cost line and on Generate
    # (never clamped to the top and queued)
    set_number(page, "t2v-steps", 2)
    set_number(page, "t2v-frames", 2000)
    too_many = "Frames must be between 5 and 960 (60 s at 16 fps, the studio's longest video); got 2000."
    expect(page.locator("#t2v-cost")).to_contain_text(too_many)
    page.click("#t2v-generate")
    expect(page.locator("#t2v-error-frames")).to_contain_text(too_many)
    expect(page.locator("#t2v-frames input[type=number]")).to_have_value("2000")
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
    page.fill("#t2v-prompt textarea", "after the stop")
    set_number(page, "t2v-steps", 2)
    generate_and_play(page, outputs, "t2v")

    # a missing file is marked beside its own input
    open_mode(page, "i2v")
    page.fill("#i2v-prompt textarea", "no picture given")
    page.click("#i2v-generate")
    page.locator("#i2v-error-image").wait_for(state="visible")
    assert "needs an input image" in page.locator("#i2v-error-image").inner_text()
    assert not page.locator("#i2v-error-prompt").is_visible()
    # a file that is not a picture: said under its box as soon as it is dropped, and again on Generate
    notes = tmp_path / "notes.png"
    notes.write_text("shopping: milk, eggs")
    page.locator("#i2v-image input[type=file]").set_input_files(str(notes))
    unreadable = "notes.png isn't an image we can read: PNG, JPEG or WebP."
    expect(page.locator("#i2v-error-image")).to_contain_text(unreadable)
    page.click("#i2v-generate")
    expect(page.locator("#i2v-progress")).to_contain_text("Not queued")
    expect(page.locator("#i2v-error-image")).to_contain_text(unreadable)
    log = studio[2].read_text()
    assert "Traceback" not in log and "ComponentProcessingError" not in log, log[-2000:]
    assert set(outputs.glob("*.mp4")) == before | set(outputs.glob("*-t2v-*.mp4"))


def test_a_long_video_stopped_midway_keeps_its_windows_and_resumes(page, studio):
    """Stopped in its second window, a long video says what it kept and offers Resume, which makes
    only the rest."""
    outputs = studio[1]
    page.fill("#t2v-prompt textarea", LONG_VIDEO)
    set_number(page, "t2v-frames", 41)  # past Tiny T2V's 33: three windows
    open_advanced(page, "t2v")
    set_number(page, "t2v-steps", 8)
    page.click("#t2v-generate")
    expect(page.locator("#t2v-progress [data-state=running]")).to_contain_text("clip 2/3")
    page.click("#t2v-stop")
    stopped = page.locator("#t2v-progress [data-state=stopped]")
    expect(stopped).to_contain_text("Stopped after window 1 of 3; the window made is kept, and Resume goes on "
                                    "from window 2.")
    resume = page.locator("#t2v-resume")
    expect(resume).to_be_visible()
    resume.click()
    expect(page.locator("#t2v-progress [data-state=done]")).to_be_visible()
    expect(resume).to_be_hidden()
    expect(page.locator("#t2v-status")).to_contain_text("41 frames")
    recipe = newest_recipe(outputs, "t2v")
    assert recipe["request"]["prompt"] == LONG_VIDEO and recipe["windows"]["resumed_windows"] == 1
    set_number(page, "t2v-steps", 2)
    set_number(page, "t2v-frames", 9)


def test_a_frame_of_a_video_starts_i2v_and_a_trimmed_clip_feeds_v2v(page, studio, media):
    """I2V: "Take a frame from a video" shows the frame at the time chosen and "Use this frame" makes it
    the source image, which the run starts from. V2V: "Trim" refuses an end past the clip's, beside
    itself, then keeps 0.25-0.75 s of it and says so; the run follows the trimmed length."""
    import re

    import av
    import numpy as np
    from PIL import Image

    outputs = studio[1]

    def generated(mode: str) -> dict:
        """Generate, and the recipe of the result the page says it saved (what is checked here is what
        went in; playing results is every other test's)."""
        page.click(f"#{mode}-generate")
        expect(page.locator(f"#{mode}-status")).to_contain_text("Saved")
        saved = re.search(r"Saved (\S+)\.mp4", page.locator(f"#{mode}-status").inner_text()).group(1)
        return json.loads((outputs / f"{saved}.json").read_text())

    with av.open(str(media["clip"])) as container:  # the clip's own frames, read apart from the studio
        frames = [frame.to_ndarray(format="rgb24").astype(int) for frame in container.decode(video=0)]
    assert len(frames) == 16  # 1 s at 16 fps: the frame at 0.5 s is the ninth

    open_mode(page, "i2v")
    page.locator("#i2v-image-from-video button.label-wrap").first.click()
    upload(page, "i2v-image-frame-video", media["clip"], "video")
    frame = page.locator("#i2v-image-frame img")
    frame.wait_for(state="visible")  # the first frame, once the video is in
    first = frame.get_attribute("src")
    set_number(page, "i2v-image-frame-time", 0.5)
    page.wait_for_function("(src) => document.querySelector('#i2v-image-frame img')?.getAttribute('src') !== src",
                           arg=first)
    page.click("#i2v-image-use-frame")
    page.locator("#i2v-image img").wait_for(state="visible")
    expect(page.locator("#i2v-image-frame-note")).to_contain_text("Put the frame at 0.5 s into")
    screenshot(page, "i2v-frame-from-a-video")
    page.fill("#i2v-prompt textarea", "the frame comes alive")
    recipe = generated("i2v")
    started = np.asarray(Image.open(outputs / recipe["request"]["image"]).convert("RGB")).astype(int)
    differences = [np.abs(started - pixels).mean() for pixels in frames]
    assert int(np.argmin(differences)) == 8 and min(differences) < 1, differences

    open_mode(page, "v2v")
    upload(page, "v2v-video", media["clip"], "video")
    page.locator("#v2v-video-trim-box button.label-wrap").first.click()
    note = page.locator("#v2v-video-trim-note")
    expect(note).to_contain_text("This video: 1 s (16 frames at 16 fps)")
    expect(page.locator("#v2v-video-trim-end input")).to_have_value("1")
    set_number(page, "v2v-video-trim-end", 3)  # past the clip's end: said beside the tool
    page.click("#v2v-video-trim")
    expect(note).to_contain_text("clip.mp4 is 1.00 s long; choose an end of at most 1.00 s")
    set_number(page, "v2v-video-trim-start", 0.25)
    set_number(page, "v2v-video-trim-end", 0.75)
    page.click("#v2v-video-trim")
    expect(note).to_contain_text("Trimmed to 0.5 s (8 frames at 16 fps).")
    page.wait_for_function("() => { const v = document.querySelector('#v2v-video video');"
                           " return v && v.readyState >= 1 && Math.abs(v.duration - 0.5) < 0.05; }")
    expect(page.locator("#v2v-video-trim-end input")).to_have_value("0.5")  # the boxes span the video now in
    screenshot(page, "v2v-trimmed")
    page.fill("#v2v-prompt textarea", "the trimmed part, as a sketch")
    assert generated("v2v")["output"]["frames"] == 5  # 8 frames, as 4k+1 (the clip: 13)
    assert "Traceback" not in studio[2].read_text()


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
                const title = document.querySelector('#studio-name h3').getBoundingClientRect();
                const input = document.querySelector('#generation input'), box = input.getBoundingClientRect();
                const caret = document.querySelector('#generation .icon-wrap').getBoundingClientRect();
                const textRight = box.right - parseFloat(getComputedStyle(input).paddingRight);
                return {title: title.left - toggle.right, caret: caret.left - textRight}; }""")
            assert gaps["title"] >= 0 and gaps["caret"] >= 0, gaps
    finally:
        page.close()


@pytest.mark.parametrize("width, height", [(1440, 900), (390, 844)])
def test_generate_is_on_the_first_screen_of_every_mode(studio, browser, width, height):
    """Without scrolling, every mode's Generate is on the screen, on a laptop and on a phone; the
    T2V page shows the prompt, the LoRA picker and the variations beside it on a laptop."""
    page = browser.new_page()
    page.set_viewport_size({"width": width, "height": height})
    page.set_default_timeout(WAIT_MS)

    def on_screen(selector: str) -> dict:
        return page.evaluate("""(sel) => { const r = document.querySelector(sel).getBoundingClientRect();
            return {top: r.top, bottom: r.bottom, height: r.height, inside: r.height > 0 && r.top >= 0
                    && r.bottom <= window.innerHeight}; }""", selector)

    try:
        page.goto(studio[0])
        page.wait_for_function("() => document.querySelector('#t2v-cost')?.innerText.includes('frames')")
        for mode in ("t2v", "i2v", "ti2v", "flf2v", "v2v", "vace", "s2v", "animate"):
            if mode != "t2v":
                page.evaluate("(id) => { delete document.body.dataset.opened; document.getElementById(id).click(); }",
                              f"nav-{mode}")
                page.wait_for_function("(key) => document.body.dataset.opened === key", arg=mode)
            page.wait_for_selector(f"#panel-{mode}", state="visible")
            page.evaluate("() => window.scrollTo(0, 0)")
            assert page.evaluate("() => window.scrollY") == 0
            found = on_screen(f"#{mode}-generate")
            assert found["inside"], (mode, width, found)
            if width < 768:  # the sidebar went once the page was picked: nothing lies over Generate
                covered = page.evaluate("""(sel) => { const r = document.querySelector(sel).getBoundingClientRect();
                    const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
                    return !(hit && hit.closest(sel)); }""", f"#{mode}-generate")
                assert not covered, mode
            screenshot(page, f"first-screen-{width}-{mode}")
        if width >= 1024:
            page.evaluate("(id) => { delete document.body.dataset.opened; document.getElementById(id).click(); }",
                          "nav-t2v")
            page.wait_for_function("(key) => document.body.dataset.opened === key", arg="t2v")
            page.evaluate("() => window.scrollTo(0, 0)")
            for selector in ("#t2v-prompt textarea", "#t2v-loras", "#t2v-variations", "#t2v-generate"):
                assert on_screen(selector)["inside"], (selector, on_screen(selector))
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
    assert ids.index("nav-t2v") < ids.index("t2v-prompt") < ids.index("t2v-loras") < ids.index("t2v-generate")
    assert "t2v-upscale" not in ids  # the result's toolbar: not there before a result


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


def test_sidebar_follows_the_generation(page, studio):
    def choose_generation(label):
        page.click("#generation input")
        page.get_by_role("option", name=label).first.click()

    assert page.locator("#nav-t2v").is_enabled() and page.locator("#nav-s2v").is_enabled()  # Tiny has every mode
    page.fill("#t2v-prompt textarea", "a chip to turn off")  # a result, so its "Send to" chips are there
    generate_and_play(page, studio[1], "t2v")
    # every sidebar and header icon is an SVG picture that loaded: nothing needs an emoji font
    buttons = "#studio-sidebar button[id^='nav-'], #header-icons button"
    page.wait_for_function("(sel) => [...document.querySelectorAll(sel)].every(b => { const i = b.querySelector('img');"
                           " return i && i.complete && i.naturalWidth > 0 && i.src.includes('.svg'); })", arg=buttons)
    labels = page.evaluate("(sel) => [...document.querySelectorAll(sel)].map(b => b.innerText.trim())", buttons)
    assert len(labels) == 14 and all(label and all(ord(ch) < 0x2190 or ch == "→" for ch in label)
                                     for label in labels), labels
    choose_generation("Wan 2.2")
    page.wait_for_function("() => document.querySelector('#nav-v2v').disabled")
    assert page.locator("#nav-vace").is_enabled() and page.locator("#nav-animate").is_enabled()  # VACE-Fun A14B
    assert "Wan 2.2 has no V2V checkpoint" in page.locator("#nav-v2v").get_attribute("title")
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
    with zipfile.ZipFile(exported_zip(page)) as archive:
        assert f"{exported['id']}.mp4" in archive.namelist() and f"{exported['id']}.json" in archive.namelist()

    page.click("#gallery-delete")
    page.wait_for_function("() => document.querySelector('#gallery-info').innerText.includes('Select a result')")
    assert not (outputs / f"{exported['id']}.mp4").exists() and not (outputs / f"{exported['id']}.json").exists()
    expect(page.locator("#gallery-grid")).not_to_contain_text("export me")
    # a delete can be undone: the result comes back in its place, with its file, and plays
    expect(page.locator("#gallery-deleted-note")).to_contain_text("Deleted “export me” · T2V")
    page.click("#gallery-undo")
    expect(thumbnails.nth(1)).to_contain_text("export me")
    expect(page.locator("#gallery-deleted")).to_be_hidden()
    assert (outputs / f"{exported['id']}.mp4").is_file() and (outputs / f"{exported['id']}.json").is_file()
    expect(page.locator("#gallery-info")).to_contain_text("export me")
    page.wait_for_function("""(id) => { const v = document.querySelector('#gallery-player video');
        return v && v.currentSrc.includes(id) && v.readyState >= 1 && v.duration > 0; }""", arg=exported["id"])


def test_gallery_tells_a_finished_result_from_its_source(page, studio):
    """An upscale keeps its source's request (64x64): the details say what its file holds and what was
    done to which result; compared with its source, the size and the finishing differ (never "the same
    recipe"), internal fields are not shown, and on a phone the table's words stay whole."""
    outputs = studio[1]
    page.fill("#t2v-prompt textarea", "a kite to enlarge")
    set_number(page, "t2v-frames", 9)
    page.wait_for_function("() => document.querySelector('#t2v-cost').innerText.includes('9 frames')")
    source = generate_and_play(page, outputs, "t2v")
    set_number(page, "t2v-extend-seconds", 1)
    page.wait_for_function("() => document.querySelector('#t2v-extend-seconds input').value === '1'")
    page.click("#t2v-extend")
    expect(page.locator("#t2v-status")).to_contain_text("25 frames, 64x64")  # 9 + 16 frames at 16 fps
    extended = newest_recipe(outputs, "t2v")
    page.click("#t2v-upscale")
    expect(page.locator("#t2v-status")).to_contain_text("25 frames, 128x128")
    upscaled = newest_recipe(outputs, "t2v")
    assert upscaled["parent"] == extended["id"] and extended["parent"] == source["id"]
    assert (upscaled["request"]["width"], upscaled["request"]["frames"]) == (64, 16)  # what made the extension

    open_mode(page, "gallery")
    tiles = page.locator("#gallery-grid button.thumbnail-item")
    expect(tiles.first).to_contain_text("upscaled ×2")
    tiles.first.click()
    info = page.locator("#gallery-info")
    expect(info).to_contain_text("output: 128x128 · 25 frames · 16 fps · 1.56 s")
    expect(info).to_contain_text("upscaled ×2 with tiny-upscaler from “a kite to enlarge” · T2V · extended")
    assert "64x64" not in info.inner_text() and extended["id"] not in info.inner_text()  # its parent by name

    def select(tile: int, recipe: dict) -> None:
        tiles.nth(tile).click()
        expect(info).to_contain_text(recipe["output"]["file"])

    def compare(a: int, b: int) -> list[list[str]]:  # tiles: 0 the upscale, 1 the extension, 2 the first
        recipes = (upscaled, extended, source)
        select(a, recipes[a])
        page.click("#gallery-pick")
        expect(page.locator("#gallery-differences")).to_contain_text("Picked")
        select(b, recipes[b])
        page.click("#gallery-compare")
        expect(page.locator("#gallery-differences")).to_contain_text("A “a kite to enlarge”")
        return page.evaluate("""() => [...document.querySelectorAll('#gallery-differences tbody tr')]
            .map(r => [...r.cells].map(c => c.innerText.trim()))""")

    # the upscale and its source (the extension): the same request, another size, and what was done
    rows = compare(1, 0)
    assert rows[1:] == [["size", "64x64", "128x128"]], rows
    assert rows[0][0] == "made" and rows[0][1].startswith("extended by 16 frames from “a kite to enlarge”"), rows
    assert rows[0][2] == "upscaled ×2 with tiny-upscaler from A", rows
    # the first result and the upscale of its extension: no bookkeeping rows, no "None"
    rows = compare(2, 0)
    labels = [row[0] for row in rows]
    assert labels[:5] == ["made", "size", "frames", "duration", "seed"], rows
    shown = page.locator("#gallery-differences").inner_text()
    assert not any(word in shown for word in ("extra", "continue", "None", "parent", "the same recipe")), shown
    assert source["id"] not in shown and extended["id"] not in shown
    # on a phone every word of the table is on one line (a long name may wrap, a word never breaks)
    page.set_viewport_size({"width": 390, "height": 900})
    page.wait_for_function("() => document.documentElement.clientWidth === 390")
    page.wait_for_function(  # the sidebar has slid aside: the page is laid out at its new width
        "() => document.getAnimations().every(a => !(a instanceof CSSTransition) || a.playState !== 'running')")
    broken = page.evaluate("""() => {
        const broken = [];
        for (const cell of document.querySelectorAll('#gallery-differences td, #gallery-differences th')) {
            const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
            for (let node = walker.nextNode(); node; node = walker.nextNode())
                for (const word of node.textContent.matchAll(/[\\p{L}\\p{N}]+/gu)) {
                    const range = document.createRange();
                    range.setStart(node, word.index);
                    range.setEnd(node, word.index + word[0].length);
                    const lines = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
                    if (lines.size > 1) broken.push(word[0]);
                }
        }
        return broken; }""")
    screenshot(page, "gallery-compare-phone")
    assert broken == [], broken
    wide = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert wide[0] <= wide[1], wide


def test_gallery_searches_filters_stars_and_acts_on_several_results(page, studio, tmp_path):
    """Search by prompt words, filter by mode and by star, then select two results at once: Delete
    selected moves both to the trash and one Undo brings both back; Export selected zips both."""
    import zipfile

    import numpy as np

    from wan_studio.runtime.library import OutputLibrary, new_result_id

    outputs = studio[1]
    open_advanced(page, "t2v")
    set_number(page, "t2v-steps", 2)
    page.fill("#t2v-prompt textarea", "quokka on a red bike")
    bike = generate_and_play(page, outputs, "t2v")
    page.fill("#t2v-prompt textarea", "quokka under blue rain")
    rain = generate_and_play(page, outputs, "t2v")
    # two I2V results written into the output folder (as the CLI does), one with an input copy
    library = OutputLibrary(outputs)
    frames = np.random.default_rng(0).integers(0, 255, (9, 64, 64, 3), dtype=np.uint8)
    snow_id = new_result_id("i2v")
    copied = library.copy_inputs(snow_id, {"image": [str(make_image(tmp_path / "snow.png", (64, 64)))]})
    snow = library.save_video(frames, 16, {"mode": "i2v", "inputs": copied, "request": {
        "mode": "i2v", "prompt": "Quokka in RED snow", "image": copied["image"][0], "steps": 2}}, result_id=snow_id)
    library.save_video(frames, 16, {"mode": "i2v", "request": {"mode": "i2v", "prompt": "a heron at dawn"}})

    open_mode(page, "gallery")
    tiles = page.locator("#gallery-grid button.thumbnail-item")
    expect(tiles.first).to_contain_text("a heron at dawn")  # the newest: the grid has refreshed
    # the grid is as tall as its tiles: nothing scrolls inside it (the page does)
    inner = page.evaluate("""() => { const w = document.querySelector('#gallery-grid .grid-wrap');
        return [w.scrollHeight, w.clientHeight, getComputedStyle(w).overflowY, getComputedStyle(w).maxHeight]; }""")
    assert inner[0] <= inner[1] + 2 and inner[2:] == ["visible", "none"], inner

    def shown() -> list[str]:
        return [text.strip() for text in tiles.all_inner_texts()]

    search = page.locator("#gallery-search input, #gallery-search textarea")
    search.fill("quokka red")  # every word, in any case
    expect(tiles).to_have_count(2)
    assert shown() == ["[I2V] Quokka in RED snow", "[T2V] quokka on a red bike"], shown()
    expect(page.locator("#gallery-page")).to_contain_text("2 of ")
    page.click("#gallery-mode input")
    page.get_by_role("option", name="I2V", exact=True).click()
    expect(tiles).to_have_count(1)
    assert shown() == ["[I2V] Quokka in RED snow"]
    search.fill("heron")
    expect(tiles.first).to_contain_text("[I2V] a heron at dawn")
    expect(tiles).to_have_count(1)
    page.click("#gallery-mode input")
    page.get_by_role("option", name="Every mode", exact=True).click()
    search.fill("quokka")
    expect(tiles).to_have_count(3)

    # a star on the selected result: shown in its caption, kept in its recipe, and filtered by
    tiles.filter(has_text="quokka under blue rain").click()
    expect(page.locator("#gallery-info")).to_contain_text("quokka under blue rain")
    page.click("#gallery-star")
    expect(tiles.filter(has_text="quokka under blue rain")).to_contain_text("★ [T2V] quokka under blue rain")
    expect(page.locator("#gallery-star")).to_have_text("★ Unstar")
    assert json.loads((outputs / f"{rain['id']}.json").read_text())["starred"] is True
    page.locator("#gallery-starred-only input").check()
    expect(tiles).to_have_count(1)
    assert shown() == ["★ [T2V] quokka under blue rain"]
    page.locator("#gallery-starred-only input").uncheck()
    expect(tiles).to_have_count(3)

    # select several: two clicks, "2 selected", then Delete selected and one Undo
    page.click("#gallery-choose")
    expect(page.locator("#gallery-chosen-note")).to_contain_text("0 selected")
    tiles.filter(has_text="Quokka in RED snow").click()
    expect(page.locator("#gallery-chosen-note")).to_contain_text("1 selected")
    tiles.filter(has_text="quokka on a red bike").click()
    expect(page.locator("#gallery-chosen-note")).to_contain_text("2 selected")
    assert shown() == ["✓ [I2V] Quokka in RED snow", "★ [T2V] quokka under blue rain",
                       "✓ [T2V] quokka on a red bike"], shown()
    page.click("#gallery-delete-chosen")
    expect(tiles).to_have_count(1)
    expect(page.locator("#gallery-deleted-note")).to_contain_text("Deleted 2 results")
    expect(page.locator("#gallery-chosen-note")).to_contain_text("0 selected")
    for gone in (snow.id, bike["id"]):
        assert not (outputs / f"{gone}.mp4").exists() and not (outputs / f"{gone}.json").exists()
    page.click("#gallery-undo")
    expect(tiles).to_have_count(3)
    expect(page.locator("#gallery-deleted")).to_be_hidden()
    for back in (snow.id, bike["id"]):
        assert (outputs / f"{back}.mp4").is_file() and (outputs / f"{back}.json").is_file()
    assert (outputs / f"{snow.id}.inputs" / "image.png").is_file()

    # Export selected: one zip holding each one's video, recipe, thumbnail and inputs
    tiles.filter(has_text="Quokka in RED snow").click()
    expect(page.locator("#gallery-chosen-note")).to_contain_text("1 selected")
    tiles.filter(has_text="quokka on a red bike").click()
    expect(page.locator("#gallery-chosen-note")).to_contain_text("2 selected")
    page.click("#gallery-export-chosen")
    with zipfile.ZipFile(exported_zip(page)) as archive:
        names = set(archive.namelist())
        assert json.loads(archive.read(f"{snow.id}.json"))["request"]["prompt"] == "Quokka in RED snow"
    assert names == {f"{rid}{ext}" for rid in (snow.id, bike["id"]) for ext in (".mp4", ".json", ".jpg")} | {
        f"{snow.id}.inputs/image.png"}, names
    screenshot(page, "gallery-select-several")
    page.click("#gallery-choose")  # done selecting: the marks go
    expect(page.locator("#gallery-chosen-bar")).to_be_hidden()
    expect(tiles.first).to_have_text("[I2V] Quokka in RED snow")


def test_queue_page_takes_a_batch_and_acts_on_jobs(page, studio, tmp_path):
    """A batch file queues its jobs; once run they are folded under "Finished (N)", newest first, each
    with how it ended; Remove on a row removes that job; a bad batch queues nothing and says which row."""
    batch = tmp_path / "batch.json"
    batch.write_text(json.dumps([{"mode": "t2v", "model": "tiny-t2v", "prompt": f"batch shot {n}", "steps": 2,
                                  "seed": n} for n in (1, 2)]))
    open_mode(page, "queue")
    assert_upload_box_fits(page, "queue-batch")
    page.locator("#queue-batch input[type=file]").set_input_files(str(batch))
    expect(page.locator("#queue-batch-status")).to_contain_text("Queued 2 job")
    # the worker runs them in turn; each then leaves the cards for the list of finished jobs, folded
    expect(page.locator("#queue-finished .queue-card").first).to_be_hidden()
    page.locator("#queue-finished button.label-wrap").click()
    ended = page.locator("#queue-finished .queue-card", has_text="batch shot")
    expect(ended).to_have_count(2)
    expect(page.locator("#queue-active")).not_to_contain_text("batch shot")
    expect(page.locator("#stats-text")).to_contain_text("CPU")
    expect(ended.nth(0)).to_contain_text("batch shot 2")  # newest first: it ran second
    for row in (ended.nth(0), ended.nth(1)):
        expect(row).to_contain_text("Done")
        expect(row).to_contain_text("Saved as")
        expect(row.locator(".queue-thumb img")).to_have_attribute("alt", "Thumbnail of the result")
    shown = page.locator("#queue-finished .queue-card").count()
    expect(page.locator("#queue-finished button.label-wrap")).to_contain_text(f"Finished ({shown})")
    ended.filter(has_text="batch shot 1").get_by_role("button", name="Remove").click()
    expect(ended).to_have_count(1)
    expect(page.locator("#queue-finished button.label-wrap")).to_contain_text(f"Finished ({shown - 1})")
    expect(page.locator("#queue-action-status")).to_contain_text("Removed “batch shot 1”")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"mode": "t2v", "model": "tiny-t2v", "prompt": "ok"},
                               {"mode": "t2v", "model": "tiny-t2v", "prompt": "", "frames": 14}]))
    page.locator("#queue-batch input[type=file]").set_input_files(str(bad))
    expect(page.locator("#queue-batch-status")).to_contain_text("Nothing was queued")
    assert "row 2" in page.locator("#queue-batch-status").inner_text()


def test_queue_cards_act_on_their_own_jobs_and_the_tray_counts_them_on_every_page(page, studio, tmp_path):
    """One job held running and three waiting: each is a card with its whole prompt, mode and checkpoint;
    the arrows reorder the waiting ones, Cancel and Stop act on their own card's job, Resume and Retry
    queue a finished one again; the header's tray counts them from another page and opens the Queue page."""
    told = ("a lighthouse keeper climbs the spiral stair at dusk, counts the steps aloud, trims the wick, "
            "and lights the great lamp as the fishing boats turn for home")  # longer than any cut
    waiting = ["first in line", told, "third in line"]
    batch = tmp_path / "held.json"
    batch.write_text(json.dumps([{"mode": "t2v", "model": "tiny-t2v", "prompt": LONG_VIDEO, "frames": 41, "steps": 8,
                                  "seed": 1}]
                                + [{"mode": "t2v", "model": "tiny-t2v", "prompt": prompt, "steps": 2, "seed": 2}
                                   for prompt in waiting]))
    open_mode(page, "queue")
    page.locator("#queue-batch input[type=file]").set_input_files(str(batch))
    expect(page.locator("#queue-batch-status")).to_contain_text("Queued 4 job")

    def card(words):
        return page.locator("#queue-active .queue-card", has=page.locator(".queue-prompt", has_text=words))

    def prompts():
        return page.locator("#queue-active .queue-prompt")

    # the app holds the long video in its second window, so the other three wait behind it
    running = card(LONG_VIDEO)
    expect(running.locator(".queue-thumb img")).to_have_attribute("alt", "Live preview of the job")
    expect(running.locator(".queue-meta")).to_contain_text("Running")
    expect(running.locator(".queue-time")).to_contain_text("clip 2/3")
    expect(running.locator("progress")).to_be_visible()
    expect(prompts()).to_have_text([LONG_VIDEO, *waiting])  # each prompt whole, in the order they run
    expect(card(told).locator(".queue-meta")).to_have_text("Queued: 2nd in line · T2V · Tiny T2V (random weights)")
    expect(card("first in line").locator(".queue-meta")).to_contain_text("Queued: next in line")
    expect(card("first in line").get_by_role("button", name="↑ Up")).to_be_disabled()
    expect(card("third in line").get_by_role("button", name="↓ Down")).to_be_disabled()
    screenshot(page, "page-queue-cards")

    card("third in line").get_by_role("button", name="↑ Up").click()
    expect(prompts()).to_have_text([LONG_VIDEO, "first in line", "third in line", told])
    card("third in line").get_by_role("button", name="↑ Up").click()
    expect(prompts()).to_have_text([LONG_VIDEO, "third in line", "first in line", told])
    card(told).get_by_role("button", name="↑ Up").click()
    expect(prompts()).to_have_text([LONG_VIDEO, "third in line", told, "first in line"])

    # the tray, from another page: the counts and the running job's bar; a click opens the Queue page
    open_mode(page, "t2v")
    tray = page.locator("#queue-tray button")
    counts = tray.locator("span").first  # (the words after it, for a screen reader, are hidden)
    expect(counts).to_have_text("1 running · 3 queued")
    expect(tray.locator("progress")).to_be_visible()
    assert tray.bounding_box()["height"] <= 34
    page.evaluate("() => { delete document.body.dataset.opened; }")
    tray.click()
    page.wait_for_function("() => document.body.dataset.opened === 'queue'")
    expect(page.locator("#panel-queue")).to_be_visible()
    expect(page.locator("#panel-t2v")).to_be_hidden()

    # on a phone: the cards and the tray fit, nothing runs past the edge
    page.set_viewport_size({"width": 390, "height": 900})
    expect(counts).to_have_text("1 running · 3 queued")
    assert tray.bounding_box()["height"] <= 34 and tray.bounding_box()["x"] + tray.bounding_box()["width"] <= 390
    wide = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert wide[0] <= wide[1], wide
    screenshot(page, "page-queue-cards-phone")
    page.set_viewport_size({"width": 1400, "height": 1000})

    # Cancel and Stop act on their own card; the jobs they end are folded under "Finished"
    card("first in line").get_by_role("button", name="Cancel").click()
    expect(prompts()).to_have_text([LONG_VIDEO, "third in line", told])
    expect(counts).to_have_text("1 running · 2 queued")
    card(LONG_VIDEO).get_by_role("button", name="Stop").click()
    expect(page.locator("#queue-active .queue-card")).to_have_count(0)  # the other two ran, one after the other
    expect(page.locator("#queue-none")).to_be_visible()
    expect(counts).to_have_text("Queue idle")
    page.locator("#queue-finished button.label-wrap").click()
    ended = page.locator("#queue-finished .queue-prompt")
    expect(ended.first).to_be_visible()
    assert ended.all_inner_texts()[:4] == [told, "third in line", LONG_VIDEO, "first in line"]  # newest first
    rows = page.locator("#queue-finished .queue-card")
    expect(rows.nth(0).locator(".queue-meta")).to_contain_text("Done")
    expect(rows.nth(0).get_by_role("button")).to_have_text(["Remove"])  # a done job has nothing to run again
    expect(rows.nth(2).locator(".queue-meta")).to_contain_text("Stopped")
    expect(rows.nth(2)).to_contain_text("Stopped after window 1 of 3")
    expect(rows.nth(3).locator(".queue-meta")).to_contain_text("Cancelled")
    expect(rows.nth(3)).to_contain_text("Cancelled before it ran.")

    # Resume and Retry on a finished row queue that job again; each runs and comes back to the top
    rows.nth(2).get_by_role("button", name="Resume").click()
    expect(ended.first).to_have_text(LONG_VIDEO)
    expect(rows.nth(0).locator(".queue-meta")).to_contain_text("Done")
    rows.filter(has=page.locator(".queue-prompt", has_text="first in line")).get_by_role("button", name="Retry").click()
    expect(ended.first).to_have_text("first in line")
    expect(rows.nth(0).locator(".queue-meta")).to_contain_text("Done")
    expect(counts).to_have_text("Queue idle")
