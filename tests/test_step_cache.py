"""The step cache: off / balanced / aggressive on the Tiny models (dense, MoE, VACE, S2V), the work it
skipped in the recipe, and a clean transformer for the next job."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import read_video
from tests.media_fixtures import make_image, make_video, speech_like, write_wav
from wan_studio.cli import main as cli_main
from wan_studio.errors import RequestError
from wan_studio.requests import PreviewRequest, S2VRequest, T2VRequest, V2VRequest, VACERequest

SMALL = dict(width=64, height=64, frames=9, steps=10, seed=1)
TINY_LAYERS = 2  # the Tiny transformers' blocks (wan_studio/models/tiny.py)


def frames_of(result) -> np.ndarray:
    return read_video(result.media)["frames"].astype(np.int16)


@pytest.mark.parametrize("model", ["tiny-t2v", "tiny-t2v-moe"])
def test_each_setting_runs_and_records_what_it_skipped(engine, model):
    off = engine.generate(T2VRequest(model=model, prompt="a fox", cache="off", **SMALL))
    assert off.recipe["cache"] == {"setting": "off", "method": None}
    skipped = {}
    for setting in ("balanced", "aggressive"):
        result = engine.generate(T2VRequest(model=model, prompt="a fox", cache=setting, **SMALL))
        cache = result.recipe["cache"]
        assert cache["method"] == "magcache" and cache["unit"] == "blocks"  # both have measured ratios
        # every block of every pass (cond and uncond) of every step is either run or skipped
        assert cache["computed"] + cache["skipped"] == SMALL["steps"] * 2 * TINY_LAYERS
        skipped[setting] = cache["skipped"]
        assert result.recipe["request"]["cache"] == setting
        assert not np.array_equal(frames_of(result), frames_of(off))  # skipping changes the result a little
    assert 0 < skipped["balanced"] <= skipped["aggressive"]
    again = engine.generate(T2VRequest(model=model, prompt="a fox", cache="off", **SMALL))
    assert np.array_equal(frames_of(again), frames_of(off))  # the cache came off cleanly
    pipeline = engine.swap.active_pipeline
    for transformer in (pipeline.transformer, getattr(pipeline, "transformer_2", None)):
        assert transformer is None or not transformer.is_cache_enabled


def test_without_measured_ratios_the_first_block_decides(engine):
    result = engine.generate(T2VRequest(model="tiny-ti2v", prompt="a fox", cache="aggressive", **SMALL))
    cache = result.recipe["cache"]
    assert cache["method"] == "first-block"
    assert cache["computed"] + cache["skipped"] == SMALL["steps"] * 2 * TINY_LAYERS
    assert cache["skipped"] % (TINY_LAYERS - 1) == 0  # a skip keeps the first block and skips the rest


def test_vace_predicts_module_outputs_on_a_fixed_schedule(engine, tmp_path):
    reference = make_image(tmp_path / "ref.png", (64, 64))
    counts = {}
    for setting in ("balanced", "aggressive"):
        result = engine.generate(VACERequest(model="tiny-vace", prompt="a vase", vace_mode="reference",
                                             reference=[str(reference)], cache=setting, **SMALL))
        assert result.recipe["cache"]["method"] == "taylorseer"
        counts[setting] = (result.recipe["cache"]["computed"], result.recipe["cache"]["skipped"])
    # 10 steps, 3 hooked modules per block (attn1, attn2, ffn) x 2 blocks x 2 passes = 12 per step.
    # balanced: warm-up 2 steps, every 2nd step, the last 2 computed -> steps 2, 4, 6 predicted
    # aggressive: warm-up 1 step, every 4th step, the last computed -> steps 1, 3, 4, 5, 7, 8 predicted
    assert counts == {"balanced": (7 * 12, 3 * 12), "aggressive": (4 * 12, 6 * 12)}


def test_s2v_runs_each_clip_from_a_fresh_cache(engine, tmp_path):
    image = make_image(tmp_path / "face.png", (120, 120), color=(220, 180, 150))
    audio = write_wav(tmp_path / "speech.wav", speech_like(2.5), 16000)  # 40 frames: two clips of 32
    request = S2VRequest(model="tiny-s2v", prompt="a woman talks", image=str(image), audio=str(audio), steps=10,
                         seed=2, cache="balanced").prepare()
    assert request.clips == 2
    result = engine.generate(request)
    assert read_video(result.media)["count"] == 40
    # per clip as in the VACE case (7 computed, 3 predicted per module and pass), twice
    assert result.recipe["cache"] == {"setting": "balanced", "method": "taylorseer", "unit": "module calls",
                                      "computed": 2 * 7 * 12, "skipped": 2 * 3 * 12}


def test_v2v_runs_without_a_cache_and_says_why(engine, tmp_path):
    video = make_video(tmp_path / "clip.mp4", (64, 48), fps=16, seconds=1.0)
    result = engine.generate(V2VRequest(model="tiny-t2v", prompt="as ink", video=str(video), steps=3, seed=1,
                                        cache="balanced"))
    assert result.recipe["cache"]["method"] is None
    assert any("without a step cache" in message and "V2V" in message for message in result.recipe["messages"])


def test_defaults_and_a_bad_setting():
    assert T2VRequest(model="tiny-t2v", prompt="x").prepare().cache == "off"
    assert PreviewRequest(model="tiny-t2v", prompt="x").prepare().cache == "balanced"  # a quick look
    with pytest.raises(RequestError) as info:
        T2VRequest(model="tiny-t2v", prompt="x", cache="turbo")
    assert info.value.field == "cache"
    assert str(info.value) == "Unknown step cache 'turbo'; choose one of: off, balanced, aggressive."


def test_the_cli_takes_cache_and_dry_run_shows_it(settings, capsys):
    code = cli_main(["generate", "--mode", "t2v", "--model", "tiny-t2v", "--prompt", "x", "--cache", "aggressive",
                     "--steps", "20", "--dry-run"])
    out, err = capsys.readouterr()
    assert code == 0, err
    summary = json.loads(out)
    assert summary["cache"] == {"setting": "aggressive", "method": "magcache", "expected_skip": 0.55}
    with pytest.raises(SystemExit) as exited:
        cli_main(["generate", "--mode", "t2v", "--model", "tiny-t2v", "--prompt", "x", "--cache", "max"])
    assert exited.value.code == 2 and "invalid choice: 'max'" in capsys.readouterr().err


def test_the_estimate_credits_the_expected_skip():
    from wan_studio.memory.estimate import estimate
    from wan_studio.memory.plans import Plan, simulated_machine

    plan, rtx4080 = Plan("balanced", "bfloat16", offload="model"), simulated_machine("cuda", 16, (8, 9))
    full = T2VRequest(model="wan2.1-t2v-14b", prompt="x", width=1280, height=720, frames=81).prepare()
    cached = T2VRequest(model="wan2.1-t2v-14b", prompt="x", width=1280, height=720, frames=81,
                        cache="balanced").prepare()
    off = estimate(full.checkpoint, full, plan, rtx4080).seconds_breakdown["denoise"]
    on = estimate(cached.checkpoint, cached, plan, rtx4080).seconds_breakdown["denoise"]
    assert on < off and abs(on / off - (1 - 0.4)) < 0.02  # MagCache balanced: 40 % expected (presets/step_cache.json)
