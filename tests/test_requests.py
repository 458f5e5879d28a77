"""Each invalid field of a T2V request gets its own specific message: structure when the request
is built, what needs the tokenizer (or another file) when it is prepared at submit."""

from __future__ import annotations

import pytest

from wan_studio.errors import RequestError, UnknownModel
from wan_studio.requests import T2VRequest, request_from_dict


def make(**overrides):
    fields = dict(model="tiny-t2v", prompt="a fox", width=64, height=64, frames=9, steps=4, guidance=5.0, seed=1)
    fields.update(overrides)
    return T2VRequest(**fields)


PREPARE_TIME = {"prompt": "tokens long", "negative_prompt": "The negative prompt is",
                "guidance_2": "single transformer"}


@pytest.mark.parametrize(
    "overrides, field, message",
    [
        ({"prompt": ""}, "prompt", "The prompt is empty"),
        ({"prompt": "   \n"}, "prompt", "The prompt is empty"),
        ({"prompt": "x " * 600}, "prompt", "tokens long; Tiny T2V (random weights) reads at most 512"),
        ({"negative_prompt": "y " * 700}, "negative_prompt", "The negative prompt is"),
        ({"width": 70}, "width",
         "Width must be a multiple of 16 for Tiny T2V (random weights); got 70 (nearest legal: 64 or 80)"),
        ({"height": 72}, "height", "Height must be a multiple of 16"),
        ({"width": 16}, "width", "Width must be between 32 and 192"),
        ({"height": 4096}, "height", "Height must be between 32 and 192 for Tiny T2V (random weights); got 4096"),
        ({"width": "wide"}, "width", "Width must be a whole number of pixels"),
        ({"frames": 10}, "frames",
         "Frames must be of the form 4k+1 (the VAE packs 4 frames per latent); got 10, nearest legal: 9 or 13"),
        ({"frames": 1}, "frames",
         "Frames must be between 5 and 960 (60 s at 16 fps, the studio's longest video); got 1"),
        ({"frames": 961}, "frames",
         "Frames must be between 5 and 960 (60 s at 16 fps, the studio's longest video); got 961"),
        ({"steps": 0}, "steps", "Steps must be a whole number of at least 1; got 0"),
        ({"steps": 2.5}, "steps", "Steps must be a whole number"),
        ({"steps": 1000}, "steps", "Steps must be at most 200"),
        ({"guidance": -1.0}, "guidance", "Guidance must be between 0 and 20; got -1"),
        ({"guidance": "high"}, "guidance", "Guidance must be a number"),
        ({"guidance_2": 4.0}, "guidance_2", "has a single transformer, so it takes no second guidance scale"),
        ({"flow_shift": 0.0}, "flow_shift", "Flow shift must be between 0.5 and 30"),
        ({"seed": -5}, "seed", "Seed must be a whole number from 0 to 4294967295; got -5"),
        ({"seed": 2**40}, "seed", "Seed must be a whole number from 0 to 4294967295"),
    ],
)
def test_each_invalid_field_has_its_own_message(overrides, field, message):
    needs_preparing = PREPARE_TIME.get(field, "\0") in message
    with pytest.raises(RequestError) as info:
        request = make(**overrides)  # the structure: checked on construction
        assert needs_preparing, "construction let a structural error through"
        request.prepare()
    assert info.value.field == field
    assert message in str(info.value)


def test_moe_guidance_2_is_range_checked():
    with pytest.raises(RequestError) as info:
        make(model="tiny-t2v-moe", guidance_2=50.0)
    assert info.value.field == "guidance_2"
    assert "Low-noise guidance (guidance_2) must be between 0 and 20; got 50" in str(info.value)


def test_mode_not_offered_by_model():
    with pytest.raises(RequestError) as info:
        make(model="tiny-i2v")
    assert info.value.field == "model"
    assert "Tiny I2V (random weights, CLIP image encoder) does not do T2V; models for T2V:" in str(info.value)
    assert "wan2.1-t2v-1.3b" in str(info.value)


def test_unknown_model_lists_known_ones():
    with pytest.raises(UnknownModel) as info:
        make(model="wan9-t2v")
    assert "Unknown model 'wan9-t2v'" in str(info.value) and "tiny-t2v" in str(info.value)


def test_defaults_come_from_the_catalog_when_prepared():
    plain = T2VRequest(model="wan2.2-t2v-a14b", prompt="a city at night")
    assert (plain.width, plain.frames, plain.seed) == (None, None, None)  # a value: what the user gave
    request = plain.prepare()
    assert (request.width, request.height, request.frames) == (1280, 720, 81)
    # guidance: high, low noise
    assert (request.steps, request.guidance, request.guidance_2, request.flow_shift) == (40, 4.0, 3.0, 12.0)
    small = T2VRequest(model="wan2.1-t2v-14b", prompt="a city", width=832, height=480).prepare()
    assert small.flow_shift == 3.0  # 480p shift; 720p would be 5.0
    assert T2VRequest(model="wan2.1-t2v-14b", prompt="a city").prepare().flow_shift == 5.0
    ti2v = T2VRequest(model="wan2.2-ti2v-5b", prompt="a city").prepare()
    assert (ti2v.width, ti2v.height, ti2v.frames) == (1280, 704, 121)
    with pytest.raises(RequestError, match="multiple of 32"):
        T2VRequest(model="wan2.2-ti2v-5b", prompt="a city", width=1280, height=720)


def test_preparing_twice_is_the_same_request():
    request = make(seed=None).prepare()
    assert request.prepare() is request  # prepared once: the seed drawn stays
    assert request.is_prepared and not make().is_prepared


def test_long_prompt_estimate_for_models_not_on_disk():
    ok = T2VRequest(model="wan2.1-t2v-1.3b", prompt="word " * 300).prepare()  # 302 tokens (the estimate: 303)
    assert ok.prompt
    with pytest.raises(RequestError, match="reads at most 512"):
        T2VRequest(model="wan2.1-t2v-1.3b", prompt="word " * 600).prepare()


def test_round_trip_through_dict_keeps_every_field():
    request = make(seed=77, negative_prompt="blurry")
    again = request_from_dict(request.to_dict())
    assert again == request and again.mode == "t2v"


def test_unknown_field_in_saved_request_is_reported():
    data = make().to_dict()
    data["cfg"] = 3
    with pytest.raises(RequestError, match="Unknown field"):
        request_from_dict(data)


@pytest.mark.parametrize("size", [(1, 1), (31, 200), (300, 20)])
def test_a_picture_too_small_to_blow_up_is_refused_by_name(tmp_path, size):
    from tests.media_fixtures import make_image
    from wan_studio.errors import RequestError
    from wan_studio.requests import I2VRequest

    image = make_image(tmp_path / "dot.png", size)
    with pytest.raises(RequestError) as info:
        I2VRequest(model="tiny-i2v", prompt="x", image=str(image)).prepare()
    assert info.value.field == "image"
    assert f"dot.png is {size[0]}x{size[1]}" in str(info.value) and "at least 32 px" in str(info.value)
    ok = make_image(tmp_path / "ok.png", (32, 48))
    assert I2VRequest(model="tiny-i2v", prompt="x", image=str(ok)).prepare().width > 0
