"""The studio shell: left sidebar with one entry per mode plus Gallery, Queue
& Stats and Settings; a header with the Generation dropdown and the Preset radio; the backend
banner; one section per entry, of which one is visible. Layout first, wiring after.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr

from ui.availability import (
    api_only_note,
    generation_choices,
    icon,
    mode_label,
    mode_words,
    sidebar_modes,
    sidebar_status,
)
from ui.gallery_page import GalleryPage, build_gallery, wire_gallery
from ui.page_assets import (
    CHIME_TOGGLE_JS,
    CSS,
    DISMISS_NOTICES_JS,
    PAGE_JS,
    REASONS_JS,
    SHORTCUTS_JS,
    THEME_TOGGLE_JS,
)
from ui.panel_specs import frames_label, sends_last_frame, size_choices, spec
from ui.panels import Panel, build_panel, model_choices, panel_defaults, preset_values, wire_panel
from ui.queue_page import QueuePage, build_queue_page, wire_queue_page
from ui.queue_tray import build_tray, wire_tray
from ui.runtime import banner_text, get_studio, refused, theme
from ui.settings_page import SettingsPage, build_settings_page, wire_settings
from wan_studio import catalog
from wan_studio.errors import StudioError
from wan_studio.settings import Settings

# the pages after the modes' (each mode with a page of its own has its entry first, in the sidebar's order)
PAGE_LABELS = {"gallery": "Gallery", "queue": "Queue & Stats", "settings": "Settings"}



@dataclass
class Shell:
    generation: gr.Dropdown
    preset: gr.Radio
    nav: dict
    off_note: gr.Markdown
    reasons: gr.JSON
    current: gr.State
    sections: dict
    panels: dict = field(default_factory=dict)
    gallery: GalleryPage | None = None
    queue: QueuePage | None = None
    settings_page: SettingsPage | None = None
    history: gr.Button | None = None
    settings_link: gr.Button | None = None
    queue_warning: gr.Markdown | None = None


def reasons_of(generation: str) -> dict[str, str]:
    return {mode: status.reason for mode, status in sidebar_status(generation).items()}


def off_text(generation: str) -> str:
    off = [f"- **{mode_label(m)}**: {s.reason}" for m, s in sidebar_status(generation).items()
           if not s.enabled]
    return "Off here:\n" + "\n".join(off) if off else ""


# one line for both choices: a hint naming only Fast read wrong while Quality was chosen
PRESET_HINT = "Quality: each checkpoint's own steps · Fast: a Lightning LoRA, 4 steps"


def build_layout(settings: Settings) -> Shell:
    from wan_studio.catalog.defaults import default_generation

    generation = default_generation(settings)
    status = sidebar_status(generation)
    modes = sidebar_modes()
    first = next((m for m in modes if status[m].enabled), modes[0])
    # one slim bar: the name, what runs (generation, preset) and three icon buttons; the pages are in the sidebar
    with gr.Row(elem_id="studio-header", equal_height=True):
        gr.Markdown("### Wan Studio", elem_id="studio-name")
        generation_box = gr.Dropdown(generation_choices(), value=generation, label="Generation",
                                     elem_id="generation", scale=2, min_width=150)
        preset = gr.Radio([("Fast", "fast"), ("Quality", "quality")], value="quality", label="Preset",
                          info=PRESET_HINT, elem_id="preset", scale=2, min_width=150)
        wire_tray(build_tray(), settings)  # "1 running · 2 queued" on every page; a click opens the Queue page
        with gr.Row(elem_id="header-icons"):
            # the words stay for screen readers and tooltips; the page shows the icon
            keys = gr.Button("Keyboard shortcuts", icon=icon("keyboard"), size="sm", elem_id="header-keys",
                             elem_classes="icon-button", scale=0, min_width=40)
            theme_toggle = gr.Button("Light / dark", icon=icon("theme"), size="sm", elem_id="header-theme",
                                     elem_classes="icon-button", scale=0, min_width=40)
            theme_toggle.click(None, None, None, js=THEME_TOGGLE_JS)
            chime = gr.Button("Chime: off", icon=icon("chime"), size="sm", elem_id="header-chime",
                              elem_classes="icon-button", scale=0, min_width=40)
            chime.click(None, None, None, js=CHIME_TOGGLE_JS)
    keys.click(None, None, None, js=SHORTCUTS_JS)
    # notices: read once, then dismissed for good in this browser (until their words change)
    with gr.Row(elem_id="notices", equal_height=True):
        with gr.Column(scale=1, min_width=0):
            gr.Markdown(api_only_note(), elem_id="api-only-note")
            gr.Markdown(banner_text(), elem_id="backend-banner")
        dismiss = gr.Button("Dismiss", size="sm", scale=0, min_width=80, elem_id="notices-dismiss")
    dismiss.click(None, None, None, js=DISMISS_NOTICES_JS)
    history = settings_link = None
    queue_warning = gr.Markdown(visible=False, elem_id="queue-warning")
    nav = {}
    with gr.Sidebar(position="left", open=True, width=240, elem_id="studio-sidebar"):
        gr.Markdown("**Modes**")
        for mode in modes:
            nav[mode] = gr.Button(f"{mode_words(mode)}\n{mode_label(mode)}", icon=icon(mode),
                                  variant="primary" if mode == first else "secondary",
                                  size="md", interactive=status[mode].enabled, elem_id=f"nav-{mode}")
        gr.Markdown("---")
        for key, label in PAGE_LABELS.items():
            nav[key] = gr.Button(label, icon=icon(key), variant="secondary", size="md", elem_id=f"nav-{key}")
        off_note = gr.Markdown(off_text(generation), elem_id="nav-off-note")
        reasons = gr.JSON(reasons_of(generation), visible=False)
    current = gr.State(first)
    shell = Shell(generation_box, preset, nav, off_note, reasons, current, {}, history=history,
                   settings_link=settings_link, queue_warning=queue_warning)
    for mode in modes:
        shell.panels[mode] = build_panel(mode, generation, visible=mode == first)
        shell.sections[mode] = shell.panels[mode].column
    shell.gallery = build_gallery(visible=False)
    shell.queue = build_queue_page(visible=False)
    shell.settings_page = build_settings_page(settings, visible=False)
    shell.sections.update(gallery=shell.gallery.column, queue=shell.queue.column,
                          settings=shell.settings_page.column)
    return shell


def add_examples(shell: Shell, settings: Settings) -> None:
    from ui.examples import example_media, examples_for

    files = example_media(settings.output_dir / ".ui" / "examples")
    for mode, panel in shell.panels.items():
        names, rows = examples_for(mode, files)
        components = [panel.prompt if n == "prompt" else panel.inputs[n] for n in names]
        with panel.column:
            gr.Examples(rows, components, cache_examples=False, label="Examples (fill the inputs; nothing runs)",
                        elem_id=f"{mode}-examples")


# -- navigation -------------------------------------------------------------------------------
def navigation_updates(shell: Shell, key: str, shown: str | None = None, status: dict | None = None) -> list:
    """Show one section; light its sidebar entry (and, with `status`, turn mode entries on or off);
    the stats timer only ticks on its page. With `shown`, the section on screen now, only it and `key`
    are updated: gradio's page script walks the whole tree for each section it is sent, hidden or not."""
    def changes(k):
        return shown is None or k in (key, shown)

    def entry(k):
        if status is not None and k in status:
            return gr.update(variant="primary" if k == key else "secondary", interactive=status[k].enabled)
        return gr.update(variant="primary" if k == key else "secondary") if changes(k) else gr.update()

    return ([gr.update(visible=k == key) if changes(k) else gr.update() for k in shell.sections]
            + [entry(k) for k in shell.sections] + [key, gr.Timer(active=key == "queue")])


def navigation_outputs(shell: Shell) -> list:
    return ([shell.sections[k] for k in shell.sections] + [shell.nav[k] for k in shell.sections]
            + [shell.current, shell.queue.timer])


def generation_updates(shell: Shell, generation: str, current: str, models: list, preset: str = "quality") -> list:
    """New generation: each panel keeps its checkpoint if the generation has it, else takes the first
    one with its defaults; the sidebar and the chips follow the mode rule."""
    status = sidebar_status(generation)
    updates = []
    for (mode, panel), model_id in zip(shell.panels.items(), models):
        choices = model_choices(mode, generation)
        if model_id in [c[1] for c in choices]:
            updates += [gr.update(choices=choices)] + [gr.update()] * 8
        else:
            record = catalog.default_model(mode, generation)
            defaults = panel_defaults(mode, record)
            if preset and preset != "quality":  # the new checkpoint takes the chosen preset's values
                defaults[4:8] = preset_values(mode, record, preset)[0]
            updates += [gr.update(choices=choices, value=record.id if record else None)] + defaults
    updates += [off_text(generation), reasons_of(generation)]
    for panel in shell.panels.values():
        updates += [gr.update(interactive=status[t].enabled) for t in panel.send]
    target = current if current not in status or status[current].enabled else \
        next((m for m in shell.panels if status[m].enabled), "gallery")
    return updates + navigation_updates(shell, target, current, status)


def generation_outputs(shell: Shell) -> list:
    outputs = []
    for panel in shell.panels.values():
        outputs += [panel.model, panel.title, panel.size, panel.frames, panel.duration, panel.steps, panel.guidance,
                    panel.guidance_2, panel.flow_shift]
    outputs += [shell.off_note, shell.reasons]
    for panel in shell.panels.values():
        outputs += list(panel.send.values())
    return outputs + navigation_outputs(shell)


# -- reload from the gallery ------------------------------------------------------------------
def fill_values(panel: Panel, data: dict) -> list:
    """Updates that put a saved request back into a panel: every parameter and input file."""
    record = catalog.get(data["model"])
    sizes = size_choices(record, spec(panel.mode))
    size = f"{data['width']}x{data['height']}"
    if size not in sizes:
        sizes.append(size)
    values = {
        "model": gr.update(choices=model_choices(panel.mode, record.generation), value=record.id),
        "prompt": data.get("prompt", ""),
        "size": gr.update(choices=sizes, value=size),
        "frames": gr.update(label=frames_label(panel.mode, record), value=data.get("frames")),
        "frames_auto": False,
        "steps": data.get("steps"),
        "guidance": data.get("guidance"),
        "guidance_2": gr.update(value=data.get("guidance_2") or data.get("guidance"), visible=record.is_moe),
        "flow_shift": data.get("flow_shift"),
        "seed": data.get("seed"),
        "randomize": False,
        "negative_prompt": data.get("negative_prompt") or "",
        "preset": data.get("preset") or "quality",
        "cache": data.get("cache") or "off",
        "parallel": data.get("parallel") or 1,
        "loras": gr.update(value=[lora_text(item) for item in data.get("loras") or []]),
        "variations": 1,
    }
    for name in panel.inputs:
        value = data.get(name)
        if name == "bbox":
            value = ", ".join(str(v) for v in value) if value else ""
        values[name] = value
    return [values[name] for name in panel.request_fields()]


def lora_text(item) -> str:
    """A recipe's LoRA as the picker (and the CLI's --lora) writes it: name[:strength[:expert]]."""
    if not isinstance(item, dict):
        return str(item)
    text = str(item.get("source", ""))
    weight, expert = item.get("weight", 1.0), item.get("expert") or "both"
    if weight != 1.0 or expert != "both":
        text += f":{weight:g}"
    return text + (f":{expert}" if expert != "both" else "")


def wire_preset(shell: Shell) -> None:
    """The header's Preset radio sets every panel's preset and its steps / guidance / flow shift;
    a mode without Lightning says why it runs Quality values."""
    private = dict(api_visibility="private")
    panels = list(shell.panels.values())
    outputs = []
    for panel in panels:
        outputs += [panel.preset, panel.steps, panel.guidance, panel.guidance_2, panel.flow_shift]

    def apply(preset, current, *models):
        updates, notes = [], []
        for panel, model_id in zip(panels, models):
            values, messages = preset_values(panel.mode, catalog.get(model_id) if model_id else None, preset)
            updates += [preset, *values]
            if panel.mode == current:
                notes = messages
        for note in notes:
            gr.Info(note)
        return updates

    shell.preset.change(apply, [shell.preset, shell.current, *[p.model for p in panels]], outputs, queue=False,
                        **private)


def wire(shell: Shell, settings: Settings) -> None:
    private = dict(api_visibility="private")
    nav_out = navigation_outputs(shell)
    for mode, panel in shell.panels.items():
        wire_panel(panel, settings)
    wire_preset(shell)
    wire_gallery(shell.gallery, settings)
    wire_settings(shell.settings_page, settings)
    wire_queue_page(shell.queue, settings)

    def go(key):
        return lambda shown: navigation_updates(shell, key, shown)

    openers = {"gallery": shell.gallery.opener, "settings": shell.settings_page.opener,
               "queue": shell.queue.opener}
    # a large library takes a moment to list: its grid shows a spinner (the other pages fill at once)
    spinners = {"gallery": shell.gallery.grid}
    for key in shell.sections:
        event = shell.nav[key].click(go(key), shell.current, nav_out, queue=False, **private)
        if key in openers:
            fn, inputs, outputs = openers[key]
            event = event.then(fn, inputs, outputs, queue=False, show_progress_on=spinners.get(key), **private)
        # the page is open and filled in (for a look from outside, as the tests take)
        event.then(None, None, None, js=f"() => {{ document.body.dataset.opened = '{key}'; }}", **private)
    for link, key in ((shell.gallery.go_generate, next(iter(shell.panels))),):
        event = link.click(go(key), shell.current, nav_out, queue=False, **private)
        if key in openers:
            fn, inputs, outputs = openers[key]
            event.then(fn, inputs, outputs, queue=False, **private)

    models = [panel.model for panel in shell.panels.values()]
    switched = shell.generation.input(lambda g, c, p, *m: generation_updates(shell, g, c, list(m), p),
                                      [shell.generation, shell.current, shell.preset, *models],
                                      generation_outputs(shell),
                                      queue=False, **private)
    switched.then(None, shell.reasons, None, js=REASONS_JS, **private)
    reestimate(shell, switched)

    # "Send to" chips: the video into V2V / VACE / Animate, its last frame into I2V / FLF2V (an image input)
    for source in shell.panels.values():
        for target, chip in source.send.items():
            target_input = shell.panels[target].inputs[spec(target).send_to]

            def send(video, shown, target=target, source=source.mode):
                if not video:
                    gr.Warning("Generate a video first; then send it on.", duration=4)
                    return [gr.update()] + [gr.update()] * len(nav_out)
                if sends_last_frame(target):
                    from wan_studio.runtime.gallery import save_last_frame

                    stem = Path(video).stem
                    try:
                        video = str(save_last_frame(video, settings.output_dir / ".ui" / "frames" / f"{stem}-last.png"))
                    except StudioError as exc:
                        gr.Warning(str(exc), duration=4)
                        return [gr.update()] + [gr.update()] * len(nav_out)
                return [video] + navigation_updates(shell, target, shown)

            chip.click(send, [source.video, shell.current], [target_input, *nav_out], queue=False, **private)

    # gallery "Reload into <mode>": every parameter and input file back into its panel
    all_fields = []
    for panel in shell.panels.values():
        all_fields += panel.request_components()

    def reload(result_id, shown):
        from wan_studio.runtime.gallery import reload_request

        try:
            data = reload_request(get_studio(settings).engine.library, result_id)
        except StudioError as exc:
            raise refused(str(exc))
        mode = data["mode"]
        if mode not in shell.panels:
            raise refused(f"{mode.upper()} results cannot be reloaded into a panel.")
        updates = []
        for panel in shell.panels.values():
            count = len(panel.request_fields())
            updates += fill_values(panel, data) if panel.mode == mode else [gr.update()] * count
        generation = catalog.get(data["model"]).generation
        return updates + [generation] + navigation_updates(shell, mode, shown)

    reloaded = shell.gallery.reload.click(reload, [shell.gallery.selected, shell.current],
                                          [*all_fields, shell.generation, *nav_out], queue=False, **private).success(
        lambda g, c, *m: generation_updates(shell, g, c, list(m)), [shell.generation, shell.current, *models],
        generation_outputs(shell), queue=False, **private)
    reloaded.then(None, shell.reasons, None, js=REASONS_JS, **private)
    reestimate(shell, reloaded)


def reestimate(shell: Shell, event) -> None:
    for panel in shell.panels.values():
        fn, inputs, output = panel.estimate
        event.then(fn, inputs, output, queue=False, show_progress="hidden", api_visibility="private")


def build_studio(settings: Settings) -> gr.Blocks:
    from ui.api import register_api
    from ui.drop import add_drop

    with gr.Blocks(title="Wan Studio") as demo:
        # queue() rebuilds the server app, which walks every component: here, before there are any,
        # it is cheap; after the layout it cost 0.05-0.08 s of start-up
        demo.queue(default_concurrency_limit=1)
        relax_queue_polling(demo)
        shell = build_layout(settings)
        add_examples(shell, settings)
        wire(shell, settings)
        add_drop(shell, settings, demo)  # a gallery result dragged onto an input
        demo.load(None, shell.reasons, None, js=REASONS_JS)
        fill_page_on_load(shell, settings, demo)
        register_api(settings, get_studio)
    track_progress_only_where_shown(demo)
    return demo


def track_progress_only_where_shown(demo: gr.Blocks) -> None:
    """gradio's page script keeps a loading status for every component an event that has run read or
    wrote, and on each later event re-sends all of them, finding each component by a walk of the whole tree (and, for
    a layout, of its subtree too): after a few mode switches (eleven sections each) and a gallery reload
    (205 outputs) every click walked the page hundreds of times. So progress is tracked only where a
    spinner means something: the queued events, which do work (a control video, an extraction, a
    finish), on their outputs that can show one (not layouts). An event that does not queue is an
    instant page update, and one with its progress hidden shows none: neither is tracked, unless its
    wiring names where its spinner shows (the gallery's grid)."""
    from gradio.blocks import BlockContext

    for fn in demo.fns.values():
        if fn.show_progress_on is not None:  # chosen where the event was wired
            continue
        if fn.show_progress == "hidden" or not fn.queue:
            fn.show_progress, fn.show_progress_on = "hidden", []
        else:
            fn.show_progress_on = [block for block in fn.outputs if not isinstance(block, BlockContext)]


def fill_page_on_load(shell: Shell, settings: Settings, demo: gr.Blocks) -> None:
    """The queue warning and every panel's cost line, recent prompts, saved settings and LoRAs, in
    one load event: the page's script pays, on every event, for each component an earlier event
    updated, so 33 small load events cost the browser seconds where one costs a fraction. It reads
    no inputs: a page that has just loaded holds the values the studio was built with, and the page
    script pays the same for each input an event has read as for each output (180 here)."""
    loaders = [(lambda: queue_warning_update(settings), [], [shell.queue_warning])]
    for panel in shell.panels.values():
        for fn, inputs, output in (panel.estimate, panel.recent_loader, panel.favourites_loader, panel.loras_loader):
            loaders.append((fn, list(inputs or []), [output]))

    def fill():
        return [fn(*[built_value(component) for component in inputs]) for fn, inputs, _ in loaders]

    demo.load(fill, None, [c for _, _, out in loaders for c in out], queue=False, show_progress="hidden",
              api_visibility="private")


def built_value(component):
    """A component's value as the page holds it before any event, as an event's handler receives it."""
    if isinstance(component, gr.State):
        return copy.deepcopy(component.value)
    return component.preprocess(component.value)


# gradio's queue looks for work every 1 ms while it has none (every 10 ms for progress), on Linux and
# macOS: an idle studio spent about 5% of a core on it. These are the pauses gradio itself uses on
# Windows; a queued event may start up to 50 ms later, which no job of seconds notices.
QUEUE_IDLE_POLL_S = 0.05
QUEUE_PROGRESS_POLL_S = 0.1


def relax_queue_polling(demo: gr.Blocks) -> None:
    queue = demo._queue  # gradio has no setting for these
    queue.sleep_when_free = QUEUE_IDLE_POLL_S
    queue.progress_update_sleep_when_free = QUEUE_PROGRESS_POLL_S


def queue_warning_update(settings: Settings):
    """A problem with the queue database (damaged, locked), shown above the panels."""
    warning = get_studio(settings).warning
    return gr.update(value=f"**Queue warning:** {warning}" if warning else "", visible=bool(warning))


def launch_options() -> dict:
    """Look and feel, passed to launch() (Gradio 6 takes theme and css there)."""
    return dict(theme=theme(), css=CSS, js=PAGE_JS)
