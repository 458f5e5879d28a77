"""Every diffusers mode end to end on the Tiny models, through the engine and the CLI, with a
check of what each mode hands to the diffusers call."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from tests.conftest import read_video
from tests.media_fixtures import make_image, make_mask_video, make_video
from wan_studio.cli import main as cli_main
from wan_studio.errors import RequestError
from wan_studio.requests import (
    AnimateRequest,
    FLF2VRequest,
    I2VRequest,
    PreviewRequest,
    TI2VRequest,
    V2VRequest,
    VACERequest,
)


@pytest.fixture
def media(tmp_path):
    folder = tmp_path / "media"
    folder.mkdir()
    return {
        "wide": make_image(folder / "wide.png", (200, 100)),
        "tall": make_image(folder / "tall.jpg", (90, 160), color=(20, 90, 200)),
        "square": make_image(folder / "square.png", (120, 120), color=(10, 200, 10)),
        "clip": make_video(folder / "clip.mp4", (160, 120), fps=24, seconds=2.0),
        "short": make_video(folder / "short.mp4", (160, 120), fps=24, seconds=0.2),
        "mask_video": make_mask_video(folder / "mask.mp4", (160, 120), fps=16, seconds=2.0),
        "pose": make_video(folder / "pose.mp4", (64, 64), fps=30, seconds=1.5),
        "face": make_video(folder / "face.mp4", (64, 64), fps=30, seconds=1.5, source="testsrc"),
    }


@pytest.fixture
def spy(monkeypatch):
    """Record every kwarg the wrappers hand to the diffusers pipeline call."""
    import pipelines.common as common

    calls = []
    original = common.call_pipeline

    def recording(pipe, request, callback, **kwargs):
        calls.append(dict(kwargs, pipeline=type(pipe).__name__))
        return original(pipe, request, callback, **kwargs)

    for module in ("t2v", "i2v", "flf2v", "v2v", "vace", "animate"):
        monkeypatch.setattr(f"pipelines.{module}.call_pipeline", recording)
    return calls


def check_video(result, frames, width, height, fps):
    video = read_video(result.media)
    assert (video["count"], video["width"], video["height"], video["fps"]) == (frames, width, height, fps)
    return video


def test_i2v_size_follows_the_image(engine, media, spy):
    request = I2VRequest(model="tiny-i2v", prompt="the sun sets", image=str(media["wide"]), seed=1).prepare()
    # 2:1 image into the 64x64 native area, each side snapped down to the 16-pixel grid
    assert (request.width, request.height) == (80, 32)
    result = engine.generate(request)
    check_video(result, 9, 80, 32, 16.0)
    call = spy[-1]
    assert call["pipeline"] == "WanImageToVideoPipeline" and call["image"].size == (80, 32)
    # the input is kept beside the result and the recipe points at the copy
    copied = result.media.parent / result.recipe["request"]["image"]
    assert copied.is_file() and copied.read_bytes() == media["wide"].read_bytes()


def test_i2v_portrait_image_and_dense_model_has_one_guidance(engine, media, spy):
    engine.generate(I2VRequest(model="tiny-i2v", prompt="x", image=str(media["tall"]), seed=1))
    assert "guidance_scale_2" not in spy[-1] and spy[-1]["image"].size == (48, 80)


def test_i2v_and_flf2v_on_moe_checkpoint_pass_both_guidances(engine, media, spy):
    result = engine.generate(I2VRequest(model="tiny-i2v-moe", prompt="x", image=str(media["wide"]), seed=1,
                                        guidance=2.0, guidance_2=4.5))
    check_video(result, 9, 80, 32, 16.0)
    assert spy[-1]["guidance_scale_2"] == 4.5 and spy[-1]["pipeline"] == "WanImageToVideoPipeline"
    engine.generate(FLF2VRequest(model="tiny-i2v-moe", prompt="x", image=str(media["wide"]),
                                 last_image=str(media["square"]), seed=1))
    assert spy[-1]["last_image"].size == (80, 32) and spy[-1]["guidance_scale_2"] == 3.5


def test_ti2v_with_and_without_image(engine, media, spy):
    text_only = engine.generate(TI2VRequest(model="tiny-ti2v", prompt="a river", seed=2))
    check_video(text_only, 9, 64, 64, 24.0)
    assert spy[-1]["pipeline"] == "WanPipeline"
    with_image = engine.generate(TI2VRequest(model="tiny-ti2v", prompt="a river", image=str(media["square"]), seed=2))
    check_video(with_image, 9, 64, 64, 24.0)
    assert spy[-1]["pipeline"] == "WanImageToVideoPipeline" and spy[-1]["image"].size == (64, 64)


def test_flf2v_last_frame_is_cropped_to_the_first_frames_size(engine, media, spy):
    request = FLF2VRequest(model="tiny-flf2v", prompt="day to night", image=str(media["wide"]),
                           last_image=str(media["tall"]), seed=3)
    check_video(engine.generate(request), 9, 80, 32, 16.0)
    call = spy[-1]
    assert call["image"].size == call["last_image"].size == (80, 32)
    # centre crop: the last frame keeps the middle of the tall picture, not a squashed version
    last = np.asarray(call["last_image"])
    assert last.shape == (32, 80, 3)


def test_v2v_resamples_the_video_to_model_fps_and_legal_frames(engine, media, spy):
    request = V2VRequest(model="tiny-t2v", prompt="as an oil painting", video=str(media["clip"]), strength=0.6,
                         seed=4).prepare()
    assert request.frames == 29  # 2 s at 16 fps = 32 frames -> largest 4k+1 is 29
    assert (request.width, request.height) == (64, 48)
    check_video(engine.generate(request), 29, 64, 48, 16.0)
    call = spy[-1]
    assert call["pipeline"] == "WanVideoToVideoPipeline" and call["strength"] == 0.6
    assert len(call["video"]) == 29 and call["video"][0].size == (64, 48)


@pytest.mark.parametrize("kind", ["grayscale", "edges", "scribble", "flow"])
def test_vace_built_in_controls(engine, media, spy, kind):
    request = VACERequest(model="tiny-vace", prompt="a dancer", vace_mode=kind, video=str(media["clip"]), frames=9,
                          seed=5)
    check_video(engine.generate(request), 9, 64, 48, 16.0)
    call = spy[-1]
    assert call["pipeline"] == "WanVACEPipeline" and call["mask"] is None
    assert len(call["video"]) == 9 and call["video"][0].size == (64, 48)
    if kind == "grayscale":
        pixels = np.asarray(call["video"][3])
        assert np.array_equal(pixels[..., 0], pixels[..., 1])


@pytest.mark.parametrize("kind", ["depth", "pose", "layout"])
def test_vace_control_videos_made_elsewhere_are_used_as_they_are(engine, media, spy, kind):
    request = VACERequest(model="tiny-vace", prompt="x", vace_mode=kind, video=str(media["clip"]),
                          control_source="control", frames=9, seed=5)
    result = engine.generate(request)
    check_video(result, 9, 64, 48, 16.0)
    assert spy[-1]["video"][0].size == (64, 48) and "extracted" not in result.recipe  # no annotator ran


def test_vace_inpaint_with_mask_image_mask_video_and_box(engine, media, spy, tmp_path):
    mask_image = tmp_path / "mask.png"
    m = np.zeros((120, 160), np.uint8)
    m[30:90, 40:120] = 255
    Image.fromarray(m).save(mask_image)
    for mask_kwargs in ({"mask": str(mask_image)}, {"mask": str(media["mask_video"])}, {"bbox": [16, 12, 48, 36]}):
        request = VACERequest(model="tiny-vace", prompt="a vase of flowers", vace_mode="inpaint",
                              video=str(media["clip"]), frames=9, seed=6, **mask_kwargs)
        check_video(engine.generate(request), 9, 64, 48, 16.0)
        call = spy[-1]
        masks = [np.asarray(x.convert("L")) for x in call["mask"]]
        assert len(masks) == 9 and masks[0].shape == (48, 64)
        assert set(np.unique(masks[0])) <= {0, 255}
        assert masks[0][24, 32] == 255 and masks[0][2, 2] == 0  # centre generated, corner kept


def test_vace_outpaint_pads_and_masks_the_border(engine, media, spy):
    request = VACERequest(model="tiny-vace", prompt="a wide landscape", vace_mode="outpaint", video=str(media["clip"]),
                          outpaint_directions=["left", "right"], outpaint_ratio=0.5, frames=9, seed=7).prepare()
    assert request.width > request.height  # wider than the 4:3 source
    result = engine.generate(request)
    check_video(result, 9, request.width, request.height, 16.0)
    mask = np.asarray(spy[-1]["mask"][0].convert("L"))
    assert mask[:, 0].min() == 255 and mask[:, -1].min() == 255  # padded sides are generated
    assert mask[mask.shape[0] // 2, mask.shape[1] // 2] == 0  # the source in the middle is kept


@pytest.mark.parametrize("extension, inputs, known", [
    ("first_frame", {"image": "square"}, [0]),
    ("last_frame", {"last_image": "square"}, [-1]),
    ("first_last", {"image": "wide", "last_image": "tall"}, [0, -1]),
    ("first_clip", {"video": "clip"}, [0, 1, 2, 3]),  # the clip's last 4 frames open the video
    ("last_clip", {"video": "clip"}, [-1, -2, -3, -4]),  # its first 4 frames close it
])
def test_vace_extension_kinds(engine, media, spy, extension, inputs, known):
    paths = {k: str(media[v]) for k, v in inputs.items()}
    request = VACERequest(model="tiny-vace", prompt="continue the shot", vace_mode="extension", extension=extension,
                          frames=9, seed=8, **paths).prepare()
    result = engine.generate(request)
    check_video(result, 9, request.width, request.height, 16.0)
    masks = [np.asarray(m.convert("L")) for m in spy[-1]["mask"]]
    for index in known:
        assert masks[index].max() == 0, f"frame {index} should be kept (black mask)"
    assert masks[4].min() == 255  # the middle is generated


def test_vace_reference_images_reach_the_pipeline(engine, media, spy):
    request = VACERequest(model="tiny-vace", prompt="this person waves", vace_mode="reference",
                          reference=[str(media["square"]), str(media["tall"])], frames=9, seed=9,
                          conditioning_scale=0.7)
    result = engine.generate(request)
    check_video(result, 9, 64, 64, 16.0)
    call = spy[-1]
    assert len(call["reference_images"]) == 2 and call["conditioning_scale"] == 0.7
    assert len(result.recipe["request"]["reference"]) == 2


@pytest.mark.parametrize("mode", ["animate", "replace"])
def test_animate_long_driving_video_in_segments(engine, media, monkeypatch, mode):
    """A driving video of three segments is made in three windows, one segment each: each reads its
    slice of the inputs, and a later one's segment starts from the last frame made before it, given
    to the pipeline as it gives a later segment of its own the end of the one before."""
    from diffusers import WanAnimatePipeline

    import pipelines.animate as wrapper

    calls, given = [], []
    original_call, original_prev = wrapper.call_pipeline, WanAnimatePipeline.prepare_prev_segment_cond_latents

    def recording_call(pipe, request, callback, **kwargs):
        frames = original_call(pipe, request, callback, **kwargs)
        calls.append(dict(kwargs, made=np.asarray(frames)))
        return frames

    def recording_prev(self, prev_segment_cond_video=None, *args, **kwargs):
        given.append((None if prev_segment_cond_video is None else prev_segment_cond_video.clone(),
                      kwargs["start_frame"]))
        return original_prev(self, prev_segment_cond_video, *args, **kwargs)

    monkeypatch.setattr(wrapper, "call_pipeline", recording_call)
    monkeypatch.setattr(WanAnimatePipeline, "prepare_prev_segment_cond_latents", recording_prev)
    extra = ({"background_video": str(media["clip"]), "mask_video": str(media["mask_video"])} if mode == "replace"
             else {})
    events = []
    request = AnimateRequest(model="tiny-animate", prompt="the character dances", image=str(media["square"]),
                             pose_video=str(media["pose"]), face_video=str(media["face"]), animate_mode=mode,
                             seed=10, **extra).prepare()
    assert request.frames == 45 and request.segments == 3  # 1.5 s at 30 fps, segments of 17 with 1 carried over
    result = engine.generate(request, on_progress=events.append)
    check_video(result, 45, request.width, request.height, 30.0)
    windows = result.recipe["windows"]
    assert windows["lengths"] == [17, 17, 13] and windows["overlap"] == 1  # 17 + 16 + 12 = 45
    assert windows["conditioning"] == "frames Animate carries into its next segment"
    assert [len(call["pose_video"]) for call in calls] == [17, 17, 13]
    assert [call["segment_frame_length"] for call in calls] == [17, 17, 13]  # one segment a call
    assert all(call["mode"] == mode and call["prev_segment_conditioning_frames"] == 1 for call in calls)
    # the second window starts on the first one's last pose frame (their shared frame)
    assert np.array_equal(np.asarray(calls[1]["pose_video"][0]), np.asarray(calls[0]["pose_video"][16]))
    assert given[0][0] is None  # the first segment of the video starts from nothing made before
    for made_before, (held, start) in zip(calls, given[1:]):
        expected = made_before["made"][-1].astype(np.float32) / 127.5 - 1  # the last frame, in [-1, 1]
        assert start > 0 and tuple(held.shape) == (1, 3, 1, request.height, request.width)
        assert np.abs(held[0, :, 0].permute(1, 2, 0).numpy() - expected).max() < 1e-5
    assert max(e.step for e in events if e.stage == "denoising") == request.steps * 3
    if mode == "replace":
        assert [len(call["background_video"]) for call in calls] == [17, 17, 13]
        assert [len(call["mask_video"]) for call in calls] == [17, 17, 13]


def test_preview_is_a_png_with_its_recipe(engine):
    result = engine.generate(PreviewRequest(model="tiny-t2v", prompt="a castle", width=96, height=64, seed=11))
    assert result.media.suffix == ".png"
    image = Image.open(result.media)
    assert image.size == (96, 64)
    assert json.loads(image.text["wan_studio_recipe"])["request"]["seed"] == 11
    assert result.recipe["output"]["frames"] == 1


# -- bad inputs: each gets its message and nothing is written ---------------------------------

@pytest.mark.parametrize("build, field, message", [
    (lambda m: I2VRequest(model="tiny-i2v", prompt="x"), "image", "needs an input image"),
    (lambda m: I2VRequest(model="tiny-i2v", prompt="x", image=str(m["clip"])), "image", "is a video, not an image"),
    (lambda m: I2VRequest(model="tiny-i2v", prompt="x", image="/nope/missing.png"), "image", "missing.png"),
    (lambda m: FLF2VRequest(model="tiny-flf2v", prompt="x", image=str(m["wide"])), "last_image", "last frame"),
    (lambda m: V2VRequest(model="tiny-t2v", prompt="x", video=str(m["short"])), "video", "needs at least 5 frames"),
    (lambda m: V2VRequest(model="tiny-t2v", prompt="x", video=str(m["wide"])), "video", "wide.png"),
    (lambda m: V2VRequest(model="tiny-t2v", prompt="x", video=str(m["clip"]), strength=1.5),
     "strength", "Strength must be"),
    (lambda m: V2VRequest(model="tiny-t2v", prompt="x", video=str(m["clip"]), frames=33),
     "frames", "gives only 32 frames"),
    (lambda m: VACERequest(model="tiny-vace", prompt="x", vace_mode="reference", reference=[str(m["wide"])] * 4),
     "reference", "at most 3 reference images"),
    (lambda m: VACERequest(model="tiny-vace", prompt="x", vace_mode="inpaint", video=str(m["clip"])),
     "mask", "Inpaint needs a mask"),
    (lambda m: VACERequest(model="tiny-vace", prompt="x", vace_mode="sketchy"), "vace_mode", "Unknown VACE sub-mode"),
    (lambda m: VACERequest(model="tiny-vace", prompt="x", vace_mode="extension", extension="first_last",
                           image=str(m["wide"])), "last_image", "needs a last frame image"),
    (lambda m: AnimateRequest(model="tiny-animate", prompt="x", image=str(m["square"]), face_video=str(m["face"])),
     "pose_video", "pre-processed pose video"),
    (lambda m: AnimateRequest(model="tiny-animate", prompt="x", image=str(m["square"]), pose_video=str(m["pose"]),
                              face_video=str(m["face"]), animate_mode="replace"),
     "background_video", "Replace mode needs"),
    (lambda m: I2VRequest(model="tiny-t2v", prompt="x", image=str(m["wide"])), "model", "does not do I2V"),
    (lambda m: I2VRequest(model="tiny-i2v", prompt="x", image=str(m["wide"]), width=70, height=48),
     "width", "multiple of 16"),
    (lambda m: I2VRequest(model="tiny-i2v", prompt="x", image=str(m["wide"]), frames=12), "frames", "4k+1"),
])
def test_bad_inputs_have_their_messages(media, build, field, message):
    with pytest.raises(RequestError) as info:
        build(media).prepare()  # the structure fails on construction, a file's content when prepared
    assert info.value.field == field
    assert message in str(info.value)


def test_vace_mask_size_must_match_video(engine, media, tmp_path):
    request = VACERequest(model="tiny-vace", prompt="x", vace_mode="inpaint", video=str(media["clip"]),
                          bbox=[0, 0, 500, 500], frames=9, seed=1)
    # a box outside the frame is clipped, not an error; a mask video that is too short is
    short_mask = make_mask_video(tmp_path / "short_mask.mp4", fps=16, seconds=0.25)
    with pytest.raises(RequestError, match="mask video gives 4 frames"):
        VACERequest(model="tiny-vace", prompt="x", vace_mode="inpaint", video=str(media["clip"]),
                    mask=str(short_mask), frames=9).prepare()
    assert request.bbox == [0, 0, 500, 500]


# -- the CLI, one flag name per input across modes --------------------------------------------

@pytest.mark.parametrize("argv, frames, fps", [
    (["--mode", "i2v", "--model", "tiny-i2v", "--image", "{wide}"], 9, 16.0),
    (["--mode", "flf2v", "--model", "tiny-flf2v", "--image", "{wide}", "--last-image", "{tall}"], 9, 16.0),
    (["--mode", "v2v", "--model", "tiny-t2v", "--video", "{clip}", "--strength", "0.5", "--frames", "9"], 9, 16.0),
    (["--mode", "ti2v", "--model", "tiny-ti2v", "--image", "{square}"], 9, 24.0),
    (["--mode", "vace", "--model", "tiny-vace", "--vace-mode", "edges", "--video", "{clip}", "--frames", "9"], 9, 16.0),
    (["--mode", "vace", "--model", "tiny-vace", "--vace-mode", "inpaint", "--video", "{clip}", "--mask", "{mask_video}",
      "--frames", "9"], 9, 16.0),
    (["--mode", "vace", "--model", "tiny-vace", "--vace-mode", "outpaint", "--video", "{clip}", "--outpaint", "up,down",
      "--frames", "9"], 9, 16.0),
    (["--mode", "vace", "--model", "tiny-vace", "--vace-mode", "extension", "--extension", "first_frame", "--image",
      "{square}"], 9, 16.0),
    (["--mode", "vace", "--model", "tiny-vace", "--vace-mode", "reference", "--reference", "{square}", "--reference",
      "{wide}"], 9, 16.0),
    (["--mode", "animate", "--model", "tiny-animate", "--image", "{square}", "--pose-video", "{pose}", "--face-video",
      "{face}"], 45, 30.0),
    (["--mode", "animate", "--model", "tiny-animate", "--image", "{square}", "--pose-video", "{pose}", "--face-video",
      "{face}", "--animate-mode", "replace", "--background-video", "{clip}", "--mask-video", "{mask_video}"], 45, 30.0),
])
def test_cli_generate_each_mode(settings, media, capsys, argv, frames, fps):
    argv = [a.format(**{k: str(v) for k, v in media.items()}) for a in argv]
    assert cli_main(["generate", "--prompt", "a test", "--seed", "3", "--quiet", *argv]) == 0
    path = capsys.readouterr().out.strip()
    video = read_video(path)
    assert (video["count"], video["fps"]) == (frames, fps)
    # and the saved recipe re-runs from the library copy of the inputs
    assert cli_main(["generate", "--recipe", path.replace(".mp4", ".json"), "--quiet"]) == 0
    again = capsys.readouterr().out.strip()
    assert np.array_equal(read_video(again)["frames"], video["frames"])


def test_cli_preview_and_wrong_flag(settings, media, capsys):
    assert cli_main(["generate", "--mode", "preview", "--model", "tiny-t2v", "--prompt", "a tower", "--quiet"]) == 0
    assert capsys.readouterr().out.strip().endswith(".png")
    assert cli_main(["generate", "--mode", "t2v", "--model", "tiny-t2v", "--prompt", "x",
                     "--image", str(media["wide"])]) == 2
    assert "--image is not an input of t2v" in capsys.readouterr().err
    assert cli_main(["generate", "--mode", "i2v", "--model", "tiny-i2v", "--prompt", "x",
                     "--image", str(media["clip"])]) == 2
    assert "is a video, not an image" in capsys.readouterr().err
    # the rejected runs wrote nothing: only the preview's png, thumbnail and recipe are there
    # (the queue's own database and lock sit beside them: the CLI's jobs go through the queue)
    results = [p for p in settings.output_dir.iterdir() if not p.name.startswith(("queue.", ".queue"))]
    assert sorted(p.suffix for p in results) == [".jpg", ".json", ".png"]
