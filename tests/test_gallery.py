"""The gallery's engine side: pages newest first, reload of a recipe, zip export, last frame; and
the studio's rules that need no browser (which modes a generation offers, the cost line, saved defaults)."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from tests.media_fixtures import make_image, make_video
from wan_studio.errors import StudioError
from wan_studio.runtime.gallery import export_zip, gallery_page, reload_request, save_last_frame
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
    assert not sidebar_status("2.2")["vace"].enabled
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


def test_recipe_differences_name_each_field_that_differs_in_request_order():
    from wan_studio.runtime.gallery import recipe_differences

    first = {"request": {"mode": "t2v", "prompt": "a red kite", "steps": 2, "seed": 1}, "memory": {"plan": "max-speed"}}
    second = {"request": {"mode": "t2v", "prompt": "a blue kite", "steps": 2, "seed": 5, "cache": "balanced"},
              "memory": {"plan": "low-vram"}}
    assert recipe_differences(first, second) == [
        ("prompt", "a red kite", "a blue kite"), ("seed", 1, 5), ("cache", None, "balanced"),
        ("memory plan", "max-speed", "low-vram")]
    assert recipe_differences(first, first) == []
