"""The gallery's engine side: pages newest first, search and filters, stars, reload of a recipe, zip export
of one result or several, delete and undo of several, last frame; and
the studio's rules that need no browser (which modes a generation offers, the cost line, saved defaults)."""

from __future__ import annotations

import json
import zipfile
from datetime import datetime

import numpy as np
import pytest

from tests.media_fixtures import make_image, make_video
from wan_studio.errors import StudioError
from wan_studio.runtime.gallery import (
    GallerySearch,
    export_zip,
    gallery_page,
    gallery_view,
    reload_request,
    save_last_frame,
    search_results,
)
from wan_studio.runtime.library import OutputLibrary


def saved_i2v(lib: OutputLibrary, tmp_path, result_id: str):
    source = make_image(tmp_path / f"{result_id}-src.png", (96, 64))
    copied = lib.copy_inputs(result_id, {"image": [str(source)]})
    request = {"mode": "i2v", "model": "tiny-i2v", "prompt": "a slow pan", "image": copied["image"][0], "seed": 7,
               "steps": 2, "frames": 9, "width": 64, "height": 64}
    frames = np.random.default_rng(0).integers(0, 255, (9, 64, 64, 3), dtype=np.uint8)
    return lib.save_video(frames, 16, {"mode": "i2v", "request": request, "inputs": copied}, result_id=result_id)


def test_pages_are_newest_first_and_survive_files_deleted_by_hand(tmp_path):
    lib = OutputLibrary(tmp_path / "out")
    results = [saved_i2v(lib, tmp_path, f"2026010{n}-000000-i2v-00000{n}") for n in range(1, 6)]
    results[4].media.unlink()
    results[3].thumbnail.unlink()
    first, pages = gallery_page(lib, 1, per_page=2)
    assert pages == 3 and [e.id for e in first] == [results[4].id, results[3].id]
    assert first[0].missing and "(file missing)" in first[0].caption and first[0].caption.startswith("[I2V] a slow pan")
    assert first[1].thumbnail is None and not first[1].missing
    last, _ = gallery_page(lib, 99, per_page=2)  # clamped to the last page
    assert [e.id for e in last] == [results[0].id]
    assert gallery_page(OutputLibrary(tmp_path / "empty"), 1) == ([], 1)


def test_reload_gives_the_request_with_absolute_inputs_or_says_what_is_gone(tmp_path):
    lib = OutputLibrary(tmp_path / "out")
    result = saved_i2v(lib, tmp_path, "20260101-000000-i2v-aaaaaa")
    data = reload_request(lib, result.id)
    assert data["seed"] == 7 and data["prompt"] == "a slow pan"
    assert data["image"] == str(lib.root / "20260101-000000-i2v-aaaaaa.inputs" / "image.png")

    from wan_studio.requests import request_from_dict

    assert request_from_dict(data).seed == 7  # it re-validates as it is
    (lib.root / "20260101-000000-i2v-aaaaaa.inputs" / "image.png").unlink()
    with pytest.raises(StudioError, match="image of result 20260101-000000-i2v-aaaaaa .*was deleted"):
        reload_request(lib, result.id)
    with pytest.raises(StudioError, match="no result"):
        reload_request(lib, "nope")


def test_export_zips_video_recipe_thumbnail_and_inputs(tmp_path):
    lib = OutputLibrary(tmp_path / "out")
    result = saved_i2v(lib, tmp_path, "20260101-000000-i2v-bbbbbb")
    archive = export_zip(lib, result.id, tmp_path / "exports")
    with zipfile.ZipFile(archive) as z:
        names = set(z.namelist())
        recipe = json.loads(z.read(f"{result.id}.json"))
    assert names == {f"{result.id}.mp4", f"{result.id}.json", f"{result.id}.jpg", f"{result.id}.inputs/image.png"}
    assert recipe["request"]["seed"] == 7
    result.media.unlink()
    with pytest.raises(StudioError, match="was deleted"):
        export_zip(lib, result.id, tmp_path / "exports")


def test_last_frame_of_a_video(tmp_path):
    clip = make_video(tmp_path / "clip.mp4", (96, 64), fps=16, seconds=1.0, source="testsrc")
    from PIL import Image

    from wan_studio import media

    frame = Image.open(save_last_frame(clip, tmp_path / "last.png"))
    expected = media.load_video_frames(clip)[-1]
    assert frame.size == (96, 64)
    assert np.abs(np.asarray(frame, float) - np.asarray(expected, float)).mean() < 3
    with pytest.raises(StudioError, match="last frame of nothing.mp4"):
        save_last_frame(tmp_path / "nothing.mp4", tmp_path / "x.png")


def test_modes_follow_the_catalog_and_the_engine():
    from ui.availability import mode_status, sidebar_status
    from wan_studio.requests import request_types

    tiny = sidebar_status("tiny")
    assert all(tiny[m].enabled for m in ("t2v", "i2v", "ti2v", "flf2v", "v2v", "vace", "animate"))
    if "s2v" not in request_types():  # until the S2V wrapper lands (issue 9)
        assert not tiny["s2v"].enabled and "not wired into the engine" in tiny["s2v"].reason
    wan21 = sidebar_status("2.1")
    assert not wan21["animate"].enabled and wan21["animate"].reason.startswith("Wan 2.1 has no ANIMATE checkpoint")
    wan22 = sidebar_status("2.2")
    assert wan22["vace"].enabled  # VACE-Fun A14B
    assert not wan22["v2v"].enabled and wan22["v2v"].reason.startswith("Wan 2.2 has no V2V checkpoint")
    # the same rule turns S2V on once the engine has a request type for it (issue 9)
    wired = {"t2v", "s2v"}
    assert mode_status("s2v", "2.2", wired).enabled
    assert not mode_status("i2v", "2.2", wired).enabled


def test_cost_line_names_checkpoint_frames_size_time_and_plan(settings):
    from ui.panels import _cost
    from wan_studio.requests import T2VRequest

    line = _cost(T2VRequest(model="tiny-t2v", prompt="x", width=96, height=64, frames=13, steps=4, seed=1), settings)
    assert "Tiny T2V" in line and "13 frames" in line and "96x64" in line
    assert "GiB" in line and "plan" in line
    assert "· under a second ·" in line and "about under" not in line  # said plainly
    # the steps count: 100 steps are said to take longer than 4
    slow = _cost(T2VRequest(model="tiny-t2v", prompt="x", width=96, height=64, frames=13, steps=100, seed=1), settings)
    assert "under a second" not in slow and "· about " in slow


def test_defaults_are_saved_into_config_json_keeping_other_keys(tmp_path, monkeypatch):
    from wan_studio.settings import load_settings, save_defaults

    config = tmp_path / "config.json"
    config.write_text(json.dumps({"port": 9000, "output_dir": "outs"}))
    monkeypatch.setenv("WAN_STUDIO_CONFIG", str(config))
    save_defaults({"default_generation": "2.1"})
    assert json.loads(config.read_text()) == {"port": 9000, "output_dir": "outs", "default_generation": "2.1"}
    assert load_settings().default_generation == "2.1"


def test_results_differ_by_their_fields_in_request_order_not_by_bookkeeping(tmp_path):
    """Only what a person chose differently is listed: the same upload copied twice, the lineage's
    fields (`extra`, `continue_from`) and unset values are not differences; unset reads "—"."""
    from wan_studio.runtime.gallery import result_differences

    lib = OutputLibrary(tmp_path / "out")
    frames = np.zeros((9, 64, 64, 3), np.uint8)

    def saved(result_id: str, plan: str = "max-speed", **changes):
        copied = lib.copy_inputs(result_id, {"image": [str(tmp_path / "upload.png")]})
        request = {"mode": "i2v", "prompt": "a red kite", "image": copied["image"][0], "steps": 2, "seed": 1,
                   "extra": {}, "continue_from": None, **changes}
        recipe = {"mode": "i2v", "request": request, "inputs": copied, "memory": {"plan": plan}}
        return lib.save_video(frames, 16, recipe, result_id=result_id)

    make_image(tmp_path / "upload.png", (96, 64))  # one upload, copied beside each result
    first = saved("20260101-000000-i2v-aaaaaa")
    second = saved("20260101-000001-i2v-bbbbbb", prompt="a blue kite", seed=5, cache="balanced",
                   extra={"parent": "20260101-000000-i2v-aaaaaa"}, continue_from="some.inputs/continue_from.mp4",
                   plan="low-vram")
    assert result_differences(lib, first, second) == [
        ("prompt", "a red kite", "a blue kite"), ("seed", "1", "5"), ("cache", "—", "balanced"),
        ("memory plan", "max-speed", "low-vram")]
    assert result_differences(lib, first, first) == []
    make_image(tmp_path / "upload.png", (96, 64), color=(200, 20, 20))  # another picture, same name
    third = saved("20260101-000002-i2v-cccccc")
    assert result_differences(lib, first, third) == [("image", "image.png", "image.png")]


def test_a_finished_result_is_described_by_its_file_and_what_was_done(settings, capsys):
    """An upscale keeps its source's request (64x64, 9 frames): its details and its differences from
    the source come from the files (128x128) and from the finishing, never "the same recipe"."""
    from pathlib import Path

    from wan_studio.cli import main as cli_main
    from wan_studio.runtime.gallery import made_by, output_facts, result_differences, result_label

    assert cli_main(["generate", "--mode", "t2v", "--model", "tiny-t2v", "--prompt", "a red kite", "--frames", "9",
                     "--size", "64x64", "--steps", "2", "--seed", "3", "--quiet"]) == 0
    source_path = Path(capsys.readouterr().out.strip())
    assert cli_main(["upscale", str(source_path), "--scale", "2", "--quiet"]) == 0
    upscaled_path = Path(capsys.readouterr().out.strip())
    lib = OutputLibrary(settings.output_dir)
    source, upscaled = lib.get(source_path.stem), lib.get(upscaled_path.stem)
    assert (upscaled.recipe["request"]["width"], upscaled.recipe["request"]["frames"]) == (64, 9)  # the request's

    facts = output_facts(upscaled)
    assert (facts.width, facts.height, facts.frames, facts.fps, facts.from_file) == (128, 128, 9, 16, True)
    assert facts.describe() == "128x128 · 9 frames · 16 fps · 0.56 s"
    when = f"{source.id[:4]}-{source.id[4:6]}-{source.id[6:8]} {source.id[9:11]}:{source.id[11:13]}:{source.id[13:15]}"
    assert result_label(lib, source.id) == f"“a red kite” · T2V · {when}"
    assert made_by(lib, source) == "generated"
    assert made_by(lib, upscaled) == f"upscaled ×2 with tiny-upscaler from “a red kite” · T2V · {when}"
    assert result_differences(lib, source, upscaled) == [
        ("made", "generated", "upscaled ×2 with tiny-upscaler from A"), ("size", "64x64", "128x128")]

    upscaled.media.unlink()  # gone: what its recipe recorded when it was saved
    facts = output_facts(lib.get(upscaled.id))
    assert (facts.width, facts.frames, facts.from_file) == (128, 9, False)


def test_delete_moves_every_file_to_the_trash_and_undo_puts_them_back(tmp_path):
    from wan_studio.runtime.library import TRASH

    lib = OutputLibrary(tmp_path / "out")
    kept = saved_i2v(lib, tmp_path, "20260101-000000-i2v-aaaaaa")
    result = saved_i2v(lib, tmp_path, "20260101-000001-i2v-bbbbbb")
    before = {path.relative_to(lib.root): path.read_bytes() for path in lib.root.rglob("*") if path.is_file()}
    assert lib.root / "20260101-000001-i2v-bbbbbb.inputs" / "image.png" in {lib.root / p for p in before}

    assert lib.trash(result.id)
    assert [r.id for r in lib.list()] == [kept.id] and lib.get(result.id) is None
    assert not list(lib.root.glob("20260101-000001-i2v-bbbbbb*"))  # mp4, jpg, json and inputs all moved
    assert (lib.root / TRASH / result.id).is_dir()

    restored = lib.restore(result.id)
    after = {path.relative_to(lib.root): path.read_bytes() for path in lib.root.rglob("*") if path.is_file()}
    assert after == before and not (lib.root / TRASH / result.id).exists()
    assert [r.id for r in lib.list()] == [result.id, kept.id] and restored.recipe["request"]["seed"] == 7
    assert reload_request(lib, result.id)["seed"] == 7  # its input copy is back too
    with pytest.raises(StudioError, match="no longer in the trash"):
        lib.restore(result.id)

    result.media.unlink()  # a result whose file was deleted by hand goes to the trash all the same
    assert lib.trash(result.id) and not result.recipe_path.exists()
    result.recipe_path.write_text("{}")  # the name is taken again: the restore says so, and moves nothing
    with pytest.raises(StudioError, match=f"{result.id}.json is in the output folder again"):
        lib.restore(result.id)
    assert (lib.root / TRASH / result.id / f"{result.id}.json").is_file()
    assert not lib.trash("nope") and lib.trash(kept.id)


def test_trash_older_than_a_day_is_emptied_when_the_studio_starts(settings):
    import os
    import time

    from wan_studio.runtime.library import TRASH
    from wan_studio.runtime.studio import Studio

    lib = OutputLibrary(settings.output_dir)
    frames = np.zeros((5, 32, 32, 3), np.uint8)
    old, recent = (lib.save_video(frames, 16, {"mode": "t2v"}, result_id=f"20260101-00000{n}-t2v-aaaaaa")
                   for n in (1, 2))
    assert lib.trash(old.id) and lib.trash(recent.id)
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(lib.root / TRASH / old.id, (two_days_ago, two_days_ago))
    studio = Studio(settings)
    try:
        studio.start()
    finally:
        studio.stop()
    assert sorted(path.name for path in (lib.root / TRASH).iterdir()) == [recent.id]
    assert lib.restore(recent.id).id == recent.id


def saved_made(lib: OutputLibrary, tmp_path, result_id: str, mode: str, prompt: str):
    """A result of `mode` saved under `result_id` (whose time says when it was made), with an input copy."""
    source = make_image(tmp_path / f"{result_id}-src.png", (64, 64))
    copied = lib.copy_inputs(result_id, {"image": [str(source)]})
    request = {"mode": mode, "prompt": prompt, "image": copied["image"][0], "seed": 11, "steps": 2}
    frames = np.random.default_rng(1).integers(0, 255, (5, 32, 32, 3), dtype=np.uint8)
    return lib.save_video(frames, 16, {"mode": mode, "request": request, "inputs": copied}, result_id=result_id)


# Wednesday 18 March 2026, 15:00: "this week" is from Monday the 16th, "this month" from the 1st
NOW = datetime(2026, 3, 18, 15, 0)
TODAY, MONDAY, LAST_SUNDAY, LAST_MONTH = ("20260318-101500-t2v-aaaaaa", "20260316-090000-i2v-bbbbbb",
                                          "20260315-230000-t2v-cccccc", "20260228-120000-vace-dddddd")


@pytest.fixture
def four_results(tmp_path):
    lib = OutputLibrary(tmp_path / "out")
    saved_made(lib, tmp_path, TODAY, "t2v", "A Red Kite over the sea")
    saved_made(lib, tmp_path, MONDAY, "i2v", "a red balloon")
    saved_made(lib, tmp_path, LAST_SUNDAY, "t2v", "kites above a bored cat")
    saved_made(lib, tmp_path, LAST_MONTH, "vace", "red kite, reddish sky")
    return lib


def test_search_takes_prompt_words_mode_date_and_stars_together(four_results):
    """Every word must begin a word of the prompt, in any case ("red" finds "Red" and "reddish", not
    "bored"); the mode, the date (today, this week from Monday, this month) and "starred only" narrow it
    further, and the pages count only what is found."""
    lib = four_results

    def found(**search) -> list[str]:
        return search_results(lib, GallerySearch(**search), now=NOW)

    assert found() == [TODAY, MONDAY, LAST_SUNDAY, LAST_MONTH]
    assert found(text="red") == [TODAY, MONDAY, LAST_MONTH]
    assert found(text="  KITE   red ") == [TODAY, LAST_MONTH]
    assert found(text="kit") == [TODAY, LAST_SUNDAY, LAST_MONTH]  # "kites" too
    assert found(text="red kite dog") == []
    assert found(mode="t2v") == [TODAY, LAST_SUNDAY]
    assert found(mode="t2v", text="sea") == [TODAY]
    assert found(made="today") == [TODAY]
    assert found(made="week") == [TODAY, MONDAY]
    assert found(made="month") == [TODAY, MONDAY, LAST_SUNDAY]
    assert found(starred=True) == []

    lib.set_starred(LAST_MONTH, True)
    assert found(starred=True) == [LAST_MONTH] and found(starred=True, text="kite") == [LAST_MONTH]
    assert found(starred=True, made="month") == []

    view = gallery_view(lib, 2, per_page=1, search=GallerySearch(text="red"), now=NOW)
    assert (view.page, view.pages, view.found, view.total) == (2, 3, 3, 4)
    assert [entry.id for entry in view.entries] == [MONDAY]
    assert view.modes == ["i2v", "t2v", "vace"]
    last = gallery_view(lib, 99, per_page=2, search=GallerySearch(text="red"), now=NOW)  # clamped to the last page
    assert (last.page, [entry.id for entry in last.entries]) == (2, [LAST_MONTH])
    assert last.entries[0].starred and last.entries[0].caption == "★ [VACE] red kite, reddish sky"
    assert gallery_view(lib, 1, search=GallerySearch(text="dog")).entries == []
    with pytest.raises(StudioError, match="Unknown date filter 'year'"):
        GallerySearch(made="year")


def test_a_recipe_changed_or_removed_since_the_last_search_is_searched_as_it_is_now(four_results):
    lib = four_results
    assert search_results(lib, GallerySearch(text="sea")) == [TODAY]
    recipe = json.loads((lib.root / f"{TODAY}.json").read_text())
    recipe["request"]["prompt"] = "a green dragon over the hills"  # edited by hand, in place
    (lib.root / f"{TODAY}.json").write_text(json.dumps(recipe))
    assert search_results(lib, GallerySearch(text="sea")) == []
    assert search_results(lib, GallerySearch(text="dragon")) == [TODAY]
    (lib.root / f"{MONDAY}.json").unlink()  # the recipe deleted by hand: the video is still listed, unsearchable
    assert search_results(lib, GallerySearch(text="balloon")) == []
    assert MONDAY in search_results(lib)


def test_a_star_lives_in_the_recipe_survives_a_restart_and_leaves_the_request_alone(four_results):
    from wan_studio.runtime.library import TRASH

    lib = four_results
    path = lib.root / f"{MONDAY}.json"
    saved = path.read_bytes()
    request = reload_request(lib, MONDAY)
    assert not lib.get(MONDAY).starred
    assert lib.set_starred(MONDAY, True).starred

    restarted = OutputLibrary(lib.root)  # a new process reads the folder afresh
    assert restarted.get(MONDAY).starred and json.loads(path.read_text())["starred"] is True
    assert reload_request(restarted, MONDAY) == request  # reproducing it is unchanged
    assert not list(lib.root.glob(".*.partial")), "the rewrite left a temporary file"
    assert restarted.trash(MONDAY) and json.loads((lib.root / TRASH / MONDAY / f"{MONDAY}.json").read_text())["starred"]
    assert restarted.restore(MONDAY).starred  # deleted and undone: still starred
    with zipfile.ZipFile(export_zip(lib, MONDAY, lib.root.parent / "exports")) as archive:
        assert json.loads(archive.read(f"{MONDAY}.json"))["starred"] is True

    assert not lib.set_starred(MONDAY, False).starred
    assert path.read_bytes() == saved  # unstarred, the recipe is byte for byte as it was saved
    lib.get(TODAY).recipe_path.unlink()  # a video without a recipe cannot hold a star: said, not ignored
    with pytest.raises(StudioError, match=f"Result {TODAY} has no recipe .* cannot be starred"):
        lib.set_starred(TODAY, True)


def test_several_results_go_to_the_trash_together_and_one_undo_brings_all_back(four_results):
    from wan_studio.runtime.library import TRASH

    lib = four_results
    before = {path.relative_to(lib.root): path.read_bytes() for path in lib.root.rglob("*") if path.is_file()}
    assert lib.trash_all([TODAY, LAST_SUNDAY, TODAY, "no-such-result"]) == [TODAY, LAST_SUNDAY]
    assert [r.id for r in lib.list()] == [MONDAY, LAST_MONTH]
    assert not list(lib.root.glob(f"{TODAY}*")) and not list(lib.root.glob(f"{LAST_SUNDAY}*"))

    assert [r.id for r in lib.restore_all([TODAY, LAST_SUNDAY])] == [TODAY, LAST_SUNDAY]
    after = {path.relative_to(lib.root): path.read_bytes() for path in lib.root.rglob("*") if path.is_file()}
    assert after == before and not any((lib.root / TRASH).iterdir())

    # all or nothing: one of them cannot go back (its name is taken again), so neither moves
    assert lib.trash_all([TODAY, LAST_SUNDAY]) == [TODAY, LAST_SUNDAY]
    (lib.root / f"{LAST_SUNDAY}.json").write_text("{}")
    with pytest.raises(StudioError, match=f"{LAST_SUNDAY}.json is in the output folder again"):
        lib.restore_all([TODAY, LAST_SUNDAY])
    assert lib.get(TODAY) is None and (lib.root / TRASH / TODAY / f"{TODAY}.mp4").is_file()
    (lib.root / f"{LAST_SUNDAY}.json").unlink()
    assert [r.id for r in lib.restore_all([TODAY, LAST_SUNDAY])] == [TODAY, LAST_SUNDAY]
    with pytest.raises(StudioError, match=f"Result {TODAY} is no longer in the trash"):
        lib.restore_all([TODAY])


def test_several_results_export_to_one_zip_that_another_studio_reloads(four_results, tmp_path):
    lib = four_results
    archive = export_zip(lib, [TODAY, LAST_MONTH], tmp_path / "exports")
    assert archive.name.startswith("2-results-") and archive.suffix == ".zip"
    with zipfile.ZipFile(archive) as z:
        names = set(z.namelist())
        assert names == {f"{rid}{ext}" for rid in (TODAY, LAST_MONTH) for ext in (".mp4", ".json", ".jpg")} | {
            f"{TODAY}.inputs/image.png", f"{LAST_MONTH}.inputs/image.png"}
        z.extractall(tmp_path / "elsewhere")
    elsewhere = OutputLibrary(tmp_path / "elsewhere")  # unzipped into another output folder: listed and reloadable
    assert [r.id for r in elsewhere.list()] == [TODAY, LAST_MONTH]
    data = reload_request(elsewhere, LAST_MONTH)
    assert data["prompt"] == "red kite, reddish sky"
    assert data["image"] == str(elsewhere.root / f"{LAST_MONTH}.inputs" / "image.png")
    assert not list((tmp_path / "exports").glob(".*")), "the export left a temporary file"

    lib.get(MONDAY).media.unlink()  # one video gone: the export stops and says which result to unselect
    with pytest.raises(StudioError, match="The video of “a red balloon” · I2V · 2026-03-16 09:00:00 was deleted"
                                          ".*unselect it"):
        export_zip(lib, [TODAY, MONDAY], tmp_path / "exports")
    with pytest.raises(StudioError, match="No result to export"):
        export_zip(lib, [], tmp_path / "exports")
