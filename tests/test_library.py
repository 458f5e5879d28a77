"""The output library: atomic writes, embedded recipes, listing that survives hand edits."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import read_video
from wan_studio.media.recipe import read_embedded_recipe
from wan_studio.runtime.library import OutputLibrary, write_mp4


def frames(count=9, width=64, height=48, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 255, (count, height, width, 3), dtype=np.uint8)


def test_save_writes_mp4_thumbnail_and_recipe(tmp_path):
    lib = OutputLibrary(tmp_path)
    result = lib.save_video(frames(), 16, {"mode": "t2v", "request": {"prompt": "naïve \"quotes\" = ; # 狐狸\nline"}})
    video = read_video(result.media)
    assert (video["count"], video["width"], video["height"], video["fps"]) == (9, 64, 48, 16.0)
    assert result.thumbnail.stat().st_size > 0
    embedded = read_embedded_recipe(result.media)
    assert embedded["request"]["prompt"] == "naïve \"quotes\" = ; # 狐狸\nline"
    assert embedded["output"]["frames"] == 9
    assert not list(tmp_path.glob(".*")), "temporary files left behind"


def test_results_of_one_second_are_listed_newest_first(tmp_path):
    lib = OutputLibrary(tmp_path)
    made = [lib.save_image(frames(1)[0], {"mode": "preview", "request": {"prompt": str(n)}}) for n in range(6)]
    assert [r.id for r in lib.list()] == [r.id for r in reversed(made)]


def test_listing_is_newest_first_and_tolerates_files_removed_by_hand(tmp_path):
    lib = OutputLibrary(tmp_path)
    a = lib.save_video(frames(), 16, {"mode": "t2v"}, result_id="20260101-000000-t2v-aaaaaa")
    b = lib.save_video(frames(), 16, {"mode": "t2v"}, result_id="20260102-000000-t2v-bbbbbb")
    c = lib.save_video(frames(), 16, {"mode": "t2v"}, result_id="20260103-000000-t2v-cccccc")
    a.media.unlink()  # video deleted by hand
    b.recipe_path.unlink()  # recipe deleted by hand
    c.thumbnail.unlink()
    listed = lib.list()
    assert [r.id for r in listed] == [c.id, b.id, a.id]
    assert listed[2].missing and listed[2].recipe is not None
    assert listed[1].recipe is None and not listed[1].missing
    # deleting works whatever is left, and twice is harmless
    assert lib.delete(a.id) and lib.delete(b.id) and lib.delete(c.id)
    assert not lib.delete(c.id)
    assert lib.list() == []


def test_get_refuses_paths_outside_the_library(tmp_path):
    lib = OutputLibrary(tmp_path / "out")
    assert lib.get("../secret") is None and lib.get(".hidden") is None


def test_interrupted_encode_leaves_no_visible_file(tmp_path):
    bad = frames().astype(np.float32)
    with pytest.raises(ValueError):
        write_mp4(tmp_path / "x.mp4", bad, 16)
    assert not list(tmp_path.iterdir())
    lib = OutputLibrary(tmp_path)
    (tmp_path / ".20260101-t2v.partial.mp4").write_bytes(b"half")
    assert lib.list() == []
    assert lib.sweep_partials() == 1


def test_a_result_from_another_machine_brings_only_its_own_files(tmp_path):
    """What a cluster worker sends back (`result_files` there) is written here only as that result's
    files: nothing else of the library (the queue database, another result) can be written."""
    import json

    import pytest

    from wan_studio.runtime.library import OutputLibrary

    library = OutputLibrary(tmp_path)
    recipe = json.dumps({"id": "r1", "request": {}, "output": {"file": "r1.mp4"}}).encode()
    made = library.adopt({"r1.json": recipe, "r1.mp4": b"video", "r1.jpg": b"thumb", "r1.inputs/image.png": b"png"})
    assert made.id == "r1" and made.media.read_bytes() == b"video" and (tmp_path / "r1.inputs" / "image.png").is_file()
    for foreign in ({"queue.db": b"x"}, {"r2.mp4": b"x"}, {"r1.inputs/../queue.db": b"x"}):
        with pytest.raises(ValueError, match="not a file of result r1"):
            library.adopt({"r1.json": recipe, "r1.mp4": b"video", **foreign})
    elsewhere = json.dumps({"id": "r1", "request": {}, "output": {"file": "queue.db"}}).encode()
    with pytest.raises(ValueError, match="names 'queue.db', which did not come with it"):
        library.adopt({"r1.json": elsewhere, "r1.mp4": b"video"})
    assert not (tmp_path / "queue.db").exists()
