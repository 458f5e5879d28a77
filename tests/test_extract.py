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
from wan_studio.extract.depth import depth_frames


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
    source = (tmp_path / "nothere.mp4" if problem == "missing"
              else write_wav(tmp_path / "speech.wav", speech_like(1.0), 16000))
    for kind, annotator in (("depth", "tiny-depth"), ("mask", "tiny-segmenter")):
        assert cli_main(["extract", kind, str(source), "--annotator", annotator]) == 2
        assert fragment in capsys.readouterr().err
    assert not (settings.output_dir / "controls").exists()


def test_other_bad_arguments_get_their_own_message(settings, clip, tmp_path, capsys):
    assert cli_main(["extract", "depth", str(clip), "--annotator", "nope"]) == 2
    assert "Unknown annotator 'nope'" in capsys.readouterr().err
    assert cli_main(["extract", "depth", str(clip), "--annotator", "tiny-depth",
                     "--output", str(tmp_path / "d.gif")]) == 2
    assert "written as MP4" in capsys.readouterr().err


def test_without_the_hub_the_real_annotator_names_its_download_command(settings, clip, capsys):
    assert cli_main(["extract", "depth", str(clip)]) == 2
    err = capsys.readouterr().err
    assert "Depth Anything V2 Small" in err and "python -m wan_studio download depth-anything-v2-small" in err
    assert not (settings.output_dir / "controls").exists()


def test_vace_depth_from_a_plain_video_generates_and_its_recipe_reruns_without_extracting(
        engine, tmp_path, monkeypatch):
    """VACE's depth sub-mode takes a normal video: the depth control is made first (progress says
    so), then the video. The result keeps the control as its input: a re-run makes the same video
    without extracting again."""
    import pipelines.vace as vace
    from wan_studio import extract
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
    from wan_studio.extract.people import follow

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
    from wan_studio.extract import skeleton

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

    from wan_studio.extract.people import FACE_SIZE, Person, face_crops

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
    from wan_studio.extract.people import Detector

    monkeypatch.setattr(Detector, "detect", lambda self, frames: [[] for _ in frames])  # a detector that finds nothing
    assert cli_main(["extract", "pose", str(clip), "--annotator", "tiny-pose"]) == 2
    assert "No person was found in dance.mp4" in capsys.readouterr().err
    assert cli_main(["extract", "mask", str(clip), "--annotator", "tiny-segmenter"]) == 2
    assert "No person was found in dance.mp4 to make a mask of; click on the object" in capsys.readouterr().err
    assert not (settings.output_dir / "controls").exists()


def test_the_pose_annotator_names_its_detectors_download_too(settings, clip, capsys):
    assert cli_main(["extract", "pose", str(clip)]) == 2
    err = capsys.readouterr().err
    assert "python -m wan_studio download rtdetr-r50vd-coco-o365" in err
    assert "python -m wan_studio download vitpose-base-simple" in err
    assert cli_main(["extract", "mask", str(clip)]) == 2  # the main person: the detector finds them for SAM2
    err = capsys.readouterr().err
    assert "python -m wan_studio download rtdetr-r50vd-coco-o365" in err
    assert "python -m wan_studio download sam2.1-hiera-large" in err
    assert cli_main(["extract", "mask", str(clip), "--point", "5,5"]) == 2  # a click: SAM2 alone
    err = capsys.readouterr().err
    assert "download sam2.1-hiera-large" in err and "rtdetr" not in err


def test_vace_pose_from_a_plain_video_generates(engine, tmp_path):
    from wan_studio.requests import VACERequest

    clip = make_video(tmp_path / "walk.mp4", (160, 120), fps=24, seconds=1.0)
    request = VACERequest(model="tiny-vace", prompt="a dancer", vace_mode="pose", video=str(clip), frames=9, seed=3)
    result = engine.generate(request.prepare())
    assert read_video(result.media)["count"] == 9
    assert result.recipe["extracted"]["video"]["kind"] == "pose"
    assert result.recipe["extracted"]["video"]["annotator"] == "tiny-pose"


def test_masks_are_the_outline_grown_or_the_box_around_it_and_keep_a_lost_object():
    from wan_studio.extract.outline import shaped

    outline = np.zeros((120, 200), bool)
    outline[40:60, 50:70] = True  # a 20 px square...
    outline[60:80, 60:62] = True  # ...on a thin stick
    lost = np.zeros_like(outline)
    grown, boxed = shaped([lost, outline, lost], "outline"), shaped([lost, outline, lost], "box")
    grow = 4  # 2 % of 120 is 2.4: at least 4 px
    assert not grown[0].any() and not boxed[0].any()  # before the object is seen: nothing
    assert grown[1][40 - grow:60 + grow, 50 - grow:70 + grow].min() == 255  # the square, 4 px wider each way
    assert grown[1][79 + grow, 61] == 255 and grown[1][79 + grow + 1, 61] == 0  # the stick's end, grown 4 px
    assert grown[1][75, 50] == 0  # beside the stick: outside the outline, inside its box
    assert boxed[1][75, 50] == 255 and boxed[1].sum() // 255 == (40 + 2 * grow) * (20 + 2 * grow)
    assert np.array_equal(grown[2], grown[1]) and np.array_equal(boxed[2], boxed[1])  # lost: the last one stays


@pytest.mark.parametrize("animate_mode, made", [
    ("animate", {"pose_video": "pose", "face_video": "face"}),
    ("replace", {"pose_video": "pose", "face_video": "face", "mask_video": "mask", "background_video": "background"}),
])
def test_animate_from_a_plain_driving_video(engine, tmp_path, monkeypatch, animate_mode, made):
    """A character picture and a plain video of someone moving: the studio makes the pose and face
    videos (and for replace the mask and background), then animates; a re-run uses what it made."""
    from tests.media_fixtures import make_image
    from wan_studio import extract
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
    if animate_mode == "replace":  # the mask is the box around the person, the shape replace mode was trained on
        for frame in read_video(engine.library.root / saved["mask_video"])["frames"]:
            inside = frame[..., 0] > 127
            ys, xs = np.nonzero(inside)
            assert not len(ys) or inside[ys.min():ys.max() + 1, xs.min():xs.max() + 1].all()

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
    from wan_studio.extract import layout

    ball = [([10 + 4 * t, 10, 30 + 4 * t, 30], 1) for t in range(8)]
    table = ([60, 60, 120, 100], 2)
    detections = [[ball[t], table] for t in range(8)]
    detections[3] = [table]  # the ball was missed once
    detections[5].append(([0, 90, 8, 100], 1))  # a one-frame false find
    tracks = layout.tracks_of(detections)
    assert sorted((t.label, len(t.boxes)) for t in tracks) == [(1, 7), (2, 8)]  # one ball, one table
    frame = layout.draw(120, 160, 3, tracks)
    assert tuple(frame[0, 0]) == (255, 255, 255)  # white
    # an outline, not filled
    assert tuple(frame[60, 90]) == layout.PALETTE[2] and tuple(frame[80, 90]) == (255, 255, 255)


def test_extract_layout_and_vace_layout_from_a_plain_video(engine, clip, tmp_path, capsys):
    from wan_studio.requests import VACERequest

    output = tmp_path / "layout.mp4"
    assert cli_main(["extract", "layout", str(clip), "--annotator", "tiny-detector", "--output", str(output),
                     "--quiet"]) == 0
    made = read_video(output)
    assert (made["count"], made["width"], made["height"]) == (24, 160, 120)
    assert made["frames"][:, 0, 0].min() >= 250  # white around the boxes

    request = VACERequest(model="tiny-vace", prompt="a room", vace_mode="layout", video=str(clip), frames=9, seed=3)
    result = engine.generate(request.prepare())
    assert read_video(result.media)["count"] == 9
    assert result.recipe["extracted"]["video"] | {"seconds": 0} == {"kind": "layout", "annotator": "tiny-detector",
                                                                     "from": "dance.mp4", "seconds": 0}


# -- a click picks the object ----------------------------------------------------------------------
IMAGENET_MEAN, IMAGENET_STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])


def _sam2_that_follows_red(monkeypatch):
    """A stand-in for SAM2's forward (the Tiny one has random weights): the red pixels of the frame
    it is given, as long as its prompt is on red: the click, the box or the mask carried from the
    chunk before; nothing once a prompt misses. It reads the frame and the prompts in the model's
    own square input, so the frames' normalising and the prompts' scaling are checked too."""
    from types import SimpleNamespace

    from transformers import Sam2VideoModel

    def forward(self, inference_session, frame=None, **kwargs):
        session = inference_session
        index = session.add_new_frame(frame)
        rgb = frame.permute(1, 2, 0).numpy() * IMAGENET_STD + IMAGENET_MEAN
        red = (rgb[..., 0] > 0.6) & (rgb[..., 1] < 0.3)
        points = session.point_inputs_per_obj.get(0, {}).get(index)
        mask = session.mask_inputs_per_obj.get(0, {}).get(index)
        if points is not None:
            (xy,) = points["point_coords"][0].numpy()
            if points["point_labels"][0, 0].tolist() == [1]:
                session.following = bool(red[int(xy[0, 1]), int(xy[0, 0])])
            else:
                (x0, y0), (x1, y1) = xy.astype(int)
                session.following = bool(red[y0:y1, x0:x1].any())
        elif mask is not None:
            session.following = bool((mask[0, 0].numpy() > 0.5)[red].any())
        calls.append(session)
        logits = np.where(red & session.following, 10.0, -10.0).astype(np.float32)
        return SimpleNamespace(pred_masks=torch.from_numpy(logits)[None, None])

    calls = []
    monkeypatch.setattr(Sam2VideoModel, "forward", forward)
    return calls


def _red(frames) -> np.ndarray:
    """Where the red square is, per decoded frame."""
    return (frames[..., 0] > 150) & (frames[..., 1] < 80)


def test_vace_inpaint_regenerates_the_clicked_object_as_it_moves(engine, tmp_path, monkeypatch):
    import pipelines.vace as vace
    from tests.media_fixtures import moving_square_video
    from wan_studio.requests import VACERequest

    _sam2_that_follows_red(monkeypatch)
    calls = []
    original = vace.call_pipeline
    monkeypatch.setattr(vace, "call_pipeline", lambda pipe, request, callback, **kwargs: (
        calls.append(kwargs), original(pipe, request, callback, **kwargs))[1])
    # a square low in a 64x48 frame: the click lands on it only when scaled to the model's 64x64 input
    clip = moving_square_video(tmp_path / "street.mp4", (64, 48), fps=16, seconds=0.6, start=(8, 30))
    red = _red(read_video(clip)["frames"])
    request = VACERequest(model="tiny-vace", prompt="a red car", vace_mode="inpaint", video=str(clip), point=[15, 32],
                         frames=9, seed=4).prepare()
    result = engine.generate(request)
    masks = [np.asarray(mask.convert("L")) > 127 for mask in calls[-1]["mask"]]
    assert len(masks) == 9
    for mask, square in zip(masks, red):
        assert mask[square].all()  # the whole square, frame after frame as it moves
        ys, xs = np.nonzero(square)
        near = np.zeros_like(square)
        near[max(0, ys.min() - 4):ys.max() + 5, max(0, xs.min() - 4):xs.max() + 5] = True
        assert not mask[~near].any()  # and nothing more than 4 px around it
    assert not masks[0][:, 40:].any() and masks[8][:, 40:].any()  # followed right
    assert result.recipe["extracted"]["mask"]["annotator"] == "tiny-segmenter"
    assert result.recipe["request"]["mask"].endswith(".mp4")


def test_a_long_video_is_followed_across_sessions(monkeypatch, tmp_path):
    """Every CHUNK frames SAM2 starts afresh from the last mask: the object stays followed, and what
    a click misses stays missed."""
    from tests.media_fixtures import moving_square_video
    from wan_studio import catalog, models
    from wan_studio.extract import outline
    from wan_studio.media import load_video_frames

    calls = _sam2_that_follows_red(monkeypatch)
    monkeypatch.setattr(outline, "CHUNK", 4)
    clip = moving_square_video(tmp_path / "long.mp4", (64, 48), fps=16, seconds=1.0, start=(2, 10), step=2)
    frames, red = load_video_frames(clip), _red(read_video(clip)["frames"])
    segmenter = outline.Segmenter(models.resolve(catalog.annotator("tiny-segmenter")), "cpu")
    done = []
    masks = segmenter.outlines(frames, {0: ("box", (0, 5, 30, 35))}, lambda i, n: done.append(i))
    assert len(masks) == len(frames) == 16 and len({id(session) for session in calls}) == 4  # 4 sessions
    assert all(mask[square].all() and not mask[~square].any() for mask, square in zip(masks, red))
    assert done == [4, 8, 12, 16]
    missed = segmenter.outlines(frames, {0: ("point", (60, 40))})
    assert not any(mask.any() for mask in missed)


def test_a_point_or_box_outside_the_frame_or_on_nothing_is_refused(engine, settings, tmp_path, monkeypatch, capsys):
    from tests.media_fixtures import moving_square_video
    from wan_studio.errors import RequestError
    from wan_studio.requests import VACERequest

    clip = moving_square_video(tmp_path / "street.mp4", (64, 48), fps=16, seconds=0.6)
    with pytest.raises(RequestError) as info:
        VACERequest(model="tiny-vace", prompt="x", vace_mode="inpaint", video=str(clip), point=[80, 10],
                    frames=9).prepare()
    assert info.value.field == "point" and "outside the 64x48 frame" in str(info.value)
    _sam2_that_follows_red(monkeypatch)
    assert cli_main(["extract", "mask", str(clip), "--annotator", "tiny-segmenter", "--point", "60,5"]) == 2
    assert "Nothing was found at (60, 5) in the first frame of street.mp4" in capsys.readouterr().err
    assert cli_main(["extract", "mask", str(clip), "--annotator", "tiny-segmenter", "--box", "40,30,60,45"]) == 2
    assert "Nothing was found in the box (40, 30, 60, 45)" in capsys.readouterr().err
    assert cli_main(["extract", "mask", str(clip), "--box", "40,30,20,45"]) == 2
    assert "not a box inside the 64x48 frame" in capsys.readouterr().err
    assert cli_main(["extract", "mask", str(clip), "--box", "1,2,3"]) == 2
    assert "A box is four whole numbers" in capsys.readouterr().err
    assert cli_main(["extract", "mask", str(clip), "--point", "5,5", "--box", "1,2,30,30"]) == 2
    assert "a point or a box on the object, not both" in capsys.readouterr().err
    assert cli_main(["extract", "depth", str(clip), "--point", "6,5"]) == 2
    assert "depth does not take one" in capsys.readouterr().err
    assert cli_main(["extract", "pose", str(clip), "--shape", "box"]) == 2
    assert "for mask and background videos, not pose" in capsys.readouterr().err
    assert cli_main(["extract", "mask", str(clip), "--point", "six,5"]) == 2
    assert "two whole numbers" in capsys.readouterr().err
    assert not (settings.output_dir / "controls").exists()


def test_extract_mask_and_background_of_a_boxed_object(settings, tmp_path, monkeypatch, capsys):
    from tests.media_fixtures import moving_square_video

    _sam2_that_follows_red(monkeypatch)
    clip = moving_square_video(tmp_path / "street.mp4", (64, 48), fps=16, seconds=0.6)
    source = read_video(clip)
    red = _red(source["frames"])
    for kind in ("mask", "background"):
        output = tmp_path / f"{kind}.mp4"
        assert cli_main(["extract", kind, str(clip), "--annotator", "tiny-segmenter", "--box", "0,0,40,40",
                         "--shape", "box", "--output", str(output), "--quiet"]) == 0
        made = read_video(output)
        assert (made["count"], made["fps"], made["width"], made["height"]) == (source["count"], 16.0, 64, 48)
        if kind == "mask":
            assert all(frame[square].min() > 200 for frame, square in zip(made["frames"], red))
        else:  # the object blacked out, the rest kept
            assert all(frame[square].max() < 40 for frame, square in zip(made["frames"], red))
            assert np.abs(made["frames"][:, 2, 60].astype(int) - 128).max() < 8


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
    assert cli_main(["generate", "--mode", "animate", "--model", "wan2.2-animate-14b", "--prompt", "x", "--image",
                     str(character), "--driving-video", str(driving), "--animate-mode", "replace", "--dry-run"]) == 0
    shown = json.loads(capsys.readouterr().out)["extract"]
    assert shown["mask_video"] == {"kind": "mask", "from": "driving_video", "annotator": "sam2.1-hiera-large"}
    assert shown["background_video"]["annotator"] == "sam2.1-hiera-large"


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
        assert made["video"].startswith(str(settings.output_dir / "controls"))
        assert read_video(made["video"])["count"] == 9
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
    from wan_studio.extract import retarget

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


def test_the_fitted_pose_moves_to_where_the_character_stands():
    from wan_studio.extract import retarget

    # a 400x200 picture centre-cropped to a 200x200 frame loses 100 px each side
    assert np.allclose(retarget.to_frame([[150, 50]], (400, 200), (200, 200)), [[50, 50]])
    assert np.allclose(retarget.from_frame([[50, 50]], (400, 200), (200, 200)), [[150, 50]])
    character = _standing(arm=20, leg=30, neck=(140.0, 60.0))
    small = ((character[0] - (140.0, 60.0)) * 0.5 + (50.0, 100.0), character[1])  # half size, elsewhere
    scale, shift = retarget.placement(character, small)
    assert scale == pytest.approx(2.0)
    assert np.allclose(small[0] * scale + shift, character[0])  # on the character, bone for bone
    unseen = (character[0], np.zeros(18, bool))
    assert retarget.placement(unseen, small)[0] == 1.0  # no neck to meet: left where it is


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
        AnimateRequest(model="tiny-animate", prompt="x", image=str(character), driving_video=str(driving),
                       retarget="False")


def test_extract_pose_can_fit_to_a_character_picture(settings, clip, tmp_path, capsys):
    from tests.media_fixtures import make_image

    character = make_image(tmp_path / "character.png", (64, 96))
    output = tmp_path / "fitted.mp4"
    assert cli_main(["extract", "pose", str(clip), "--annotator", "tiny-pose", "--fit-to", str(character),
                     "--output", str(output), "--quiet"]) == 0
    assert read_video(output)["count"] == 24
    assert cli_main(["extract", "depth", str(clip), "--annotator", "tiny-depth", "--fit-to", str(character)]) == 2
    assert "for pose videos, not depth" in capsys.readouterr().err


# -- memory: the annotators' footprints --------------------------------------------------------------
def test_annotators_are_counted_exactly_and_their_pass_is_in_the_estimate(tmp_path):
    """Published sizes: SAM 2.1 Large 224.4 M, ViTPose-B 86 M, RT-DETR R50 42 M, Depth Anything V2
    Small 24.8 M parameters. A replace job's annotators run before its pipeline loads; their pass is
    a phase of the estimate: weights in fp32 plus the working allowance."""
    from tests.media_fixtures import make_image
    from wan_studio import catalog
    from wan_studio.memory.estimate import calibration, estimate
    from wan_studio.memory.footprints import annotator_footprint
    from wan_studio.memory.plans import Machine, ladder
    from wan_studio.requests import AnimateRequest

    published = {"sam2.1-hiera-large": 224.4e6, "vitpose-base-simple": 86e6, "rtdetr-r50vd-coco-o365": 42e6,
                 "depth-anything-v2-small": 24.8e6}
    for annotator_id, params in published.items():
        assert annotator_footprint(catalog.annotator(annotator_id)).params == pytest.approx(params, rel=0.02)
    character = make_image(tmp_path / "character.png", (640, 640))
    driving = make_video(tmp_path / "dance.mp4", (160, 120), fps=30, seconds=0.5)
    replace = AnimateRequest(model="wan2.2-animate-14b", prompt="x", image=str(character), driving_video=str(driving),
                             animate_mode="replace").prepare()
    machine = Machine("cuda", 16.0, 64.0, name="NVIDIA GeForce RTX 4080", capability=(8, 9))
    record = replace.checkpoint
    found = estimate(record, replace, ladder(machine, record)[-1], machine)
    expected = (224.4e6 + 86e6 + 42e6) * 4 / 2**30 + calibration()["annotators"]["working_gb"]
    assert found.breakdown["extract_phase"] == pytest.approx(expected, rel=0.02)
    plain = AnimateRequest(model="wan2.2-animate-14b", prompt="x", image=str(character), pose_video=str(driving),
                           face_video=str(driving)).prepare()
    assert "extract_phase" not in estimate(record, plain, ladder(machine, record)[-1], machine).breakdown


def test_the_last_jobs_pipeline_makes_room_for_the_annotators_only_when_needed(engine, monkeypatch):
    import dataclasses

    from wan_studio import catalog

    engine.swap.activate(catalog.get("tiny-t2v"), "t2v")
    engine.swap._backend = dataclasses.replace(engine.swap.backend, kind="cuda", device="cuda")
    free = {"gib": 8.0}
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda *args: (int(free["gib"] * 2**30), 16 * 2**30))
    engine.swap.make_room(2.8)
    assert engine.swap.active_key.model == "tiny-t2v"  # 8 GiB free: it stays for the next job
    free["gib"] = 1.0
    engine.swap.make_room(2.8)
    assert engine.swap.active_key is None
