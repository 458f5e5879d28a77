"""The studio shell: left sidebar with one entry per mode plus Gallery, Queue
& Stats and Settings; a header with the Generation dropdown and the Preset radio; the backend
banner; one section per entry, of which one is visible. Layout first, wiring after.
"""

from __future__ import annotations

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
from ui.panel_specs import frames_label, sends_last_frame, size_choices, spec
from ui.panels import Panel, build_panel, model_choices, panel_defaults, preset_values, wire_panel
from ui.queue_page import QueuePage, build_queue_page, wire_queue_page
from ui.queue_tray import build_tray, wire_tray
from ui.runtime import banner_text, get_studio, theme
from ui.settings_page import SettingsPage, build_settings_page, wire_settings
from wan_studio import catalog
from wan_studio.errors import StudioError
from wan_studio.settings import Settings

# the pages after the modes' (each mode with a page of its own has its entry first, in the sidebar's order)
PAGE_LABELS = {"gallery": "Gallery", "queue": "Queue & Stats", "settings": "Settings"}

CSS = """
#studio-sidebar button { justify-content: flex-start; }
.wan-hidden { display: none !important; }
/* the accent (a chosen tab's words) is a lighter indigo on the dark theme: 4.5:1 on either */
.dark { --color-accent: var(--primary-400); }
/* the page's entry is marked at once: a fading colour is, for a moment, one that is hard to read */
[id^="nav-"] { transition: none !important; }
.field-error { color: #f87171; font-weight: 600; }
/* quieter text is a darker grey, never a faded one: it keeps a contrast of 4.5:1 */
.cost-line { color: var(--body-text-color-subdued); font-size: 0.92em; }
.mode-note { color: var(--body-text-color-subdued); font-size: 0.9em; }
.progress-card { padding: 10px 12px; border-radius: 8px; background: var(--block-background-fill);
                 border: 1px solid var(--border-color-primary); }
.progress-card progress { width: 100%; height: 12px; }
/* the Queue page: a card per running or waiting job, its words wrapped whole, its buttons beside it
   (under it on a phone); the header's tray: one slim line with the running job's bar */
.queue-card { border: 1px solid var(--border-color-primary); border-radius: 10px; padding: 10px 12px !important;
              background: var(--block-background-fill); align-items: center !important; gap: 10px !important;
              flex-wrap: wrap !important; }
.queue-card > .queue-card-body { flex: 1 1 300px !important; min-width: 0 !important; }
.queue-card > .queue-card-actions { flex: 0 0 auto !important; width: max-content !important; max-width: 100%;
                                    min-width: 0 !important; justify-content: flex-end;
                                    gap: 6px !important; align-items: center !important; margin-left: auto; }
.queue-card-actions button { flex: 0 0 auto !important; min-width: 72px !important; }
.queue-job { display: flex; gap: 12px; align-items: flex-start; }
.queue-thumb { flex: 0 0 96px; width: 96px; height: 54px; border-radius: 6px; overflow: hidden; display: flex;
               align-items: center; justify-content: center; background: var(--background-fill-secondary);
               color: var(--body-text-color-subdued); }
.queue-thumb img { width: 100%; height: 100%; object-fit: cover; margin: 0 !important; }
.queue-words { flex: 1 1 auto; min-width: 0; }
.queue-words p { margin: 0 !important; }
.queue-prompt { white-space: pre-wrap; overflow-wrap: anywhere; font-weight: 600; }
.queue-meta, .queue-time { color: var(--body-text-color-subdued); font-size: 0.88em; }
.queue-words progress { width: 100%; height: 10px; margin-top: 6px; display: block; }
@media (max-width: 640px) { .queue-thumb { flex-basis: 64px; width: 64px; height: 36px; } }
#queue-tray { flex: 0 0 auto !important; min-width: 0 !important; align-self: center; }
.queue-tray { display: inline-flex; align-items: center; gap: 8px; height: 32px; padding: 0 12px;
              border-radius: 16px; border: 1px solid var(--border-color-primary);
              background: var(--block-background-fill); color: var(--body-text-color); font-size: 0.85em;
              white-space: nowrap; cursor: pointer; }
.queue-tray:hover { border-color: var(--color-accent); }
.queue-tray progress { width: 56px; height: 6px; }
.queue-tray-what { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%);
                   white-space: nowrap; }
.send-chips { align-items: center; }
.send-label { flex: 0 0 auto !important; min-width: 60px !important; }
#api-only-note, #api-only-note p { color: var(--body-text-color-subdued); font-size: 0.85em; }
#studio-name { min-width: 180px; flex: 0 0 auto !important; white-space: nowrap; }
/* the icons are drawn light for the dark theme: darkened on the light one */
body:not(.dark) button img[src$=".svg"] { filter: invert(0.85); }
/* a dropdown's text stops before its caret (on a phone it is cut short, not run under the arrow) */
#generation input, [id$="-model"] input, [id$="-size"] input {
  padding-right: 26px !important; text-overflow: ellipsis; }
/* a short upload box keeps its words inside (Gradio's upload text asks for 240 px of its own) */
.upload-container [data-testid="upload-text"] { min-height: 0 !important; padding-top: 0 !important; }
/* gallery: tiles of a fixed size however few results there are, each caption whole under its picture */
#gallery-grid .grid-container { grid-template-columns: repeat(auto-fill, minmax(160px, 220px)) !important;
                                grid-template-rows: none !important; grid-auto-rows: auto !important;
                                justify-content: start; }
#gallery-grid .caption-label { opacity: 0.95; max-width: none; left: 0; right: 0; bottom: 0; border-radius: 0;
                               white-space: normal; display: -webkit-box; -webkit-line-clamp: 3;
                               -webkit-box-orient: vertical; }
/* the header: one slim bar; its icon buttons keep their words for screen readers and tooltips */
#studio-header { align-items: center; gap: 8px; flex-wrap: wrap; }
#studio-name h3 { margin: 0; }
#header-icons { flex: 0 0 auto !important; gap: 4px; align-items: center; flex-wrap: nowrap; }
.icon-button { font-size: 0 !important; gap: 0 !important; padding: 6px !important; min-width: 36px !important;
               width: 36px !important; height: 36px; flex: 0 0 36px !important; }
.icon-button img { width: 20px !important; height: 20px !important; margin: 0 !important; }
#notices { align-items: center; }
/* the sidebar's entries in two lines: what it does, then its short name */
#studio-sidebar button[id^="nav-"] { white-space: pre-line; text-align: left; line-height: 1.25; }
/* (clipped, not hidden: a hidden overflow would make the page's box the scroller, and the action bar
   would stick to it instead of to the screen) */
.gradio-container { overflow-x: clip !important; overflow-y: visible !important; }
/* Generate, Stop and the estimate stay in view, pinned to the bottom while the inputs scroll under them */
.action-bar { position: sticky !important; bottom: 0; z-index: 30; background: var(--background-fill-primary);
              padding: 8px 0 6px !important; border-top: 1px solid var(--border-color-primary); }
/* beside the inputs, the result stays in view while they scroll */
@media (min-width: 1024px) { .result-column { position: sticky; top: 8px; align-self: flex-start; } }
.job-list-head { font-size: 0.9em; color: var(--body-text-color-subdued); margin-bottom: 4px; }
.job-list .progress-card + .progress-card { margin-top: 6px; }
.job-what { display: block; font-weight: 600; margin-bottom: 4px; overflow-wrap: anywhere; }
.switch-help p { color: var(--body-text-color-subdued); font-size: 0.9em; margin: 0; }
/* the keyboard shortcuts, over the page */
#wan-shortcuts { position: fixed; inset: 0; background: rgba(0, 0, 0, 0.55); z-index: 1000; display: flex;
                 align-items: center; justify-content: center; }
#wan-shortcuts > div { background: var(--background-fill-primary); color: var(--body-text-color);
                       padding: 20px 24px; border-radius: 12px; max-width: min(440px, 92vw); }
#wan-shortcuts kbd { border: 1px solid var(--border-color-primary); border-radius: 4px; padding: 1px 6px;
                     font-family: inherit; }
#wan-shortcuts li { margin: 6px 0; }
@media (max-width: 640px) { #preset [data-testid="block-info"] { display: none; } }
/* the compare table wraps between words, never inside one; on a phone each row stacks (what, then
   A and B side by side), and only a word too long for its half of the line breaks */
#gallery-differences table, #gallery-differences td, #gallery-differences th {
  word-break: normal !important; overflow-wrap: break-word !important; }
@media (max-width: 640px) {
  #gallery-differences table, #gallery-differences thead, #gallery-differences tbody { display: block; }
  #gallery-differences tr { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); }
  #gallery-differences tr > :first-child { grid-column: 1 / -1; }
  #gallery-differences thead tr > :first-child { display: none; } }
"""
# the header's toggle: the other theme, remembered in this browser
THEME_TOGGLE_JS = """() => {
  const dark = !document.body.classList.contains('dark');
  document.body.classList.toggle('dark', dark);
  localStorage.setItem('wan-studio-theme', dark ? 'dark' : 'light');
  return [];
}"""
# the header's chime: a short tone when a job ends, on or off, remembered in this browser
CHIME_TOGGLE_JS = """() => {
  const on = localStorage.getItem('wan-studio-chime') !== 'on';
  localStorage.setItem('wan-studio-chime', on ? 'on' : 'off');
  // its words only: the icon beside them stays
  const button = document.querySelector('#header-chime');
  const words = [...button.childNodes].find((n) => n.nodeType === 3 && n.textContent.trim());
  if (words) words.textContent = on ? 'Chime: on' : 'Chime: off';
  return [];
}"""
# the notices go, for good in this browser, until their words change
DISMISS_NOTICES_JS = """() => {
  const notices = document.querySelector('#notices');
  localStorage.setItem('wan-studio-notices', notices.innerText.replace('Dismiss', '').trim());
  notices.classList.add('wan-hidden');
  return [];
}"""
# the keyboard shortcuts, over the page (Esc or a click closes it); "?" opens it too
SHORTCUTS_JS = """() => { window.wanShortcuts && window.wanShortcuts(); return []; }"""
# hover text on the sidebar entries that are off: the reason (buttons have no tooltip of their own)
REASONS_JS = """(reasons) => {
  for (const [mode, why] of Object.entries(reasons || {})) {
    const button = document.getElementById('nav-' + mode);
    if (button) button.title = why || '';
  }
  return [];
}"""
# At load: the theme (the system's, or the one the header's toggle picked); on a phone the sidebar
# starts closed (its toggle opens it). Keys: Ctrl/Cmd+Enter in a prompt queues its mode's job, Esc stops the job shown.
# The tab title shows the job's progress ("[42%] Wan Studio"), and a notification says when a job
# ends while the tab is hidden (permission is asked on the first Generate).
PAGE_JS = """() => {
  // the theme follows the system's light or dark setting until the header's toggle picks one
  const system = window.matchMedia('(prefers-color-scheme: dark)');
  const applyTheme = () => {
    const chosen = localStorage.getItem('wan-studio-theme');
    document.body.classList.toggle('dark', chosen ? chosen === 'dark' : system.matches);
  };
  applyTheme();
  system.addEventListener('change', applyTheme);
  if (window.innerWidth < 768) {
    const closeSidebar = () => {
      const toggle = document.querySelector('button.toggle-button[aria-label="Toggle Sidebar"]');
      if (toggle) toggle.click(); else setTimeout(closeSidebar, 200);
    };
    closeSidebar();
  }
  // the notices stay dismissed until their words change
  const hideNotices = () => {
    const notices = document.querySelector('#notices');
    if (!notices) { setTimeout(hideNotices, 200); return; }
    const words = notices.innerText.replace('Dismiss', '').trim();
    if (!words || localStorage.getItem('wan-studio-notices') === words) notices.classList.add('wan-hidden');
  };
  hideNotices();
  const toggleSidebar = () => {
    const toggle = document.querySelector('button.toggle-button[aria-label="Toggle Sidebar"]');
    if (toggle) toggle.click();
  };
  document.addEventListener('click', (event) => {
    if (!event.target.closest) return;
    // on a phone the sidebar goes once a page is picked: it lies over the page
    const sidebar = document.querySelector('#studio-sidebar');
    if (window.innerWidth < 768 && event.target.closest('#studio-sidebar button[id^="nav-"]')
        && sidebar && sidebar.classList.contains('open')) setTimeout(toggleSidebar, 0);
    // once a job starts, its card comes into view (on a narrow screen it is under the inputs)
    const generate = event.target.closest('[id$="-generate"]');
    const card = generate && document.getElementById(generate.id.replace(/-generate$/, '-progress'));
    if (card && window.innerWidth < 1024) setTimeout(() => card.scrollIntoView({block: 'start'}), 400);
  });
  // a small result is never blown up past twice its own size
  document.addEventListener('loadedmetadata', (event) => {
    const video = event.target;
    if (video.tagName === 'VIDEO' && video.closest('.result-video') && video.videoWidth)
      video.style.maxWidth = Math.max(320, 2 * video.videoWidth) + 'px';
  }, true);
  // the keyboard shortcuts: the header's keyboard button or "?" shows them, Esc or a click closes them
  const shortcuts = [['Ctrl / ⌘ + Enter', 'in a prompt: Generate'], ['Esc', 'stop the job shown'],
                     ['?', 'show or hide these shortcuts'], ['Tab / Shift + Tab', 'next / previous control']];
  window.wanShortcuts = () => {
    const open = document.getElementById('wan-shortcuts');
    if (open) { open.remove(); return; }
    const overlay = document.createElement('div');
    overlay.id = 'wan-shortcuts';
    overlay.innerHTML = '<div role="dialog" aria-modal="true" aria-labelledby="wan-shortcuts-title">' +
      '<h2 id="wan-shortcuts-title">Keyboard shortcuts</h2><ul>' +
      shortcuts.map(([keys, what]) => '<li><kbd>' + keys + '</kbd> ' + what + '</li>').join('') +
      '</ul><button class="lg secondary" id="wan-shortcuts-close">Close</button></div>';
    overlay.addEventListener('click', (e) => { if (e.target === overlay || e.target.id === 'wan-shortcuts-close')
      overlay.remove(); });
    document.body.appendChild(overlay);
    overlay.querySelector('button').focus();
  };
  const visible = (el) => el && el.offsetParent !== null;
  const shownPanel = () => [...document.querySelectorAll('[id^="panel-"]')].find(visible);
  document.addEventListener('keydown', (event) => {
    const prompt = event.target.closest && event.target.closest('[id$="-prompt"]');
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey) && prompt) {
      const generate = document.getElementById(prompt.id.replace(/-prompt$/, '-generate'));
      if (generate) { event.preventDefault(); generate.click(); }
    } else if (event.key === 'Escape' && document.getElementById('wan-shortcuts')) {
      document.getElementById('wan-shortcuts').remove();
    } else if (event.key === '?' && !event.target.closest('input, textarea, [contenteditable="true"]')) {
      event.preventDefault();
      window.wanShortcuts();
    } else if (event.key === 'Escape') {
      const panel = shownPanel();
      const running = panel && panel.querySelector(
        '.progress-card[data-state="running"], .progress-card[data-state="loading"], ' +
        '.progress-card[data-state="extracting"], .progress-card[data-state="queued"], ' +
        '.progress-card[data-state="downloading"], .progress-card[data-state="finishing"]');
      const stop = panel && panel.querySelector('[id$="-stop"]');
      if (running && stop) stop.click();
    }
  });
  document.addEventListener('click', (event) => {
    if (event.target.closest && event.target.closest('[id$="-generate"]') && window.Notification
        && Notification.permission === 'default') Notification.requestPermission();
  }, true);
  // Gradio's empty media boxes carry an aria-label on an element without a role, and its upload
  // areas and gallery tiles a name other than the words they show: the boxes get a role, the
  // areas and tiles their own words
  const repairNames = () => {
    document.querySelectorAll('.empty[aria-label]:not([role]), .small_parent[aria-label]:not([role])')
      .forEach((box) => box.setAttribute('role', 'img'));
    document.querySelectorAll('.boundedheight[aria-label], .thumbnail-item[aria-label]').forEach((area) => {
      const words = area.innerText.replace(/\s+/g, ' ').trim();
      if (words && area.getAttribute('aria-label') !== words) area.setAttribute('aria-label', words);
    });
  };
  repairNames();
  new MutationObserver(repairNames).observe(document.body, {childList: true, subtree: true});
  // the chime: two short tones, rising when a job is done, falling when it failed or stopped
  const chimeButton = () => document.querySelector('#header-chime');
  const showChime = () => {
    const b = chimeButton();
    const words = b && [...b.childNodes].find((n) => n.nodeType === 3 && n.textContent.trim());
    if (words) words.textContent = localStorage.getItem('wan-studio-chime') === 'on' ? 'Chime: on' : 'Chime: off';
    else setTimeout(showChime, 200);
  };
  showChime();
  const chime = (done) => {
    const audio = new (window.AudioContext || window.webkitAudioContext)();
    (done ? [660, 880] : [660, 440]).forEach((pitch, k) => {
      const tone = audio.createOscillator(), level = audio.createGain();
      tone.frequency.value = pitch;
      level.gain.setValueAtTime(0.15, audio.currentTime + k * 0.18);
      level.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + k * 0.18 + 0.16);
      tone.connect(level).connect(audio.destination);
      tone.start(audio.currentTime + k * 0.18);
      tone.stop(audio.currentTime + k * 0.18 + 0.17);
    });
    document.body.dataset.chimes = String(Number(document.body.dataset.chimes || 0) + 1);  // for a look from outside
  };
  const title = 'Wan Studio';
  let busy = false;
  new MutationObserver(() => {
    const bar = [...document.querySelectorAll(
      '.progress-card[data-state="running"] progress, .progress-card[data-state="extracting"] progress, ' +
      '.progress-card[data-state="finishing"] progress, .progress-card[data-state="downloading"] progress')
    ].find(visible);
    if (bar && bar.max > 0) {
      busy = true;
      document.title = '[' + Math.round(100 * bar.value / bar.max) + '%] ' + title;
      return;
    }
    const card = [...document.querySelectorAll('.progress-card')].find(visible);
    const state = card && card.dataset.state;
    // a job in flight, even one too quick to show a step: its end is told (title, notification, chime)
    if (['queued', 'downloading', 'loading', 'running', 'extracting', 'finishing'].includes(state)) busy = true;
    if (busy && ['done', 'failed', 'stopped', 'refused'].includes(state)) {
      busy = false;
      document.title = (state === 'done' ? '[done] ' : '[' + state + '] ') + title;
      if (document.hidden && window.Notification && Notification.permission === 'granted')
        new Notification(title, {body: card.innerText.slice(0, 160)});
      if (localStorage.getItem('wan-studio-chime') === 'on') chime(state === 'done');
    }
  }).observe(document.body,
             {subtree: true, childList: true, attributes: true, attributeFilter: ['value', 'data-state']});
  // the gallery's compare view: the two videos play, pause and seek together
  let following = false;
  const other = (video) => {
    const id = video.closest && video.closest('#compare-a, #compare-b');
    return id && document.querySelector((id.id === 'compare-a' ? '#compare-b' : '#compare-a') + ' video');
  };
  for (const kind of ['play', 'pause', 'seeked']) {
    document.addEventListener(kind, (event) => {
      const twin = event.target.tagName === 'VIDEO' && other(event.target);
      if (!twin || following) return;
      following = true;
      if (kind === 'play') twin.play().catch(() => {});
      if (kind === 'pause') twin.pause();
      if (Math.abs(twin.currentTime - event.target.currentTime) > 0.05) twin.currentTime = event.target.currentTime;
      setTimeout(() => { following = false; }, 0);
    }, true);
  }
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && !busy && document.title !== title) document.title = title;
  });
}"""


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
def navigation_updates(shell: Shell, key: str, status: dict | None = None) -> list:
    """Show one section; light its sidebar entry (and, with `status`, turn mode entries on or off);
    the stats timer only ticks on its page."""
    def entry(k):
        if status is not None and k in status:
            return gr.update(variant="primary" if k == key else "secondary", interactive=status[k].enabled)
        return gr.update(variant="primary" if k == key else "secondary")

    return ([gr.update(visible=k == key) for k in shell.sections] + [entry(k) for k in shell.sections]
            + [key, gr.Timer(active=key == "queue")])


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
    return updates + navigation_updates(shell, target, status)


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
        return lambda: navigation_updates(shell, key)

    openers = {"gallery": shell.gallery.opener, "settings": shell.settings_page.opener,
               "queue": shell.queue.opener}
    for key in shell.sections:
        event = shell.nav[key].click(go(key), None, nav_out, queue=False, **private)
        if key in openers:
            fn, inputs, outputs = openers[key]
            event = event.then(fn, inputs, outputs, queue=False, **private)
        # the page is open and filled in (for a look from outside, as the tests take)
        event.then(None, None, None, js=f"() => {{ document.body.dataset.opened = '{key}'; }}", **private)
    for link, key in ((shell.gallery.go_generate, next(iter(shell.panels))),):
        event = link.click(go(key), None, nav_out, queue=False, **private)
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

            def send(video, target=target, source=source.mode):
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
                return [video] + navigation_updates(shell, target)

            chip.click(send, source.video, [target_input, *nav_out], queue=False, **private)

    # gallery "Reload into <mode>": every parameter and input file back into its panel
    all_fields = []
    for panel in shell.panels.values():
        all_fields += panel.request_components()

    def reload(result_id):
        from wan_studio.runtime.gallery import reload_request

        try:
            data = reload_request(get_studio(settings).engine.library, result_id)
        except StudioError as exc:
            raise gr.Error(str(exc))
        mode = data["mode"]
        if mode not in shell.panels:
            raise gr.Error(f"{mode.upper()} results cannot be reloaded into a panel.")
        updates = []
        for panel in shell.panels.values():
            count = len(panel.request_fields())
            updates += fill_values(panel, data) if panel.mode == mode else [gr.update()] * count
        generation = catalog.get(data["model"]).generation
        return updates + [generation] + navigation_updates(shell, mode)

    reloaded = shell.gallery.reload.click(reload, shell.gallery.selected, [*all_fields, shell.generation, *nav_out],
                                          queue=False, **private).success(
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
        shell = build_layout(settings)
        add_examples(shell, settings)
        wire(shell, settings)
        add_drop(shell, settings, demo)  # a gallery result dragged onto an input
        demo.load(None, shell.reasons, None, js=REASONS_JS)
        demo.load(lambda: queue_warning_update(settings), None, shell.queue_warning, queue=False,
                  api_visibility="private")
        for panel in shell.panels.values():
            fn, inputs, output = panel.estimate
            demo.load(fn, inputs, output, queue=False, show_progress="hidden", api_visibility="private")
            for fn, inputs, output in (panel.recent_loader, panel.favourites_loader, panel.loras_loader):
                demo.load(fn, inputs, output, queue=False, show_progress="hidden", api_visibility="private")
        register_api(settings, get_studio)
    return demo


def queue_warning_update(settings: Settings):
    """A problem with the queue database (damaged, locked), shown above the panels."""
    warning = get_studio(settings).warning
    return gr.update(value=f"**Queue warning:** {warning}" if warning else "", visible=bool(warning))


def launch_options() -> dict:
    """Look and feel, passed to launch() (Gradio 6 takes theme and css there)."""
    return dict(theme=theme(), css=CSS, js=PAGE_JS)
