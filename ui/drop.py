"""Drag a result from the gallery onto an image or video input of any mode.

The gallery and the panels are different pages, so a drag opens the page of the mode it is held
over in the sidebar (after a moment, as a file manager opens a folder). Dropped on a video input
the result's video goes in; on an image input, its last frame (as "Send to" does). The browser
only says which result and which input (a hidden text box the page's script fills); the server
puts the file in, so no server path reaches the page.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from ui.panel_specs import page_inputs
from wan_studio.errors import StudioError
from wan_studio.settings import Settings

DROP_JS = """() => {
  const TYPE = 'application/x-wan-studio-result';
  let opening = null;
  document.addEventListener('dragstart', (event) => {
    const thumb = event.target.closest && event.target.closest('#gallery-grid img');
    if (!thumb) return;
    const name = decodeURIComponent((thumb.currentSrc || thumb.src).split('?')[0].split('/').pop());
    event.dataTransfer.setData(TYPE, name.replace(/\\.[^.]+$/, ''));  // the thumbnail is named after its result
    event.dataTransfer.effectAllowed = 'copy';
  });
  const target = (event) => event.target.closest && event.target.closest('.wan-drop-target');
  document.addEventListener('dragover', (event) => {
    if (!event.dataTransfer.types.includes(TYPE)) return;
    const nav = event.target.closest && event.target.closest('[id^="nav-"]');
    if (nav && nav !== opening) {  // held over a mode in the sidebar: open its page
      opening = nav;
      setTimeout(() => { if (opening === nav) nav.click(); }, 400);
    }
    if (target(event)) { event.preventDefault(); event.dataTransfer.dropEffect = 'copy'; }
  }, true);
  document.addEventListener('drop', (event) => {
    const result = event.dataTransfer.getData(TYPE);
    const into = result && target(event);
    opening = null;
    if (!into) return;
    event.preventDefault();
    event.stopPropagation();
    const box = document.querySelector('#drop-request textarea, #drop-request input');
    box.value = result + '|' + into.id + '|' + Date.now();  // a new value each time: the same drop twice still counts
    box.dispatchEvent(new Event('input', {bubbles: true}));
  }, true);
}"""


def drop_targets(shell) -> dict[str, tuple[str, object]]:
    """elem id -> (file kind, component) of every image and video input of every panel."""
    found = {}
    for panel in shell.panels.values():
        kinds = {item.name: item.kind for item in page_inputs(panel.mode)}
        for name, component in panel.inputs.items():
            if kinds.get(name) in ("image", "video", "image-or-video"):
                found[f"{panel.mode}-{name}"] = (kinds[name], component)
    return found


def add_drop(shell, settings: Settings, demo: gr.Blocks) -> None:
    """The hidden box the page writes a drop into, its handler, and the page's script."""
    targets = drop_targets(shell)
    for _, component in targets.values():
        component.elem_classes = [*(component.elem_classes or []), "wan-drop-target"]
    request = gr.Textbox(elem_id="drop-request", elem_classes="wan-hidden", container=False, show_label=False)
    order = list(targets)

    def dropped(text):
        from ui.runtime import get_studio
        from wan_studio.runtime.gallery import save_last_frame

        updates = [gr.update() for _ in order]
        result_id, elem_id = (str(text or "").split("|") + ["", ""])[:2]
        result = get_studio(settings).engine.library.get(result_id)
        if elem_id not in targets or result is None or result.missing:
            gr.Warning("Drop a result of the gallery onto an image or video input.", duration=4)
            return updates
        kind, _ = targets[elem_id]
        media = result.media
        if kind == "video" and media.suffix != ".mp4":
            gr.Warning("That result is a picture; drop it on an image input.", duration=4)
            return updates
        if kind == "image" and media.suffix == ".mp4":  # a picture input takes the video's last frame
            try:
                media = save_last_frame(media, settings.output_dir / ".ui" / "frames" / f"{result.id}-last.png")
            except StudioError as exc:
                gr.Warning(str(exc), duration=4)
                return updates
        updates[order.index(elem_id)] = str(Path(media))
        return updates

    request.change(dropped, request, [targets[name][1] for name in order], queue=False, api_visibility="private")
    demo.load(None, None, None, js=DROP_JS)
