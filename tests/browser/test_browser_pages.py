"""The page itself, in the browser: bad input and Stop leave it working, a stopped long video
resumes, every page fits a phone, a laptop and a wide screen with Generate on the first screen, no
serious accessibility violation in either theme, the keyboard's order, the theme toggle."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.walk import (
    LONG_RUN,
    LONG_VIDEO,
    WAIT_MS,
    generate_and_play,
    newest_recipe,
    open_advanced,
    open_mode,
    screenshot,
    set_number,
    watch_progress,
)
from tests.conftest import ROOT


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

