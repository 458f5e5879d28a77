"""Controls made in the studio from a plain video (depth, pose, face crops): the `extract` verb, VACE
depth and pose from a normal video, and the annotators' resolution like a checkpoint's (Tiny twins
on CPU). The Tiny annotators have random weights, so what they find is arbitrary: following a
person, drawing a skeleton and cropping a face are checked on given detections and keypoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import read_video
from tests.media_fixtures import make_video, speech_like, write_wav
from wan_studio.cli import main as cli_main
from wan_studio.media.extract.depth import depth_frames


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

    monkeypatch.setattr(extract, "controls", no_extraction)
    again = engine.generate(request_from_dict(absolutize_inputs(saved, engine.library.root)).prepare())
    assert np.array_equal(read_video(again.media)["frames"], video["frames"])
    assert not list((engine.library.root / ".scratch").iterdir())  # nothing left behind


# -- pose and face ---------------------------------------------------------------------------------
def test_the_main_person_is_followed_past_a_bigger_newcomer_and_a_missed_frame():
    from wan_studio.media.extract.people import follow

    walker = [(10 + 5 * t, 20, 40 + 5 * t, 90) for t in range(6)]
    frames = [
        [walker[0], (100, 10, 110, 30)],  # the largest person in the first frame is the one followed
        [walker[1]],
        [],  # the detector missed everyone: the last box stands
        [walker[3], (0, 0, 150, 120)],  # someone bigger walks in front: still the walker (overlaps most)
        [walker[4], (100, 0, 150, 120)],
        [(120, 0, 150, 40)],  # the walker is gone, someone else: the only one there
    ]
    box, followed = None, []
    for found in frames:
        box = follow(box, found)
        followed.append(box)
    assert followed[:5] == [walker[0], walker[1], walker[1], walker[3], walker[4]]
    assert followed[5] == (120, 0, 150, 40)


def test_the_skeleton_has_openposes_colours_and_widths():
    from wan_studio.media.extract import skeleton

    keypoints = np.zeros((17, 2))
    scores = np.ones(17)
    keypoints[5], keypoints[6] = (300, 200), (100, 200)  # left and right shoulder (COCO 5, 6)
    keypoints[8] = (100, 300)  # right elbow
    scores[[0, 1, 2, 3, 4, 7, 9, 10, 11, 12, 13, 14, 15, 16]] = 0.1  # everything else unsure
    frame = skeleton.draw(480, 640, keypoints, scores, threshold=0.3)
    assert skeleton.stroke_width(480, 640) == 1 and skeleton.stroke_width(1080, 1920) == 4
    assert tuple(frame[200, 300]) == (85, 255, 0)  # left shoulder: OpenPose point 5, the palette's 6th colour
    assert tuple(frame[200, 200]) == (255, 85, 0)  # the neck (between the shoulders): point 1
    assert tuple(frame[250, 100]) == (153, 102, 0)  # the right upper arm: limb 2 at 60 %
    assert tuple(frame[50, 50]) == (0, 0, 0) and frame[400:].max() == 0  # black, nothing for unsure points
    assert not skeleton.draw(480, 640, None, None, 0.3).any()  # nobody: a black frame


def test_face_crops_frame_the_face_and_stay_steady():
    from PIL import Image

    from wan_studio.media.extract.people import FACE_SIZE, Person, face_crops

    frames, people = [], []
    for t in range(9):
        picture = np.zeros((240, 320, 3), np.uint8)
        x = 100 + 4 * t
        picture[60:100, x - 20:x + 20] = (230, 40, 40)  # the face, moving right
        frames.append(Image.fromarray(picture))
        keypoints = np.zeros((17, 2))
        keypoints[0] = (x, 82)  # nose
        keypoints[1], keypoints[2] = (x + 8, 75), (x - 8, 75)  # eyes
        keypoints[3], keypoints[4] = (x + 18, 78), (x - 18, 78)  # ears
        jitter = 6 if t % 2 else -6  # the detector's noise, frame to frame
        keypoints[:5, 0] += jitter
        people.append(Person((x - 40, 50, x + 40, 230), keypoints, np.ones(17)))
    crops = face_crops(frames, people, threshold=0.3)
    assert len(crops) == 9 and all(crop.size == (FACE_SIZE, FACE_SIZE) for crop in crops)
    centre = np.asarray(crops[4])[FACE_SIZE // 2 - 40: FACE_SIZE // 2 + 40, FACE_SIZE // 2 - 40: FACE_SIZE // 2 + 40]
    assert centre[..., 0].mean() > 200 and centre[..., 2].mean() < 80  # the face fills the middle
    # steady: the face's column in the crop moves far less than the +-6 px jitter blown up to 512
    columns = [np.nonzero(np.asarray(crop)[FACE_SIZE // 2, :, 0] > 128)[0].mean() for crop in crops[2:7]]
    assert max(columns) - min(columns) < 0.5 * 12 * FACE_SIZE / (1.9 * 36)


@pytest.mark.parametrize("kind, size", [("pose", (160, 120)), ("face", (512, 512))])
def test_extract_pose_and_face_keep_the_count_and_fps(settings, clip, tmp_path, capsys, kind, size):
    output = tmp_path / f"{kind}.mp4"
    assert cli_main(["extract", kind, str(clip), "--annotator", "tiny-pose", "--output", str(output), "--quiet"]) == 0
    made = read_video(output)
    assert (made["count"], made["fps"], (made["width"], made["height"])) == (24, 24.0, size)


def test_a_video_with_nobody_in_it_is_refused_by_name(settings, clip, monkeypatch, capsys):
    from wan_studio.media.extract.people import People

    monkeypatch.setattr(People, "_boxes", lambda self, frames: [[] for _ in frames])  # a detector that finds nobody
    assert cli_main(["extract", "pose", str(clip), "--annotator", "tiny-pose"]) == 2
    assert "No person was found in dance.mp4" in capsys.readouterr().err
    assert not (settings.output_dir / "controls").exists()


def test_the_pose_annotator_names_its_detectors_download_too(settings, clip, capsys):
    assert cli_main(["extract", "pose", str(clip)]) == 2
    err = capsys.readouterr().err
    assert "python -m wan_studio download rtdetr-r50vd-coco-o365" in err
    assert "python -m wan_studio download vitpose-base-simple" in err


def test_vace_pose_from_a_plain_video_generates(engine, tmp_path):
    from wan_studio.requests import VACERequest

    clip = make_video(tmp_path / "walk.mp4", (160, 120), fps=24, seconds=1.0)
    request = VACERequest(model="tiny-vace", prompt="a dancer", vace_mode="pose", video=str(clip), frames=9, seed=3)
    result = engine.generate(request.prepare())
    assert read_video(result.media)["count"] == 9
    assert result.recipe["extracted"]["video"]["kind"] == "pose"
    assert result.recipe["extracted"]["video"]["annotator"] == "tiny-pose"


def test_the_replace_mask_is_the_persons_box_grown_a_little():
    from wan_studio.media.extract.people import Person, person_masks

    people = [Person(None), Person((40, 20, 80, 100)), Person((50, 20, 90, 100))]
    masks = person_masks((200, 120), people)
    grow = 4  # 2 % of 120 is 2.4: at least 4 px
    assert masks[1][20 - grow:100 + grow, 40 - grow:80 + grow].min() == 255
    assert masks[1].sum() // 255 == (80 + 2 * grow) * (40 + 2 * grow)
    assert np.array_equal(masks[0], masks[1])  # before anyone is found: the first box found
    assert masks[2][50, 88] == 255 and masks[1][50, 88] == 0  # the box follows the person


@pytest.mark.parametrize("animate_mode, made", [
    ("animate", {"pose_video": "pose", "face_video": "face"}),
    ("replace", {"pose_video": "pose", "face_video": "face", "mask_video": "mask", "background_video": "background"}),
])
def test_animate_from_a_plain_driving_video(engine, tmp_path, monkeypatch, animate_mode, made):
    """A character picture and a plain video of someone moving: the studio makes the pose and face
    videos (and for replace the mask and background), then animates; a re-run uses what it made."""
    from tests.media_fixtures import make_image
    from wan_studio.media import extract
    from wan_studio.requests import AnimateRequest, absolutize_inputs, request_from_dict

    character = make_image(tmp_path / "character.png", (64, 64), color=(200, 150, 90))
    driving = make_video(tmp_path / "dance.mp4", (96, 64), fps=30, seconds=0.3)
    request = AnimateRequest(model="tiny-animate", prompt="a dancer", image=str(character), driving_video=str(driving),
                             animate_mode=animate_mode, seed=2).prepare()
    assert request.frames == 9  # the driving video's length at the model's 30 fps
    events = []
    result = engine.generate(request, on_progress=events.append)
    assert read_video(result.media)["count"] == 9
    tasks = {e.task for e in events if e.state == "extracting"}
    assert len(tasks) == 1 and set(tasks.pop().split(", ")) == set(made.values())  # one pass for all of them
    saved = result.recipe["request"]
    assert {field: info["kind"] for field, info in result.recipe["extracted"].items()} == made
    for field in made:
        kept = read_video(engine.library.root / saved[field])
        assert kept["count"] == 9 and kept["fps"] == 30.0
    assert read_video(engine.library.root / saved["face_video"])["width"] == 512

    def no_extraction(*args, **kwargs):
        raise AssertionError("a re-run must use the made inputs, not extract again")

    monkeypatch.setattr(extract, "controls", no_extraction)
    again = engine.generate(request_from_dict(absolutize_inputs(saved, engine.library.root)).prepare())
    assert read_video(again.media)["count"] == 9


def test_animate_without_pose_or_driving_video_says_both_ways(tmp_path):
    from tests.media_fixtures import make_image
    from wan_studio.errors import RequestError
    from wan_studio.requests import AnimateRequest

    character = make_image(tmp_path / "character.png", (64, 64))
    with pytest.raises(RequestError) as info:
        AnimateRequest(model="tiny-animate", prompt="x", image=str(character)).prepare()
    assert info.value.field == "pose_video" and "plain driving video" in str(info.value)


# -- layout ----------------------------------------------------------------------------------------
def test_layout_follows_each_object_and_drops_flicker():
    from wan_studio.media.extract import layout

    ball = [([10 + 4 * t, 10, 30 + 4 * t, 30], 1) for t in range(8)]
    table = ([60, 60, 120, 100], 2)
    detections = [[ball[t], table] for t in range(8)]
    detections[3] = [table]  # the ball was missed once
    detections[5].append(([0, 90, 8, 100], 1))  # a one-frame false find
    tracks = layout.tracks_of(detections)
    assert sorted((t.label, len(t.boxes)) for t in tracks) == [(1, 7), (2, 8)]  # one ball, one table
    frame = layout.draw(120, 160, 3, tracks)
    assert tuple(frame[0, 0]) == (255, 255, 255)  # white
    assert tuple(frame[60, 90]) == layout.PALETTE[2] and tuple(frame[80, 90]) == (255, 255, 255)  # an outline, not filled


def test_extract_layout_and_vace_layout_from_a_plain_video(engine, clip, tmp_path, capsys):
    from wan_studio.requests import VACERequest

    output = tmp_path / "layout.mp4"
    assert cli_main(["extract", "layout", str(clip), "--annotator", "tiny-detector", "--output", str(output), "--quiet"]) == 0
    made = read_video(output)
    assert (made["count"], made["width"], made["height"]) == (24, 160, 120)
    assert made["frames"][:, 0, 0].min() >= 250  # white around the boxes

    request = VACERequest(model="tiny-vace", prompt="a room", vace_mode="layout", video=str(clip), frames=9, seed=3)
    result = engine.generate(request.prepare())
    assert read_video(result.media)["count"] == 9
    assert result.recipe["extracted"]["video"] | {"seconds": 0} == {"kind": "layout", "annotator": "tiny-detector",
                                                                     "from": "dance.mp4", "seconds": 0}


# -- a click picks the object ----------------------------------------------------------------------
def _moving_box_detector(monkeypatch, start_x=10):
    """Detections a real detector would give for a box moving right 2 px a frame (label 3), plus a
    still one (label 5); the Tiny detector's random weights find arbitrary boxes."""
    from wan_studio.media.extract.people import Detector

    def detect(self, frames):
        found = []
        for _ in frames:
            t = len(seen)
            seen.append(t)
            found.append([([start_x + 2 * t, 10, start_x + 20 + 2 * t, 30], 3), ([40, 25, 60, 45], 5)])
        return found

    seen = []
    monkeypatch.setattr(Detector, "detect", detect)


def test_vace_inpaint_regenerates_the_clicked_object_as_it_moves(engine, tmp_path, monkeypatch):
    import pipelines.vace as vace
    from wan_studio.requests import VACERequest

    _moving_box_detector(monkeypatch)
    calls = []
    original = vace.call_pipeline
    monkeypatch.setattr(vace, "call_pipeline", lambda pipe, request, callback, **kwargs: (
        calls.append(kwargs), original(pipe, request, callback, **kwargs))[1])
    clip = make_video(tmp_path / "street.mp4", (64, 48), fps=16, seconds=0.6)
    request = VACERequest(model="tiny-vace", prompt="a red car", vace_mode="inpaint", video=str(clip), point=[15, 20],
                          frames=9, seed=4).prepare()
    result = engine.generate(request)
    masks = [np.asarray(mask.convert("L")) > 127 for mask in calls[-1]["mask"]]
    assert len(masks) == 9
    assert masks[0][20, 15] and not masks[0][35, 50]  # the clicked box, not the still one beside it
    assert masks[8][20, 40] and not masks[0][20, 40]  # followed: 16 px further right by frame 9
    assert result.recipe["extracted"]["mask"]["annotator"] == "tiny-detector"
    assert result.recipe["request"]["mask"].endswith(".mp4")


def test_a_point_outside_the_frame_or_on_nothing_is_refused(engine, settings, tmp_path, monkeypatch, capsys):
    from wan_studio.errors import RequestError
    from wan_studio.requests import VACERequest

    clip = make_video(tmp_path / "street.mp4", (64, 48), fps=16, seconds=0.6)
    with pytest.raises(RequestError) as info:
        VACERequest(model="tiny-vace", prompt="x", vace_mode="inpaint", video=str(clip), point=[80, 10], frames=9).prepare()
    assert info.value.field == "point" and "outside the 64x48 frame" in str(info.value)
    _moving_box_detector(monkeypatch)
    assert cli_main(["extract", "mask", str(clip), "--annotator", "tiny-detector", "--point", "60,5"]) == 2
    assert "Nothing was found at (60, 5) in the first frame of street.mp4" in capsys.readouterr().err
    assert cli_main(["extract", "depth", str(clip), "--point", "6,5"]) == 2
    assert "depth does not take one" in capsys.readouterr().err
    assert cli_main(["extract", "mask", str(clip), "--point", "six,5"]) == 2
    assert "two whole numbers" in capsys.readouterr().err
    assert not (settings.output_dir / "controls").exists()


def test_dry_run_says_what_will_be_made_and_by_which_model(settings, tmp_path, capsys):
    import json

    from tests.media_fixtures import make_image

    character = make_image(tmp_path / "character.png", (640, 640))
    driving = make_video(tmp_path / "dance.mp4", (160, 120), fps=30, seconds=0.5)
    assert cli_main(["generate", "--mode", "animate", "--model", "wan2.2-animate-14b", "--prompt", "x", "--image",
                     str(character), "--driving-video", str(driving), "--dry-run"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["extract"] == {
        "pose_video": {"kind": "pose", "from": "driving_video", "annotator": "vitpose-base-simple"},
        "face_video": {"kind": "face", "from": "driving_video", "annotator": "vitpose-base-simple"},
    }


def test_the_page_can_make_a_vace_control_first_and_says_when_there_is_nothing_to_make(settings, tmp_path):
    """The panel's "Make the control now": the control the run would make, into OUTPUT/controls; a
    sub-mode without an annotator gets its own message."""
    from wan_studio.errors import RequestError
    from wan_studio.requests import VACERequest
    from wan_studio.runtime.controls import make_controls_in_studio
    from wan_studio.runtime.studio import Studio

    clip = make_video(tmp_path / "walk.mp4", (160, 120), fps=24, seconds=1.0)
    studio = Studio(settings)
    studio.start(stats_interval_s=0.5)
    try:
        request = VACERequest(model="tiny-vace", prompt="x", vace_mode="depth", video=str(clip), frames=9).prepare()
        made, info = make_controls_in_studio(studio, request)
        assert list(made) == ["video"] and info["video"]["kind"] == "depth"
        assert made["video"].startswith(str(settings.output_dir / "controls")) and read_video(made["video"])["count"] == 9
        edges = VACERequest(model="tiny-vace", prompt="x", vace_mode="edges", video=str(clip), frames=9).prepare()
        with pytest.raises(RequestError, match="Nothing to make: depth, pose and layout"):
            make_controls_in_studio(studio, edges)
    finally:
        studio.stop()


# -- fitting the pose to the character ---------------------------------------------------------------
def _standing(arm: float, leg: float, neck=(100.0, 50.0)) -> tuple[np.ndarray, np.ndarray]:
    """An OpenPose-18 figure: shoulders 20 px from the neck, arms straight out, legs straight down."""
    x, y = neck
    points = np.zeros((18, 2))
    points[0], points[1] = (x, y - 15), (x, y)
    points[2], points[5] = (x - 20, y), (x + 20, y)
    points[3], points[6] = (x - 20 - arm, y), (x + 20 + arm, y)
    points[4], points[7] = (x - 20 - 2 * arm, y), (x + 20 + 2 * arm, y)
    points[8], points[11] = (x - 10, y + 60), (x + 10, y + 60)
    points[9], points[12] = (x - 10, y + 60 + leg), (x + 10, y + 60 + leg)
    points[10], points[13] = (x - 10, y + 60 + 2 * leg), (x + 10, y + 60 + 2 * leg)
    points[14:18] = (x - 5, y - 18), (x + 5, y - 18), (x - 10, y - 15), (x + 10, y - 15)
    return points, np.ones(18, bool)


def test_the_pose_takes_the_characters_proportions_and_keeps_its_angles():
    from wan_studio.media.extract import retarget

    driving = _standing(arm=30, leg=40)
    character = _standing(arm=30, leg=20)  # short legs, same arms, in a picture of the same height
    ratios = retarget.bone_ratios(character, [driving], 200, 200)
    assert ratios[frozenset((9, 10))] == pytest.approx(0.5) and ratios[frozenset((3, 4))] == pytest.approx(1.0)
    raised = driving[0].copy()
    raised[10] = raised[9] + (30, -30)  # a later frame: the right shin kicks out at 45 degrees
    moved = retarget.retarget(raised, driving[1], ratios)
    assert tuple(moved[1]) == tuple(driving[0][1])  # the neck stays
    assert np.allclose(moved[4], driving[0][4])  # arms unchanged
    assert np.allclose(moved[9], driving[0][9] - (0, 20))  # the thigh is half as long: the knee rises
    assert np.allclose(moved[10] - moved[9], (15, -15))  # the shin: half as long, still at 45 degrees
    # the same character in a picture twice as tall: the same proportions, so the same fit
    tall = (character[0] * 2, character[1])
    assert retarget.bone_ratios(tall, [driving], 400, 200)[frozenset((9, 10))] == pytest.approx(0.5)


def test_animate_can_fit_the_pose_to_the_character(engine, tmp_path):
    from tests.media_fixtures import make_image
    from wan_studio.errors import RequestError
    from wan_studio.requests import AnimateRequest

    character = make_image(tmp_path / "character.png", (64, 64), color=(200, 150, 90))
    driving = make_video(tmp_path / "dance.mp4", (96, 64), fps=30, seconds=0.3)
    request = AnimateRequest(model="tiny-animate", prompt="a dancer", image=str(character), driving_video=str(driving),
                             retarget=True, seed=2).prepare()
    result = engine.generate(request)
    assert read_video(result.media)["count"] == 9
    assert result.recipe["extracted"]["pose_video"]["fitted_to"] == "character.png"
    pose = make_video(tmp_path / "pose.mp4", (64, 64), fps=30, seconds=0.3)
    with pytest.raises(RequestError) as info:
        AnimateRequest(model="tiny-animate", prompt="x", image=str(character), pose_video=str(pose),
                       face_video=str(pose), retarget=True).prepare()
    assert info.value.field == "retarget" and "driving video" in str(info.value)
    with pytest.raises(RequestError, match="Fit the pose must be true or false; got 'False'"):
        AnimateRequest(model="tiny-animate", prompt="x", image=str(character), driving_video=str(driving), retarget="False")


def test_extract_pose_can_fit_to_a_character_picture(settings, clip, tmp_path, capsys):
    from tests.media_fixtures import make_image

    character = make_image(tmp_path / "character.png", (64, 96))
    output = tmp_path / "fitted.mp4"
    assert cli_main(["extract", "pose", str(clip), "--annotator", "tiny-pose", "--fit-to", str(character),
                     "--output", str(output), "--quiet"]) == 0
    assert read_video(output)["count"] == 24
    assert cli_main(["extract", "depth", str(clip), "--annotator", "tiny-depth", "--fit-to", str(character)]) == 2
    assert "for pose videos, not depth" in capsys.readouterr().err
