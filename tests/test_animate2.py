"""Wan 2.2 Animate-2, a checkpoint of the Animate mode that reads the plain driving video itself,
through its Tiny twin `tiny-animate-2`: a long driving video over several segments at 24 fps, the
progress per segment, Stop within a step, its own refusals, the CLI and the queue across
a restart; and the real checkpoints' defaults against the installed diffusers' Animate-2 blocks."""

from __future__ import annotations

import dataclasses
import json
import re
import threading
from pathlib import Path

import pytest

from tests.conftest import read_video, run_cli_here
from tests.media_fixtures import make_image, make_video
from wan_studio.errors import RequestError
from wan_studio.requests import AnimateRequest

MODEL = "tiny-animate-2"


@pytest.fixture
def media(tmp_path):
    folder = tmp_path / "media"
    folder.mkdir()
    return {"image": make_image(folder / "character.png", (96, 64)),
            # 1.25 s at 30 fps: 30 frames at 24 fps, three 9-frame segments with one frame carried
            "dance": make_video(folder / "dance.mp4", (80, 64), fps=30, seconds=1.25),
            "pose": make_video(folder / "pose.mp4", (64, 64), fps=30, seconds=0.5)}


def test_a_long_driving_video_runs_over_several_segments_at_24_fps(engine, media):
    request = AnimateRequest(model=MODEL, prompt="a dancer", image=str(media["image"]),
                             driving_video=str(media["dance"]), seed=2).prepare()
    assert request.frames == 30 and request.segments == 4  # ceil((30 - 1) / (9 - 1))
    reports = []
    result = engine.generate(request, on_progress=reports.append)
    video = read_video(result.media)
    # as long as the driving video at 24 fps, at the size the picture's aspect gives
    assert (video["count"], video["fps"]) == (30, 24.0)
    assert (video["width"], video["height"]) == (request.width, request.height) == (64, 48)
    steps = [r for r in reports if r.state == "running"]
    assert [r.step for r in steps] == list(range(1, 4 * request.steps + 1)) and {r.total for r in steps} == {8}
    assert [r.clip for r in steps] == [1, 1, 2, 2, 3, 3, 4, 4] and {r.clips for r in steps} == {4}
    assert "extracted" not in result.recipe  # no pose or face is made: the model reads the video itself
    assert result.recipe["request"]["model"] == MODEL and result.recipe["output"]["fps"] == 24


def test_stop_ends_the_run_within_a_step_and_saves_nothing(engine, media, settings):
    from wan_studio.errors import Cancelled

    cancel = threading.Event()
    request = AnimateRequest(model=MODEL, prompt="a dancer", image=str(media["image"]),
                             driving_video=str(media["dance"]), seed=2)

    steps = []

    def stop_at_the_third_step(status):
        if status.state == "running":
            steps.append(status.step)
            if status.step == 3:
                cancel.set()

    with pytest.raises(Cancelled):
        engine.generate(request, on_progress=stop_at_the_third_step, cancel=cancel)
    assert steps == [1, 2, 3]  # of 8: the second segment's first step was the last
    assert not any(p.suffix == ".mp4" for p in settings.output_dir.glob("*"))


@pytest.mark.parametrize("fields, field, message", [
    ({"pose_video": "pose"}, "pose_video", "reads the driving video itself and takes no pose video"),
    ({"driving_video": None}, "driving_video", "needs a driving video: a plain video of a person"),
    ({"animate_mode": "replace"}, "animate_mode", "replace) is Wan 2.2 Animate 14B's"),
    ({"retarget": True}, "retarget", "there is no pose to fit"),
])
def test_what_animate_2_does_not_take_is_refused_by_name(media, fields, field, message):
    given = {"image": str(media["image"]), "driving_video": str(media["dance"]),
             **{k: (str(media[v]) if v in media else v) for k, v in fields.items()}}
    with pytest.raises(RequestError, match=re.escape(message)) as refused:
        AnimateRequest(model=MODEL, prompt="x", **given)
    assert refused.value.field == field


def test_the_real_checkpoints_take_the_defaults_of_diffusers_animate_2_blocks(tmp_path):
    """Base and distilled, read from the installed diffusers: its blocks' steps and guider scale,
    the 24 fps, the 81-frame segments carrying one frame, the 800 x 640 area."""
    from diffusers import WanAnimate2Blocks, WanAnimate2DistilledBlocks

    from wan_studio import catalog
    from wan_studio.runtime.dry_run import prepared_summary
    from wan_studio.settings import Settings

    settings = Settings(output_dir=tmp_path / "out", models_dir=tmp_path / "models", tiny_models_dir=tmp_path / "tiny")
    picture = make_image(tmp_path / "portrait.png", (640, 800))
    dance = make_video(tmp_path / "long.mp4", (320, 400), fps=30, seconds=8.0)
    for model_id, blocks in (("wan2.2-animate-2-14b", WanAnimate2Blocks()),
                             ("wan2.2-animate-2-14b-distilled", WanAnimate2DistilledBlocks())):
        inputs = {param.name: param.default for param in blocks.inputs}
        guider = next(spec for spec in blocks.expected_components if spec.name == "guider")
        record = catalog.get(model_id)
        assert record.steps == inputs["num_inference_steps"], model_id
        assert record.guidance == guider.config["guidance_scale"], model_id
        assert record.fps == inputs["fps"] == 24
        assert record.frames_default == inputs["segment_frame_length"] == 81
        assert record.default_size == (inputs["width"], inputs["height"]) == (640, 800)
        summary = prepared_summary(AnimateRequest(model=model_id, prompt="a dancer", image=str(picture),
                                                  driving_video=str(dance)), settings)
        # 8 s of driving video at 24 fps: 192 frames in three 81-frame segments (80 new frames each)
        assert (summary["frames"], summary["fps"], summary["segments"]) == (192, 24, 3)
        assert (summary["steps"], summary["guidance"], summary["segment_frame_length"]) == \
            (inputs["num_inference_steps"], guider.config["guidance_scale"], 81)


def test_the_estimate_holds_the_reference_kv_cache_of_a_segment():
    """Animate-2 keeps the K/V of a whole segment's reference tokens at every layer while it denoises
    (diffusers' WanAnimate2KVCache); its docs run it on an 80 GB card with the transformer offloaded.
    Per segment, not per video: a longer driving video needs no more memory, only more time."""
    from wan_studio import catalog
    from wan_studio.memory.choose import choose
    from wan_studio.memory.estimate import estimate, shape_for
    from wan_studio.memory.plans import NoPlanFits, ladder, simulated_machine

    record, older = catalog.get("wan2.2-animate-2-14b"), catalog.get("wan2.2-animate-14b")
    big = simulated_machine("cuda", 80, (9, 0))
    shape = shape_for(record)
    kept = estimate(record, shape, ladder(big, record)[0], big).breakdown["reference_kv_cache"]
    assert 25 < kept < 45  # GB, bf16: 21 latent frames of 50 x 40 tokens, 40 layers of 5120
    assert "reference_kv_cache" not in estimate(older, shape_for(older), ladder(big, older)[0], big).breakdown
    with pytest.raises(NoPlanFits):
        choose(record, shape, simulated_machine("cuda", 24, (8, 9)))
    assert choose(record, shape, big).estimate.fits(big)
    longer = dataclasses.replace(shape, passes=shape.passes * 3)
    assert estimate(record, longer, ladder(big, record)[-1], big).peak_gb == \
        estimate(record, shape, ladder(big, record)[-1], big).peak_gb


def test_cli_and_a_queue_restart(settings, media, engine, capsys):
    proc = run_cli_here(capsys, "generate", "--mode", "animate", "--model", MODEL, "--prompt", "a dancer",
                   "--image", str(media["image"]), "--driving-video", str(media["pose"]), "--seed", "1")
    assert proc.returncode == 0, proc.stderr
    out = Path(proc.stdout.strip())
    assert (read_video(out)["count"], read_video(out)["fps"]) == (12, 24.0)  # 0.5 s at 24 fps
    refused = run_cli_here(capsys, "generate", "--mode", "animate", "--model", MODEL, "--prompt", "x",
                      "--image", str(media["image"]), "--pose-video", str(media["pose"]),
                      "--driving-video", str(media["pose"]))
    assert refused.returncode == 2 and "takes no pose video" in refused.stderr
    # (the API: tests/test_app.py's every-mode test calls /animate with it)

    from wan_studio.queue.store import JobStore
    from wan_studio.queue.worker import QueueWorker

    db, inputs = settings.output_dir / "queue.db", settings.output_dir / ".queue" / "inputs"
    first = JobStore(db, inputs)
    job = first.add(AnimateRequest(model=MODEL, prompt="after a restart", image=str(media["image"]),
                                   driving_video=str(media["dance"]), seed=3))
    first.close()  # the studio goes away with the job queued
    reopened = JobStore(db, inputs)
    QueueWorker(reopened, engine, poll_interval_s=0.2).run_until_empty()
    done = reopened.get(job.id)
    assert done.state == "done", done.messages
    assert read_video(Path(done.result_path))["count"] == 30
    assert json.loads(Path(done.result_path).with_suffix(".json").read_text())["request"]["model"] == MODEL
    reopened.close()
