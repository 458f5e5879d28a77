"""Controls made in the studio from a plain video (depth so far): the `extract` verb, VACE depth
from a normal video, and the annotator's resolution like a checkpoint's (Tiny twin on CPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import read_video
from tests.media_fixtures import make_video, speech_like, write_wav
from wan_studio.cli import main as cli_main
from wan_studio.media.extract import depth_frames


@pytest.fixture
def clip(tmp_path):
    return make_video(tmp_path / "dance.mp4", (160, 120), fps=24, seconds=1.0)


def test_extract_depth_keeps_the_inputs_frames_fps_and_size(settings, clip, tmp_path, capsys):
    output = tmp_path / "depth.mp4"
    code = cli_main(["extract", "depth", str(clip), "--annotator", "tiny-depth", "--output", str(output)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.strip() == str(output)
    assert "depth: 24/24 frames" in err  # progress per chunk
    made, source = read_video(output), read_video(clip)
    assert (made["count"], made["fps"], made["width"], made["height"]) == (source["count"], 24.0, 160, 120)
    frames = made["frames"].astype(int)
    assert np.abs(frames[..., 0] - frames[..., 1]).max() <= 3  # grey (up to the codec's chroma rounding)
    assert frames.min() <= 10 and frames.max() >= 245  # the clip's own range, stretched to black..white
    assert np.abs(frames[0] - frames[-1]).mean() > 1  # the moving picture gives moving depth


def test_extract_writes_into_the_outputs_controls_folder_by_default(settings, clip, capsys):
    assert cli_main(["extract", "depth", str(clip), "--annotator", "tiny-depth", "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == str(settings.output_dir / "controls" / "dance-depth.mp4") and err == ""
    assert read_video(out.strip())["count"] == 24


def test_one_scale_for_the_whole_clip():
    """Depth is scaled over the clip, not per frame: a frame whose scene is twice as near stays brighter."""
    ramp = torch.linspace(0, 1, 64).repeat(64, 1)
    maps = torch.stack([ramp, 2 * ramp])
    far, near = (np.asarray(frame)[..., 0].astype(int) for frame in depth_frames(maps))
    assert near[:, -1].min() >= 250 and far[:, -1].max() <= 135  # the same spot: twice the depth value
    assert far[:, 0].max() == near[:, 0].max() == 0


@pytest.mark.parametrize("problem, fragment", [
    ("missing", "was not found"),
    ("audio", "speech.wav"),
])
def test_bad_videos_are_named_and_nothing_is_written(settings, tmp_path, capsys, problem, fragment):
    source = tmp_path / "nothere.mp4" if problem == "missing" else write_wav(tmp_path / "speech.wav", speech_like(1.0), 16000)
    assert cli_main(["extract", "depth", str(source), "--annotator", "tiny-depth"]) == 2
    assert fragment in capsys.readouterr().err
    assert not (settings.output_dir / "controls").exists()


def test_other_bad_arguments_get_their_own_message(settings, clip, tmp_path, capsys):
    assert cli_main(["extract", "depth", str(clip), "--annotator", "nope"]) == 2
    assert "Unknown annotator 'nope'" in capsys.readouterr().err
    assert cli_main(["extract", "depth", str(clip), "--annotator", "tiny-depth", "--output", str(tmp_path / "d.gif")]) == 2
    assert "written as MP4" in capsys.readouterr().err


def test_without_the_hub_the_real_annotator_names_its_download_command(settings, clip, capsys):
    assert cli_main(["extract", "depth", str(clip)]) == 2
    err = capsys.readouterr().err
    assert "Depth Anything V2 Small" in err and "python -m wan_studio download depth-anything-v2-small" in err
    assert not (settings.output_dir / "controls").exists()


def test_vace_depth_from_a_plain_video_generates_and_its_recipe_reruns_without_extracting(engine, tmp_path, monkeypatch):
    """VACE's depth sub-mode takes a normal video: the depth control is made first (progress says
    so), then the video. The result keeps the control as its input: a re-run makes the same video
    without extracting again."""
    import pipelines.vace as vace
    from wan_studio.media import extract
    from wan_studio.requests import VACERequest, absolutize_inputs, request_from_dict

    clip = make_video(tmp_path / "walk.mp4", (160, 120), fps=24, seconds=1.0)
    controls, events = [], []
    original = vace.call_pipeline
    monkeypatch.setattr(vace, "call_pipeline", lambda pipe, request, callback, **kwargs: (
        controls.append(kwargs["video"]), original(pipe, request, callback, **kwargs))[1])
    request = VACERequest(model="tiny-vace", prompt="a dancer", vace_mode="depth", video=str(clip), frames=9, seed=3)
    result = engine.generate(request.prepare(), on_progress=events.append)
    video = read_video(result.media)
    assert (video["count"], video["width"], video["height"]) == (9, 64, 48)
    extracting = [e for e in events if e.state == "extracting"]
    assert extracting[-1].describe() == "Extracting depth: 9/9 frames"
    assert events.index(extracting[-1]) < next(i for i, e in enumerate(events) if e.state == "loading")
    control = [np.asarray(frame).astype(int) for frame in controls[-1]]
    assert len(control) == 9 and control[0].shape == (48, 64, 3)
    assert all(np.abs(frame[..., 0] - frame[..., 2]).max() <= 3 for frame in control)  # depth is grey
    assert min(frame.min() for frame in control) <= 5 and max(frame.max() for frame in control) >= 250

    saved = result.recipe["request"]
    assert saved["control_source"] == "control" and saved["video"] != "walk.mp4"
    assert result.recipe["extracted"]["video"] | {"seconds": 0} == {"kind": "depth", "annotator": "tiny-depth",
                                                                     "from": "walk.mp4", "seconds": 0}
    copy = engine.library.root / saved["video"]
    assert read_video(copy)["count"] == 9  # the control the run used, kept with the result

    def no_extraction(*args, **kwargs):
        raise AssertionError("a re-run must use the kept control, not extract again")

    monkeypatch.setattr(extract, "control", no_extraction)
    again = engine.generate(request_from_dict(absolutize_inputs(saved, engine.library.root)).prepare())
    assert np.array_equal(read_video(again.media)["frames"], video["frames"])
    assert not list((engine.library.root / ".scratch").iterdir())  # nothing left behind
