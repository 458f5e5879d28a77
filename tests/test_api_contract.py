"""A stable API: the named endpoints keep the parameters of the snapshot (tests/data/api_snapshot.json),
and a client written against an earlier release still calls them unchanged."""

from __future__ import annotations

import json

import pytest

from tests.api_snapshot import REFRESH, SNAPSHOT, additions, breaking_changes, current_api
from tests.conftest import read_video


@pytest.fixture(scope="module")
def api_now(tmp_path_factory):
    from wan_studio.settings import load_settings

    return current_api(load_settings(output_dir=tmp_path_factory.mktemp("api-outputs")))


def test_no_endpoint_or_parameter_of_the_snapshot_is_removed_renamed_moved_or_newly_required(api_now):
    recorded = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    broken = breaking_changes(recorded, api_now)
    assert not broken, ("The API changed under its clients:\n  " + "\n  ".join(broken) + "\nGive new inputs a "
                        "default after the existing ones; if the break is meant (a release that says so in the "
                        f"Gradio API section of docs/api-and-cli.md), refresh the snapshot: {REFRESH}")


def test_the_snapshot_records_every_endpoint_and_parameter(api_now):
    recorded = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    added = additions(recorded, api_now)
    assert not added, ("Compatible additions the snapshot does not record yet:\n  " + "\n  ".join(added) +
                       f"\nRecord them: {REFRESH}")


def test_the_check_names_each_kind_of_break_and_allows_optional_additions():
    def param(name, required=True, kind="str"):
        return {"name": name, "required": required, "type": kind}

    old = {"/a": {"parameters": [param("model"), param("clip", kind="filepath"), param("options", False)],
                  "returns": ["filepath"]},
           "/gone": {"parameters": [], "returns": []}}
    new = {"/a": {"parameters": [param("model"), param("video", kind="filepath"), param("options"),
                                 param("strength"), param("extra", False)], "returns": ["filepath"]},
           "/b": {"parameters": [param("x")], "returns": []}}
    assert breaking_changes(old, new) == [
        "/a: parameter 'clip' was removed or renamed",
        "/a: parameter 'options' became required",
        "/a: new parameter 'video' is required; give it a default "
        "(a file input: added_later=True in its request_field)",
        "/a: new parameter 'strength' is required; give it a default "
        "(a file input: added_later=True in its request_field)",
        "/gone was removed",
    ]
    moved = {"/a": {"parameters": [param("model"), param("options", False), param("clip", kind="filepath")],
                    "returns": ["filepath"]}}
    assert breaking_changes({"/a": old["/a"]}, moved) == [
        "/a: parameter 'clip' moved from place 2 to 3 (calls by position would break)",
        "/a: parameter 'options' moved from place 3 to 2 (calls by position would break)"]
    grown = {"/a": {"parameters": [*old["/a"]["parameters"], param("driving_video", False, "filepath")],
                    "returns": ["filepath"]}, "/gone": old["/gone"], "/b": new["/b"]}
    assert breaking_changes(old, grown) == []
    assert additions(old, grown) == ["/b (new endpoint)", "/a: optional parameter 'driving_video'"]


def test_a_client_of_the_previous_release_calls_animate_and_hears_the_valid_options(running_app, tmp_path):
    """Before the plain driving video, /animate took (model, prompt, image, pose, face, background,
    mask, options): that call works as it did, by position and by name, and the driving video is
    an optional parameter after options."""
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    from tests.media_fixtures import make_image, make_video

    image = handle_file(str(make_image(tmp_path / "a.png", (96, 64))))
    pose = handle_file(str(make_video(tmp_path / "pose.mp4", (64, 64), fps=30, seconds=0.5)))
    face = handle_file(str(make_video(tmp_path / "face.mp4", (64, 64), fps=30, seconds=0.5, source="testsrc")))
    client = Client(running_app.url, verbose=False)
    out, recipe = client.predict("tiny-animate", "a dancer", image, pose, face, None, None, {"seed": 1},
                                 api_name="/animate")
    assert recipe["mode"] == "animate" and read_video(out)["count"] == recipe["output"]["frames"]
    assert "extracted" not in recipe or not recipe["extracted"]
    out, recipe = client.predict(model="tiny-animate", prompt="a dancer", image=image, pose_video=pose,
                                 face_video=face, background_video=None, mask_video=None, options={"seed": 2},
                                 api_name="/animate")
    assert recipe["request"]["seed"] == 2
    with pytest.raises(AppError, match="Animate needs a pre-processed pose video"):
        client.predict("tiny-animate", "a dancer", image, None, None, None, None, {"seed": 1}, api_name="/animate")
    # an option that is not one: named, with the closest and every valid one
    with pytest.raises(AppError, match=r"Unknown option for /t2v: 'seeds' \(did you mean 'seed'\?\); the options are "
                                       r"'.*'frames', .*'seed', .*'width'"):
        client.predict("tiny-t2v", "a lake", {"seeds": 1}, api_name="/t2v")
