"""`generate --dry-run`: the prepared request as JSON, for every mode and checkpoint, loading nothing."""

from __future__ import annotations

import json

import pytest

from tests.media_fixtures import make_image, make_video, speech_like, write_wav
from wan_studio import catalog
from wan_studio.cli import main as cli_main

REQUIRED = {"mode", "model", "width", "height", "frames", "fps", "steps", "guidance", "flow_shift", "seed",
            "negative_prompt", "plan", "estimate"}
AUDIO_S = 6.0


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dry-run-media")
    return {
        "image": make_image(folder / "face.png", (160, 120)),
        "video": make_video(folder / "clip.mp4", (160, 120), fps=24, seconds=3.0),
        "pose": make_video(folder / "pose.mp4", (64, 64), fps=30, seconds=3.0),
        "face": make_video(folder / "face.mp4", (64, 64), fps=30, seconds=3.0, source="testsrc"),
        "audio": write_wav(folder / "speech.wav", speech_like(AUDIO_S), 16000),
    }


def mode_flags(mode: str, inputs, model: str) -> list[str]:
    from wan_studio.requests import AnimateRequest

    if mode == "animate" and AnimateRequest.reads_driving_video(catalog.get(model)):  # Animate-2: the plain video
        return ["--image", inputs["image"], "--driving-video", inputs["pose"]]
    return {
        "t2v": [], "preview": [], "ti2v": [],
        "i2v": ["--image", inputs["image"]],
        "flf2v": ["--image", inputs["image"], "--last-image", inputs["image"]],
        "v2v": ["--video", inputs["video"]],
        "vace": ["--vace-mode", "reference", "--reference", inputs["image"]],
        "animate": ["--image", inputs["image"], "--pose-video", inputs["pose"], "--face-video", inputs["face"]],
        "s2v": ["--image", inputs["image"], "--audio", inputs["audio"]],
    }[mode]


PAIRS = [(c.id, mode) for c in catalog.checkpoints() for mode in c.modes]


@pytest.mark.parametrize(("model", "mode"), PAIRS, ids=[f"{m}-{mode}" for m, mode in PAIRS])
def test_dry_run_prints_the_prepared_request(settings, inputs, capsys, monkeypatch, tmp_path, model, mode):
    flags = [str(v) for v in mode_flags(mode, inputs, model)]
    # a Tiny models folder of its own: the shared one is written by the other pytest workers meanwhile
    own_tiny = tmp_path / "tiny-models"
    monkeypatch.setenv("WAN_STUDIO_TINY_MODELS_DIR", str(own_tiny))
    code = cli_main(["generate", "--mode", mode, "--model", model, "--prompt", "a lighthouse at dusk", "--seed", "7",
                     "--dry-run", *flags])
    out, err = capsys.readouterr()
    assert code == 0, err
    data = json.loads(out)
    assert REQUIRED <= set(data), REQUIRED - set(data)
    record = catalog.get(model)
    assert (data["mode"], data["model"], data["seed"], data["fps"]) == (mode, model, 7, record.fps)
    assert data["width"] % record.spatial_granularity == 0 and data["height"] % record.spatial_granularity == 0
    assert data["steps"] == record.steps and data["guidance"] == record.guidance
    assert set(data["estimate"]) == {"seconds", "peak_gib", "ram_gib"}
    assert data["estimate"]["seconds"] > 0 and data["estimate"]["peak_gib"] > 0
    assert data["plan"] in ("max-speed", "balanced", "balanced-quantized", "low-vram", "minimum")
    if mode == "preview":
        assert data["frames"] == 1
    elif mode == "s2v":
        # 6 s of audio: the reference's audio buckets make 3 clips of 32 frames (tiny; 93 frames after the first
        # clip's 3) or 2 of 80 (S2V-14B, enough for all 96 frames at 16 fps)
        assert (data["frames"], data["clips"]) == {"tiny-s2v": (93, 3), "wan2.2-s2v-14b": (96, 2)}[model]
    elif mode == "v2v":  # the 3 s input at the model's fps: trimmed to 4k+1 in one pass, or all of it in windows
        available = 3 * record.fps
        long = available > record.frames_max
        assert data["frames"] == (available if long else (available - 1) // 4 * 4 + 1)
        assert ("windows" in data) == long
    elif mode == "animate":  # as long as the 3 s pose (or driving) video at the model's fps: 30, Animate-2's 24
        assert data["frames"] == 3 * record.fps
    elif record.frame_rule == "4k+1":
        assert data["frames"] == record.frames_default and (data["frames"] - 1) % 4 == 0
    # nothing was loaded, built, queued or written
    assert not own_tiny.exists() or not any(own_tiny.iterdir())
    assert not list(settings.output_dir.glob("*.mp4")) and not (settings.output_dir / "queue.db").exists()


@pytest.mark.parametrize(("vram_gib", "plan", "fits"), [(16, "low-vram", True), (2, "minimum", False)])
def test_dry_run_plans_for_the_machine(settings, capsys, monkeypatch, vram_gib, plan, fits):
    from wan_studio.memory import plans

    monkeypatch.setattr(plans, "machine_from_backend",
                        lambda backend, limit_gb=0.0, compile="auto": plans.simulated_machine("cuda", vram_gib, (8, 9)))
    code = cli_main(["generate", "--model", "wan2.1-t2v-14b", "--prompt", "a fox", "--size", "1280x720", "--dry-run"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    assert (data["plan"], data["fits"]) == (plan, fits)  # README table: 14B at 1280x720 on 16 GiB is Low VRAM
    if not fits:
        assert any("What would fit" in m or "Nothing smaller fits" in m for m in data["messages"])


def test_dry_run_refuses_a_bad_request_like_a_real_run(settings, capsys):
    assert cli_main(["generate", "--model", "tiny-t2v", "--prompt", "x", "--frames", "12", "--dry-run"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "4k+1" in err and "nearest legal: 9 or 13" in err
    assert cli_main(["generate", "--mode", "i2v", "--model", "tiny-i2v", "--prompt", "x", "--dry-run"]) == 2
    assert "needs an input image" in capsys.readouterr().err
