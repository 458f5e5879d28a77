"""Gallery: every result newest first, paged, with player, recipe, reload, delete, export."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

import gradio as gr
from PIL import Image, ImageDraw

from ui.runtime import get_studio
from wan_studio.errors import StudioError
from wan_studio.settings import Settings


@dataclass
class GalleryPage:
    column: gr.Column
    empty: gr.Markdown
    go_generate: gr.Button
    grid: gr.Gallery
    page: gr.State
    page_label: gr.Markdown
    previous: gr.Button
    next: gr.Button
    ids: gr.State
    selected: gr.State
    player: gr.Video
    recipe: gr.JSON
    info: gr.Markdown
    reload: gr.Button
    delete: gr.Button
    export: gr.Button
    export_file: gr.File
    pick: gr.Button
    compare: gr.Button
    picked: gr.State
    compare_view: gr.Row
    compare_a: gr.Video
    compare_b: gr.Video
    differences: gr.Markdown
    opener: tuple | None = None  # (fn, inputs, outputs) the shell runs when the gallery opens


def build_gallery(visible: bool) -> GalleryPage:
    with gr.Column(visible=visible, elem_id="panel-gallery") as column:
        gr.Markdown("### Gallery · every result in the output folder, newest first")
        empty = gr.Markdown("Nothing yet — generate something!", visible=False, elem_id="gallery-empty")
        go_generate = gr.Button("Go to T2V", size="sm", visible=False, elem_id="gallery-go")
        grid = gr.Gallery(columns=4, height=420, allow_preview=False, object_fit="cover", label="Results",
                          elem_id="gallery-grid")
        with gr.Row():
            previous = gr.Button("◀ Newer", size="sm", elem_id="gallery-prev")
            page_label = gr.Markdown("Page 1 of 1", elem_id="gallery-page")
            next_ = gr.Button("Older ▶", size="sm", elem_id="gallery-next")
        page = gr.State(1)
        ids = gr.State([])
        selected = gr.State(None)
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                player = gr.Video(label="Selected", autoplay=True, loop=True, interactive=False,
                                  elem_id="gallery-player")
            with gr.Column(scale=2):
                info = gr.Markdown("Select a result.", elem_id="gallery-info")
                with gr.Row():
                    reload = gr.Button("Reload", variant="primary", interactive=False, elem_id="gallery-reload")
                    delete = gr.Button("Delete", variant="stop", interactive=False, elem_id="gallery-delete")
                    export = gr.Button("Export zip", interactive=False, elem_id="gallery-export")
                export_file = gr.File(label="Export", visible=False, elem_id="gallery-export-file")
                with gr.Row():  # compare: pick one, select another, compare them side by side
                    pick = gr.Button("Pick for comparing", size="sm", elem_id="gallery-pick")
                    compare = gr.Button("Compare with the picked one", size="sm", elem_id="gallery-compare")
                with gr.Accordion("Recipe", open=False):
                    recipe = gr.JSON(elem_id="gallery-recipe")
        picked = gr.State(None)
        differences = gr.Markdown(visible=False, elem_id="gallery-differences")
        with gr.Row(visible=False, elem_id="gallery-compare-view") as compare_view:  # played in step (PAGE_JS)
            compare_a = gr.Video(label="A (picked)", autoplay=True, loop=True, interactive=False, elem_id="compare-a")
            compare_b = gr.Video(label="B (selected)", autoplay=True, loop=True, interactive=False, elem_id="compare-b")
    return GalleryPage(column, empty, go_generate, grid, page, page_label, previous, next_, ids, selected, player,
                       recipe, info, reload, delete, export, export_file, pick, compare, picked, compare_view,
                       compare_a, compare_b, differences)


def _placeholder(settings: Settings) -> str:
    """A grey tile for results whose thumbnail was removed by hand."""
    path = settings.output_dir / ".ui" / "missing.png"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        image = Image.new("RGB", (160, 96), (60, 64, 72))
        ImageDraw.Draw(image).text((40, 40), "file missing", fill=(220, 220, 220))
        image.save(path)
    return str(path)


def wire_gallery(g: GalleryPage, settings: Settings) -> None:
    from wan_studio.runtime.gallery import gallery_page

    private = dict(api_visibility="private", queue=False)

    def show(page):
        library = get_studio(settings).engine.library
        entries, pages = gallery_page(library, int(page or 1))
        page = min(max(1, int(page or 1)), pages)
        items = [(str(e.thumbnail) if e.thumbnail else _placeholder(settings), e.caption) for e in entries]
        empty = not entries
        return (items, page, f"Page {page} of {pages}", [e.id for e in entries], gr.update(visible=empty),
                gr.update(visible=empty))

    listing = [g.grid, g.page, g.page_label, g.ids, g.empty, g.go_generate]
    g.opener = (show, g.page, listing)
    g.previous.click(lambda p: show(int(p) - 1), g.page, listing, **private)
    g.next.click(lambda p: show(int(p) + 1), g.page, listing, **private)

    def select(ids, evt: gr.SelectData):
        result_id = ids[evt.index] if evt.index is not None and evt.index < len(ids) else None
        return describe(result_id)

    def describe(result_id):
        library = get_studio(settings).engine.library
        result = library.get(result_id) if result_id else None
        off = gr.update(interactive=False)
        if result is None:
            return None, None, None, "Select a result.", gr.update(value="Reload", interactive=False), off, off, \
                gr.update(visible=False)
        mode = result.mode
        request = (result.recipe or {}).get("request", {})
        lines = [f"**{result.id}** · {mode.upper()}"]
        if result.missing:
            lines.append(f"⚠ The file {result.media.name} is missing (deleted by hand); the recipe is kept.")
        for key in ("prompt", "model", "seed", "steps", "guidance", "frames", "width", "height"):
            if request.get(key) is not None:
                lines.append(f"- {key}: {request[key]}")
        return (result.id, None if result.missing else str(result.media), result.recipe, "\n".join(lines),
                gr.update(value=f"Reload into {mode.upper()}", interactive=bool(result.recipe)),
                gr.update(interactive=True), gr.update(interactive=not result.missing), gr.update(visible=False))

    details = [g.selected, g.player, g.recipe, g.info, g.reload, g.delete, g.export, g.export_file]
    g.grid.select(select, g.ids, details, **private)

    def delete(result_id, page):
        if result_id:
            get_studio(settings).engine.library.delete(result_id)
        return (*show(page), *describe(None))

    g.delete.click(delete, [g.selected, g.page], listing + details, **private)

    def export(result_id):
        from wan_studio.runtime.gallery import export_zip

        try:
            path = export_zip(get_studio(settings).engine.library, result_id, settings.output_dir / ".ui" / "exports")
        except StudioError as exc:
            raise gr.Error(str(exc))
        return gr.update(value=str(path), visible=True)

    g.export.click(export, g.selected, g.export_file, **private)

    def pick(result_id):
        if not result_id:
            return None, gr.update(value="Select a result to pick it for comparing.", visible=True)
        return result_id, gr.update(value=f"Picked **{result_id}** (A): select another result, then Compare.",
                                    visible=True)

    g.pick.click(pick, g.selected, [g.picked, g.differences], **private)

    def compare(picked, selected):
        from wan_studio.runtime.gallery import recipe_differences

        library = get_studio(settings).engine.library
        first, second = (library.get(i) if i else None for i in (picked, selected))
        if first is None or second is None or picked == selected:
            return (gr.update(visible=False), None, None,
                    gr.update(value="Pick a result, select another, then Compare.", visible=True))
        rows = recipe_differences(first.recipe or {}, second.recipe or {})
        table = ["| | A (picked) | B (selected) |", "|---|---|---|"]
        table += [f"| **{escape(key)}** | {escape(str(a))} | {escape(str(b))} |" for key, a, b in rows]
        text = (f"**A** {first.id} · **B** {second.id}: " + (f"{len(rows)} differences" if rows else "the same recipe")
                + ("\n\n" + "\n".join(table) if rows else ""))
        return (gr.update(visible=True), None if first.missing else str(first.media),
                None if second.missing else str(second.media), gr.update(value=text, visible=True))

    g.compare.click(compare, [g.picked, g.selected], [g.compare_view, g.compare_a, g.compare_b, g.differences],
                    **private)
