"""Making videos in the browser, as a person would: every mode's Generate to a playable video,
quick Generates each on their own card, variations side by side, the inputs a mode makes from plain
videos, VACE's sub-modes, Send-to, a frame or a trim of a video as an input, the chime."""

from __future__ import annotations

import json

from playwright.sync_api import expect

from tests.browser.walk import (
    LONG_RUN,
    assert_upload_box_fits,
    generate_and_play,
    newest_recipe,
    open_advanced,
    open_mode,
    played_duration,
    screenshot,
    set_number,
    toolbar_states,
    upload,
    watch_toolbar,
)


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
    """Two variations from one Generate (the next seed after the chosen one), side by side in a grid;
    one picked there, then from the result shown: Reuse this seed, Vary (same request, a new seed), and
    Upscale to 1080p."""
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
    # both side by side, each playable; a click on the first puts it in the player, for the toolbar to act on
    tiles = page.locator("#t2v-variants .thumbnail-item")
    expect(tiles).to_have_count(2)
    expect(page.locator("#t2v-variants .caption-label")).to_have_text(["seed 7", "seed 8"])
    expect(tiles.locator("video")).to_have_count(2)
    shown = page.evaluate("() => document.querySelector('#t2v-result video').currentSrc")
    first = next(recipe for recipe in made if recipe["request"]["seed"] == 7)
    tiles.first.click()
    expect(page.locator("#t2v-status")).to_contain_text("seed 7.")
    played_duration(page, "t2v", shown)
    assert first["id"] in page.evaluate("() => document.querySelector('#t2v-result video').currentSrc")
    # Reuse this seed: the seed of the result shown, Random off
    set_number(page, "t2v-seed", 0)
    page.locator("#t2v-randomize input").check()
    page.click("#t2v-reuse-seed")
    expect(page.locator("#t2v-randomize input")).not_to_be_checked()
    expect(page.locator("#t2v-seed input")).to_have_value("7")  # the variation picked in the grid
    # Vary: the same request as the result shown, with a new seed
    before = set(outputs.glob("*-t2v-*.json"))
    page.click("#t2v-vary")
    page.wait_for_function("(b) => document.querySelector('#t2v-status').innerText.includes('Saved') &&"
                           " !document.querySelector('#t2v-status').innerText.includes(b)",
                           arg=first["id"])
    varied = [json.loads(path.read_text()) for path in set(outputs.glob("*-t2v-*.json")) - before]
    assert len(varied) == 1 and varied[0]["request"]["prompt"] == "two paper cranes"
    assert varied[0]["request"]["seed"] not in (7, 8)
    expect(page.locator("#t2v-variants .thumbnail-item")).to_have_count(2)  # Vary is one more, not a new batch
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

