"""wan_studio.media.vace_controls: the video and mask each VACE sub-mode hands to WanVACEPipeline
(white mask = generate, black = keep, unknown pixels mid grey)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from wan_studio.errors import RequestError
from wan_studio.media import vace_controls as vace_inputs

W, H, COUNT = 96, 64, 9
GREY = (128, 128, 128)


def moving_square(count=COUNT, step=3) -> list[Image.Image]:
    """A textured square sliding right over a dark, slightly textured background."""
    rng = np.random.default_rng(0)
    background = (rng.random((H, W, 3)) * 40).astype(np.uint8)
    texture = (rng.random((20, 20, 3)) * 155 + 100).astype(np.uint8)
    frames = []
    for i in range(count):
        frame = background.copy()
        x = 10 + step * i
        frame[22:42, x:x + 20] = texture
        frames.append(Image.fromarray(frame))
    return frames


def values(image) -> np.ndarray:
    return np.asarray(image)


def check_error(call, field: str, *fragments: str):
    with pytest.raises(RequestError) as caught:
        call()
    assert caught.value.field == field
    for fragment in fragments:
        assert fragment in caught.value.message, caught.value.message
    return caught.value.message


# -- controls -------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["grayscale", "edges", "scribble", "flow"])
def test_controls_keep_count_and_size(kind):
    frames = moving_square()
    out = vace_inputs.control_frames(kind, frames)
    assert len(out) == COUNT
    assert all(f.size == (W, H) and f.mode == "RGB" for f in out)
    assert not np.array_equal(values(out[3]), values(frames[3]))


def test_grayscale_is_grey():
    out = values(vace_inputs.control_frames("grayscale", moving_square())[2]).astype(int)
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()
    assert out[30, 30, 0] > out[2, 2, 0]  # the bright square stays brighter than the background


def test_edges_are_sparse_white_lines():
    out = values(vace_inputs.control_frames("edges", moving_square())[4])
    assert set(np.unique(out)) <= {0, 255}
    white = (out[..., 0] == 255).mean()
    assert 0.005 < white < 0.5
    assert out[10:, 4:8].max() == 0  # nothing moves or changes there, the square never reached it


def test_scribble_is_thicker_than_edges():
    frames = moving_square()
    edges = (values(vace_inputs.control_frames("edges", frames)[4])[..., 0] == 255).mean()
    scribble = values(vace_inputs.control_frames("scribble", frames)[4])[..., 0]
    assert set(np.unique(scribble)) <= {0, 255}
    assert 0 < (scribble == 255).mean() < 0.6
    assert (scribble == 255).mean() > edges * 0.5


def test_flow_of_a_square_moving_right_is_one_hue():
    import cv2

    out = vace_inputs.control_frames("flow", moving_square())
    hsv = cv2.cvtColor(values(out[4]), cv2.COLOR_RGB2HSV)
    moving = hsv[..., 1] > 80  # saturated = moving; still pixels are white
    assert moving.mean() > 0.02
    hue = hsv[..., 0][moving].astype(float) * 2  # degrees; rightward motion is hue 0 (red)
    mean_angle = np.degrees(np.angle(np.exp(1j * np.radians(hue)).mean())) % 360
    assert min(mean_angle, 360 - mean_angle) < 25
    assert (hsv[:8, :8, 1] < 40).all()  # the corner does not move: no colour
    # frame 0 carries the motion 0 -> 1, so it is coloured too
    assert (cv2.cvtColor(values(out[0]), cv2.COLOR_RGB2HSV)[..., 1] > 80).mean() > 0.02


def test_flow_of_a_still_video_is_white():
    frame = moving_square(1)[0]
    out = vace_inputs.control_frames("flow", [frame, frame, frame])
    assert values(out[1]).min() > 240


@pytest.mark.parametrize("kind", vace_inputs.CONTROL_KINDS)
def test_control_source_passes_through(kind):
    frames = moving_square()
    frames[0] = frames[0].convert("L").convert("RGBA")
    out = vace_inputs.control_frames(kind, frames, source="control")
    assert len(out) == COUNT and all(f.mode == "RGB" for f in out)
    assert np.array_equal(values(out[5]), values(frames[5]))


def test_control_argument_errors():
    check_error(lambda: vace_inputs.control_frames("canny", moving_square()), "vace_mode",
                "Unknown VACE control 'canny'")
    check_error(lambda: vace_inputs.control_frames("edges", moving_square(), source="other"), "control_source")
    check_error(lambda: vace_inputs.control_frames("edges", []), "video", "at least one frame")


# -- inpaint --------------------------------------------------------------------------------------
def test_inpaint_with_a_box():
    frames = moving_square()
    video, masks = vace_inputs.inpaint(frames, (10, 5, 30, 25))
    assert len(video) == len(masks) == COUNT
    mask = values(masks[0])
    assert masks[0].mode == "L" and masks[0].size == (W, H)
    assert (mask[5:25, 10:30] == 255).all() and mask.sum() == 20 * 20 * 255
    frame = values(video[3])
    assert (frame[5:25, 10:30] == 128).all()  # the area to generate is grey
    assert np.array_equal(frame[40:, 50:], values(frames[3])[40:, 50:])  # the rest is untouched


def test_inpaint_with_one_mask_image_and_a_mask_list():
    frames = moving_square()
    one = Image.new("L", (W, H), 0)
    one.paste(200, (0, 0, 10, 10))  # not quite white: binarised to 255
    video, masks = vace_inputs.inpaint(frames, one)
    assert len(masks) == COUNT and set(np.unique(values(masks[4]))) == {0, 255}
    assert values(masks[4])[5, 5] == 255 and values(video[4])[5, 5].tolist() == list(GREY)
    per_frame = [Image.new("L", (W, H), 255 if i % 2 else 0) for i in range(COUNT)]
    video, masks = vace_inputs.inpaint(frames, per_frame)
    assert values(masks[1]).min() == 255 and values(masks[2]).max() == 0
    assert np.array_equal(values(video[2]), values(frames[2]))


def test_inpaint_mismatches():
    frames = moving_square()
    check_error(lambda: vace_inputs.inpaint(frames, [Image.new("L", (W, H))] * 5), "mask",
                "The mask video has 5 frames but the video has 9")
    check_error(lambda: vace_inputs.inpaint(frames, Image.new("L", (50, 40))), "mask",
                "The mask is 50x40 pixels but the video is 96x64")
    check_error(lambda: vace_inputs.inpaint(frames, (200, 200, 300, 300)), "bbox", "outside the 96x64 frame")
    check_error(lambda: vace_inputs.inpaint(frames, (30, 5, 10, 25)), "bbox", "x0 < x1")


# -- outpaint -------------------------------------------------------------------------------------
def test_outpaint_left_right():
    frames = moving_square()
    video, masks, width, height = vace_inputs.outpaint(frames, ["left", "right"], 0.25, 16)
    assert (width, height) == (144, 64)  # 96 + 24 + 24
    assert all(f.size == (144, 64) for f in video) and len(masks) == COUNT
    mask, frame = values(masks[0]), values(video[0])
    assert (mask[:, :24] == 255).all() and (mask[:, -24:] == 255).all() and (mask[:, 24:120] == 0).all()
    assert (frame[:, :24] == 128).all() and np.array_equal(frame[:, 24:120], values(frames[0]))


def test_outpaint_snaps_up_and_pads_only_the_chosen_side():
    frames = [f.resize((90, 60)) for f in moving_square(3)]
    video, masks, width, height = vace_inputs.outpaint(frames, ["up"], 0.5, 16)
    assert (width, height) == (96, 96)  # 90 -> 96 wide, 60 + 30 -> 96 high
    mask = values(masks[0])
    assert (mask[:36, 3:93] == 255).all()  # the new top (30 px + 6 px of snapping)
    assert (mask[36:, 3:93] == 0).all()  # the original picture
    assert (mask[:, :3] == 255).all() and (mask[:, 93:] == 255).all()  # width snapping, shared by both sides


def test_outpaint_errors():
    frames = moving_square(2)
    check_error(lambda: vace_inputs.outpaint(frames, ["sideways"], 0.25, 16), "outpaint_directions", "sideways")
    check_error(lambda: vace_inputs.outpaint(frames, [], 0.25, 16), "outpaint_directions")
    check_error(lambda: vace_inputs.outpaint(frames, ["left"], 0, 16), "outpaint_ratio", "above 0 and at most 2")
    check_error(lambda: vace_inputs.outpaint(frames, ["left"], 2.5, 16), "outpaint_ratio")


# -- extension ------------------------------------------------------------------------------------
def pattern(masks) -> str:
    """'K' for a kept (black) frame, 'G' for a generated (white) one."""
    out = ""
    for m in masks:
        v = values(m)
        assert v.min() == v.max() and v.min() in (0, 255)
        out += "K" if v.min() == 0 else "G"
    return out


def test_extension_patterns():
    first = Image.new("RGB", (200, 100), (255, 0, 0))
    last = Image.new("RGB", (100, 200), (0, 0, 255))
    clip = moving_square(3)
    cases = {
        "first_frame": (dict(first=first), "KGGGG"),
        "last_frame": (dict(last=last), "GGGGK"),
        "first_last": (dict(first=first, last=last), "KGGGK"),
        "first_clip": (dict(clip=clip), "KKKGG"),
        "last_clip": (dict(clip=clip), "GGKKK"),
    }
    for kind, (inputs, expected) in cases.items():
        video, masks = vace_inputs.extension(kind, 5, 48, 32, **inputs)
        assert pattern(masks) == expected, kind
        assert all(f.size == (48, 32) and f.mode == "RGB" for f in video)
        for frame, flag in zip(video, expected):
            if flag == "G":
                assert (values(frame) == 128).all(), kind
    video, _ = vace_inputs.extension("first_last", 5, 48, 32, first=first, last=last)
    assert values(video[0])[16, 24].tolist() == [255, 0, 0] and values(video[-1])[16, 24].tolist() == [0, 0, 255]


def test_extension_errors():
    check_error(lambda: vace_inputs.extension("first_last", 5, 48, 32, first=Image.new("RGB", (4, 4))),
                "last_image", "first last extension needs a first image and a last image")
    check_error(lambda: vace_inputs.extension("first_frame", 5, 48, 32), "image", "needs a first image")
    check_error(lambda: vace_inputs.extension("last_clip", 5, 48, 32), "video", "needs a video clip")
    check_error(lambda: vace_inputs.extension("first_clip", 5, 48, 32, clip=moving_square(5)), "video",
                "The clip has 5 frames but the video is 5", "at most 4")
    check_error(lambda: vace_inputs.extension("middle", 5, 48, 32), "extension", "Unknown extension 'middle'")
