"""The page's look and its scripts: the stylesheet and the small JavaScript functions the shell
hands to gradio (theme, chime, notices, shortcuts, the sidebar's reasons, and PAGE_JS, which runs
once when the page loads). Strings only: ui/shell.py builds the page and wires them."""

CSS = """
#studio-sidebar button { justify-content: flex-start; }
.wan-hidden { display: none !important; }
/* the accent (a chosen tab's words) is a lighter indigo on the dark theme: 4.5:1 on either */
.dark { --color-accent: var(--primary-400); }
/* the page's entry is marked at once: a fading colour is, for a moment, one that is hard to read */
[id^="nav-"] { transition: none !important; }
.field-error { color: #f87171; font-weight: 600; }
.field-error:not(:has(p)) { display: none !important; }
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
#queue-tray { flex: 0 0 auto !important; width: auto !important; min-width: 0 !important; align-self: center; }
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
/* the grid is as tall as its page of tiles: the page scrolls, never a box inside it (Gradio caps it at 55vh) */
#gallery-grid .grid-wrap { height: auto !important; max-height: none !important; min-height: 0 !important;
                           overflow-y: visible !important; }
#gallery-grid .caption-label { opacity: 0.95; max-width: none; left: 0; right: 0; bottom: 0; border-radius: 0;
                               white-space: normal; display: -webkit-box; -webkit-line-clamp: 3;
                               -webkit-box-orient: vertical; }
/* the header: one slim bar; its icon buttons keep their words for screen readers and tooltips */
#studio-header { align-items: center; gap: 8px; flex-wrap: wrap; }
#studio-name { flex: 0 0 auto !important; width: auto !important; min-width: 0 !important; }
#studio-name h3 { margin: 0; white-space: nowrap; }
/* the Generation and Preset boxes share one box that takes what the name, tray and icons leave */
#studio-header > .form { flex: 1 1 420px !important; min-width: min(420px, 100%) !important; }
#header-icons { flex: 0 0 auto !important; width: auto !important; gap: 4px; align-items: center; flex-wrap: nowrap; }
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
/* the live preview while it holds a picture; the recipe once there is a result (never toggled by updates) */
.live-preview:not(:has(img)) { display: none !important; }
.result-column:not(:has(.result-video video)) .result-recipe { display: none !important; }
#gallery-compare-view:not(:has(video)) { display: none !important; }
.variant-grid:not(:has(video, img)) { display: none !important; }
/* the result's toolbar once there is a result, but not while a job made from it runs; Resume for a
   stopped job with windows kept (the job list marks them; updates that show and hide race with values) */
.result-column:not(:has(.result-video video)) .result-toolbar,
.result-column:has([data-follow-on]) .result-toolbar { display: none !important; }
.result-column:not(:has([data-resumable])) .resume-button { display: none !important; }
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
