"""Gallery: every result newest first, paged, searched by prompt words and filtered by mode, date and
star, with player, recipe, reload, star, delete (with undo), export, and a side-by-side compare; in
"Select several" a click on a result adds it to (or takes it from) a selection that is deleted (one
Undo) or exported (one zip) at once. A result is described by its file (size, frames, fps) and how it
was made (generated, upscaled, smoothed, extended from which result), not by the request alone."""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import escape

import gradio as gr
from PIL import Image, ImageDraw

from ui.runtime import get_studio, refused
from wan_studio.errors import StudioError
from wan_studio.runtime.gallery import (
    MADE_WITHIN,
    GallerySearch,
    export_zip,
    gallery_view,
    made_at,
    made_by,
    output_facts,
    result_differences,
    result_label,
)
from wan_studio.settings import Settings

ALL_MODES = "all"  # the mode filter's "Every mode"


@dataclass
class GalleryPage:
    column: gr.Column
    search: gr.Textbox  # prompt words
    mode: gr.Dropdown  # ALL_MODES or one mode of the results
    made: gr.Dropdown  # a key of MADE_WITHIN
    starred_only: gr.Checkbox
    choose: gr.Button  # "Select several" / "Done selecting"
    choosing: gr.State  # True while a click on a result selects it
    chosen: gr.State  # the ids selected, in the order clicked
    chosen_bar: gr.Row
    chosen_note: gr.Markdown  # "3 selected"
    delete_chosen: gr.Button
    export_chosen: gr.Button
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
    star: gr.Button
    delete: gr.Button
    deleted: gr.Row  # "Deleted <name>" and its Undo, after a delete
    deleted_note: gr.Markdown
    undo: gr.Button
    trashed: gr.State  # the ids of the results Undo puts back
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
        with gr.Row(equal_height=True, elem_id="gallery-filters"):
            search = gr.Textbox(label="Search prompts", placeholder="words of the prompt, e.g. red kite", scale=3,
                                min_width=200, elem_id="gallery-search")
            mode = gr.Dropdown([("Every mode", ALL_MODES)], value=ALL_MODES, label="Mode", min_width=130,
                               elem_id="gallery-mode")
            made = gr.Dropdown([(label, key) for key, label in MADE_WITHIN.items()], value="all", label="Made",
                               min_width=130, elem_id="gallery-made")
            starred_only = gr.Checkbox(label="★ Starred only", min_width=130, elem_id="gallery-starred-only")
        with gr.Row(equal_height=True, elem_id="gallery-choosing"):
            choose = gr.Button("Select several", size="sm", scale=0, min_width=140, elem_id="gallery-choose")
            with gr.Row(visible=False, equal_height=True, elem_id="gallery-chosen-bar") as chosen_bar:
                chosen_note = gr.Markdown("0 selected", elem_id="gallery-chosen-note")
                delete_chosen = gr.Button("Delete selected", variant="stop", size="sm", interactive=False,
                                          elem_id="gallery-delete-chosen")
                export_chosen = gr.Button("Export selected", size="sm", interactive=False,
                                          elem_id="gallery-export-chosen")
        choosing = gr.State(False)
        chosen = gr.State([])
        empty = gr.Markdown("Nothing yet — generate something!", visible=False, elem_id="gallery-empty")
        go_generate = gr.Button("Go to T2V", size="sm", visible=False, elem_id="gallery-go")
        # as tall as its page of results (the stylesheet lifts Gradio's cap): the page scrolls, not the grid
        grid = gr.Gallery(columns=4, allow_preview=False, object_fit="cover", label="Results",
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
                    star = gr.Button("☆ Star", interactive=False, elem_id="gallery-star")
                    delete = gr.Button("Delete", variant="stop", interactive=False, elem_id="gallery-delete")
                    export = gr.Button("Export zip", interactive=False, elem_id="gallery-export")
                with gr.Row(visible=False, equal_height=True, elem_id="gallery-deleted") as deleted:
                    deleted_note = gr.Markdown(elem_id="gallery-deleted-note")
                    undo = gr.Button("Undo", size="sm", scale=0, min_width=80, elem_id="gallery-undo")
                export_file = gr.File(label="Export", visible=False, elem_id="gallery-export-file")
                with gr.Row():  # compare: pick one, select another, compare them side by side
                    pick = gr.Button("Pick for comparing", size="sm", elem_id="gallery-pick")
                    compare = gr.Button("Compare with the picked one", size="sm", elem_id="gallery-compare")
                with gr.Accordion("Recipe", open=False):
                    recipe = gr.JSON(elem_id="gallery-recipe")
        picked = gr.State(None)
        trashed = gr.State([])
        differences = gr.Markdown(visible=False, elem_id="gallery-differences")
        # (shown by the stylesheet once it holds videos: a Row made visible in the update that fills its
        # players could be read back with the old, empty ones)
        with gr.Row(elem_id="gallery-compare-view") as compare_view:  # played in step (PAGE_JS)
            compare_a = gr.Video(label="A (picked)", autoplay=True, loop=True, interactive=False, elem_id="compare-a")
            compare_b = gr.Video(label="B (selected)", autoplay=True, loop=True, interactive=False, elem_id="compare-b")
    return GalleryPage(column, search, mode, made, starred_only, choose, choosing, chosen, chosen_bar, chosen_note,
                       delete_chosen, export_chosen, empty, go_generate, grid, page, page_label, previous, next_, ids,
                       selected, player, recipe, info, reload, star, delete, deleted, deleted_note, undo, trashed,
                       export, export_file, pick, compare, picked, compare_view, compare_a, compare_b, differences)


_MARKDOWN = re.compile(r"([\\`*_\[\]|~])")


def _md(text: object) -> str:
    """Text shown as it is in Markdown (a prompt's `*` or `|` is not formatting, nor a table's edge)."""
    return _MARKDOWN.sub(r"\\\1", escape(str(text), quote=False))


def _placeholder(settings: Settings) -> str:
    """A grey tile for results whose thumbnail was removed by hand."""
    path = settings.output_dir / ".ui" / "missing.png"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        image = Image.new("RGB", (160, 96), (60, 64, 72))
        ImageDraw.Draw(image).text((40, 40), "file missing", fill=(220, 220, 220))
        image.save(path)
    return str(path)


def _details(library, result) -> str:
    """A result in words: mode, when, star, what its file holds, how it was made, its main settings."""
    request = (result.recipe or {}).get("request", {})
    star = "★ starred" if result.starred else ""
    lines = [" · ".join(part for part in (f"**{result.mode.upper()}**", made_at(result.id), star) if part)]
    if result.missing:
        lines.append(f"⚠ The file {_md(result.media.name)} is missing (deleted by hand); the recipe is kept.")
    output = output_facts(result)
    if output is not None:
        lines.append(f"- output: {output.describe()}" + ("" if output.from_file else " (as saved)"))
    how = made_by(library, result)
    if how != "generated":
        lines.append(f"- {_md(how)}")
    for key in ("prompt", "model", "seed", "steps", "guidance"):
        if request.get(key) is not None:
            lines.append(f"- {key}: {_md(request[key])}")
    lines.append(f"- file: `{result.media.name}`")
    return "\n".join(lines)


def wire_gallery(g: GalleryPage, settings: Settings) -> None:
    private = dict(api_visibility="private", queue=False)

    def studio_library():
        return get_studio(settings).engine.library  # (the studio starts on first use)

    # -- the grid: one page of what the search and filters find -------------------------------------
    view = [g.page, g.search, g.mode, g.made, g.starred_only, g.chosen]  # what `show` reads
    listing = [g.grid, g.page, g.page_label, g.ids, g.empty, g.go_generate, g.mode]

    def show(page, text, mode, made, starred, chosen) -> dict:
        search = GallerySearch(text or "", "" if mode in (None, ALL_MODES) else mode, made or "all", bool(starred))
        found = gallery_view(studio_library(), int(page or 1), search=search)
        chosen = set(chosen or ())
        items = [(str(e.thumbnail) if e.thumbnail else _placeholder(settings),
                  ("✓ " if e.id in chosen else "") + e.caption) for e in found.entries]
        filtered = found.found != found.total
        count = f"{found.found} of {found.total} results" if filtered else \
            f"{found.total} result{'s' if found.total != 1 else ''}"
        nothing = "Nothing yet — generate something!" if not found.total else \
            "No result matches the search and filters: change or clear them to see the others."
        modes = [("Every mode", ALL_MODES)] + [(m.upper(), m) for m in found.modes]
        if mode not in (None, ALL_MODES, *found.modes):  # its last result deleted: still the filter in use
            modes.append((str(mode).upper(), mode))
        return {g.grid: items, g.page: found.page, g.page_label: f"Page {found.page} of {found.pages} · {count}",
                g.ids: [e.id for e in found.entries], g.empty: gr.update(value=nothing, visible=not found.entries),
                g.go_generate: gr.update(visible=not found.total), g.mode: gr.update(choices=modes)}

    g.opener = (show, view, listing)
    g.previous.click(lambda p, *rest: show(int(p) - 1, *rest), view, listing, **private)
    g.next.click(lambda p, *rest: show(int(p) + 1, *rest), view, listing, **private)
    first_page = dict(fn=lambda _, *rest: show(1, *rest), inputs=view, outputs=listing, **private)
    # found as it is typed (or pasted) and as a filter changes: one event that never overlaps itself and
    # always reads the latest values, so an earlier filter's answer can never land after a later one's
    gr.on([g.search.change, g.mode.input, g.made.input, g.starred_only.input], trigger_mode="always_last",
          **first_page)

    # -- one result: its details, star, delete with Undo, export -----------------------------------
    details = [g.selected, g.player, g.recipe, g.info, g.reload, g.star, g.delete, g.export, g.export_file]

    def describe(result_id) -> dict:
        result = studio_library().get(result_id) if result_id else None
        off = gr.update(interactive=False)
        if result is None:
            return {g.selected: None, g.player: None, g.recipe: None, g.info: "Select a result.",
                    g.reload: gr.update(value="Reload", interactive=False), g.star: gr.update(value="☆ Star",
                    interactive=False), g.delete: off, g.export: off, g.export_file: gr.update(visible=False)}
        return {g.selected: result.id, g.player: None if result.missing else str(result.media),
                **star_updates(result), g.reload: gr.update(value=f"Reload into {result.mode.upper()}",
                                                       interactive=bool(result.recipe)),
                g.delete: gr.update(interactive=True), g.export: gr.update(interactive=not result.missing),
                g.export_file: gr.update(visible=False)}

    def star_updates(result) -> dict:
        """What shows whether a result is starred: the details, the recipe and the star button."""
        return {g.recipe: result.recipe, g.info: _details(studio_library(), result),
                g.star: gr.update(value="★ Unstar" if result.starred else "☆ Star", interactive=bool(result.recipe))}

    # -- several results: "Select several", then delete or export them at once --------------------
    chosen_outputs = [g.chosen, g.chosen_note, g.delete_chosen, g.export_chosen]

    def chosen_updates(chosen: list) -> dict:
        note = f"{len(chosen)} selected" if chosen else "0 selected · click results to select them"
        return {g.chosen: chosen, g.chosen_note: note, g.delete_chosen: gr.update(interactive=bool(chosen)),
                g.export_chosen: gr.update(interactive=bool(chosen))}

    def select(ids, choosing, page, text, mode, made, starred, chosen, evt: gr.SelectData):
        result_id = ids[evt.index] if evt.index is not None and evt.index < len(ids) else None
        if not choosing:
            return describe(result_id)
        chosen = list(chosen or [])
        if result_id in chosen:
            chosen.remove(result_id)
        elif result_id:
            chosen.append(result_id)
        return {**show(page, text, mode, made, starred, chosen), **chosen_updates(chosen)}

    g.grid.select(select, [g.ids, g.choosing, *view], details + listing + chosen_outputs, **private)

    def choose(choosing, *shown):
        choosing = not choosing
        return {**show(*shown[:-1], []), **chosen_updates([]), g.choosing: choosing,
                g.choose: gr.update(value="Done selecting" if choosing else "Select several"),
                g.chosen_bar: gr.update(visible=choosing)}

    g.choose.click(choose, [g.choosing, *view], listing + chosen_outputs + [g.choosing, g.choose, g.chosen_bar],
                   **private)

    def star(result_id, *shown):
        result = studio_library().get(result_id) if result_id else None
        if result is None:
            raise refused("Select a result to star it.")
        try:
            result = studio_library().set_starred(result.id, not result.starred)
        except StudioError as exc:
            raise refused(str(exc))
        return {**show(*shown), **star_updates(result)}

    g.star.click(star, [g.selected, *view], listing + [g.recipe, g.info, g.star], **private)

    undoing = [g.trashed, g.deleted, g.deleted_note]

    def trash(result_ids: list, selected, shown) -> dict:
        """Move results to the trash; the page without them and an Undo that puts them all back."""
        label = result_label(studio_library(), result_ids[0]) if len(result_ids) == 1 else ""
        trashed = studio_library().trash_all(result_ids)
        said = f"Deleted {_md(label)}" if label else f"Deleted {len(trashed)} result{'s' if len(trashed) != 1 else ''}"
        updates = {**show(*shown), g.trashed: trashed, g.deleted: gr.update(visible=bool(trashed)),
                   g.deleted_note: gr.update(value=said if trashed else "")}
        if selected in trashed:
            updates.update(describe(None))
        return updates

    def delete(result_id, *shown):
        return trash([result_id] if result_id else [], result_id, shown)

    g.delete.click(delete, [g.selected, *view], listing + details + undoing, **private)

    def delete_chosen(chosen, selected, *shown):
        return {**trash(list(chosen or []), selected, (*shown[:-1], [])), **chosen_updates([])}

    g.delete_chosen.click(delete_chosen, [g.chosen, g.selected, *view],
                          listing + details + undoing + chosen_outputs, **private)

    def undo(trashed, *shown):
        if not trashed:
            raise refused("Nothing to undo: no result was deleted since the gallery opened.")
        try:
            studio_library().restore_all(trashed)
        except StudioError as exc:
            raise refused(str(exc))
        updates = {**show(*shown), g.trashed: [], g.deleted: gr.update(visible=False),
                   g.deleted_note: gr.update(value="")}
        if len(trashed) == 1:  # the result deleted is shown again, as it was
            updates.update(describe(trashed[0]))
        return updates

    g.undo.click(undo, [g.trashed, *view], listing + details + undoing, **private)

    def export(result_ids):
        try:
            path = export_zip(studio_library(), result_ids, settings.output_dir / ".ui" / "exports")
        except StudioError as exc:
            raise refused(str(exc))
        return gr.update(value=str(path), visible=True)

    g.export.click(lambda result_id: export([result_id] if result_id else []), g.selected, g.export_file,
                   **private)
    g.export_chosen.click(lambda chosen: export(list(chosen or [])), g.chosen, g.export_file, **private)

    def pick(result_id):
        if not result_id:
            return None, gr.update(value="Select a result to pick it for comparing.", visible=True)
        label = _md(result_label(get_studio(settings).engine.library, result_id))
        return result_id, gr.update(value=f"Picked {label} (A): select another result, then Compare.", visible=True)

    g.pick.click(pick, g.selected, [g.picked, g.differences], **private)

    def compare(picked, selected):
        library = get_studio(settings).engine.library
        first, second = (library.get(i) if i else None for i in (picked, selected))
        if first is None or second is None or picked == selected:
            return (gr.update(), None, None,
                    gr.update(value="Pick a result, select another, then Compare.", visible=True))
        rows = result_differences(library, first, second)
        table = ["| | A (picked) | B (selected) |", "|---|---|---|"]
        table += [f"| **{_md(what)}** | {_md(a)} | {_md(b)} |" for what, a, b in rows]
        count = f"{len(rows)} difference{'s' if len(rows) != 1 else ''}" if rows else "the same recipe"
        text = (f"**A** {_md(result_label(library, first.id))} · **B** {_md(result_label(library, second.id))}: "
                + count + ("\n\n" + "\n".join(table) if rows else ""))
        return (gr.update(), None if first.missing else str(first.media),
                None if second.missing else str(second.media), gr.update(value=text, visible=True))

    g.compare.click(compare, [g.picked, g.selected], [g.compare_view, g.compare_a, g.compare_b, g.differences],
                    **private)
