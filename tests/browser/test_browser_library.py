"""Living with what was made, in the browser: the Gallery (reload, compare, drag onto an input,
export, delete and undo, search, filters, stars), favourite settings, the sidebar's progress, and
the Queue page with its cards and the header's tray."""

from __future__ import annotations

import json

from playwright.sync_api import expect

from tests.browser.walk import (
    LONG_VIDEO,
    assert_upload_box_fits,
    exported_zip,
    generate_and_play,
    newest_recipe,
    open_advanced,
    open_mode,
    screenshot,
    set_number,
    upload,
)
from tests.media_fixtures import make_image


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
    expect(differences).to_contain_text("a blue kite")  # the comparison (the pick's line named only the red)
    text = differences.inner_text()
    assert "a red kite" in text
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

