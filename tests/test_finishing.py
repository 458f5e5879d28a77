"""Upscaling a result (and the queue's side of finishing jobs): a new, larger result beside its
parent, from the Tiny upscaler or a Real-ESRGAN weight file, as a job with progress and stop."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import read_video
from tests.media_fixtures import make_image, make_video
from wan_studio.cli import main as cli_main


def _t2v_result(capsys, frames: int = 9, size: int | str = 64) -> Path:
    size = f"{size}x{size}" if isinstance(size, int) else size
    assert cli_main(["generate", "--mode", "t2v", "--model", "tiny-t2v", "--prompt", "a red kite", "--frames",
                     str(frames), "--size", size, "--steps", "2", "--seed", "3", "--quiet"]) == 0
    return Path(capsys.readouterr().out.strip())


def _random_state(layout: list[tuple[str, tuple[int, ...]]], seed: int = 0) -> dict:
    import torch

    generator = torch.Generator().manual_seed(seed)
    return {name: torch.randn(shape, generator=generator) * 0.05 for name, shape in layout}


def rrdbnet_layout(in_channels: int, features: int = 8, growth: int = 4, blocks: int = 1) -> list:
    """Real-ESRGAN's RRDBNet parameter names and shapes as its published weight files hold them."""
    conv = lambda name, cout, cin: [(f"{name}.weight", (cout, cin, 3, 3)), (f"{name}.bias", (cout,))]  # noqa: E731
    layout = conv("conv_first", features, in_channels)
    for block in range(blocks):
        for rdb in (1, 2, 3):
            for k in range(1, 5):
                layout += conv(f"body.{block}.rdb{rdb}.conv{k}", growth, features + (k - 1) * growth)
            layout += conv(f"body.{block}.rdb{rdb}.conv5", features, features + 4 * growth)
    for name in ("conv_body", "conv_up1", "conv_up2", "conv_hr"):
        layout += conv(name, features, features)
    return layout + conv("conv_last", 3, features)


def srvgg_layout(features: int = 8, convs: int = 2, scale: int = 4) -> list:
    """SRVGGNetCompact's (realesr-animevideov3) names and shapes: conv, PReLU, ..., conv to 3 x scale^2."""
    layout = [("body.0.weight", (features, 3, 3, 3)), ("body.0.bias", (features,)), ("body.1.weight", (features,))]
    for k in range(convs):
        index = 2 + 2 * k
        layout += [(f"body.{index}.weight", (features, features, 3, 3)), (f"body.{index}.bias", (features,)),
                   (f"body.{index + 1}.weight", (features,))]
    last = 2 + 2 * convs
    return layout + [(f"body.{last}.weight", (3 * scale * scale, features, 3, 3)),
                     (f"body.{last}.bias", (3 * scale * scale,))]


# -- the command and the result ------------------------------------------------------------------
def test_upscale_doubles_the_size_keeps_the_frames_the_sound_and_the_parent(settings, tmp_path, capsys):
    from tests.media_fixtures import speech_like, write_wav
    from wan_studio.media import probe_video
    from wan_studio.runtime.gallery import gallery_page
    from wan_studio.runtime.library import OutputLibrary

    image = make_image(tmp_path / "face.png", (128, 128))
    audio = write_wav(tmp_path / "voice.wav", speech_like(1.0), 16000)
    assert cli_main(["generate", "--mode", "s2v", "--model", "tiny-s2v", "--prompt", "a singer", "--image", str(image),
                     "--audio", str(audio), "--seed", "1", "--quiet"]) == 0
    parent = Path(capsys.readouterr().out.strip())
    before = read_video(parent)
    assert cli_main(["upscale", str(parent), "--scale", "2", "--quiet"]) == 0
    child = Path(capsys.readouterr().out.strip())
    made = read_video(child)
    assert (made["width"], made["height"]) == (2 * before["width"], 2 * before["height"])
    assert made["count"] == before["count"] and made["fps"] == before["fps"]
    assert probe_video(child).has_audio and abs(probe_video(child).duration_s - probe_video(parent).duration_s) < 0.1
    # the Tiny upscaler is the frame enlarged plus a faint texture: each 2x2 block is its parent's pixel
    shrunk = made["frames"].reshape(made["count"], before["height"], 2, before["width"], 2, 3).mean(axis=(2, 4))
    assert np.abs(shrunk - before["frames"].astype(float)).mean() < 6
    recipe = json.loads(child.with_suffix(".json").read_text())
    assert recipe["parent"] == parent.stem and recipe["request"]["prompt"] == "a singer"
    assert recipe["finishing"] == {"operation": "upscale", "scale": 2, "model": "tiny-upscaler", "model_scale": 2,
                                   "tile": recipe["finishing"]["tile"]}
    assert np.array_equal(read_video(parent)["frames"], before["frames"])  # the parent is left as it was
    captions = [entry.caption for entry in gallery_page(OutputLibrary(settings.output_dir))[0]]
    assert captions[:2] == ["[S2V · upscaled ×2] a singer", "[S2V] a singer"]


def test_scale_four_from_a_two_times_model_and_tiles_leave_no_seam(settings, capsys):
    parent = _t2v_result(capsys)
    assert cli_main(["upscale", str(parent), "--scale", "4", "--quiet"]) == 0
    four = read_video(Path(capsys.readouterr().out.strip()))
    assert (four["width"], four["height"], four["count"]) == (256, 256, 9)
    # 32 px tiles (each seeing 16 px of its neighbours) give the very frames one 64 px tile gives
    outputs = []
    for tile in ("32", "64"):
        assert cli_main(["upscale", str(parent), "--tile", tile, "--quiet"]) == 0
        outputs.append(Path(capsys.readouterr().out.strip()))
    assert json.loads(outputs[0].with_suffix(".json").read_text())["finishing"]["tile"] == 32
    assert np.array_equal(read_video(outputs[0])["frames"], read_video(outputs[1])["frames"])


def test_real_esrgan_weight_files_load_by_their_published_names(settings, tmp_path, capsys):
    """Weight files laid out as Real-ESRGAN publishes them: RRDBNet x4 and x2 (inside
    'params_ema'), SRVGGNetCompact x4 (inside 'params'). With the last convolution zeroed, what
    each must give is known without running our code: RRDBNet its last bias everywhere,
    SRVGGNetCompact the nearest-neighbour enlargement."""
    import torch

    parent = _t2v_result(capsys)
    frames = read_video(parent)["frames"]
    for name, layout, key, scale in (("x4plus.pth", rrdbnet_layout(3), "params_ema", 4),
                                     ("x2plus.pth", rrdbnet_layout(12), "params_ema", 2),
                                     ("animevideov3.pth", srvgg_layout(scale=4), "params", 4)):
        state = _random_state(layout)
        last = "conv_last" if "conv_last.weight" in state else layout[-1][0].rsplit(".", 1)[0]
        state[f"{last}.weight"].zero_()
        state[f"{last}.bias"].fill_(0.5 if last == "conv_last" else 0.0)
        torch.save({key: state}, tmp_path / name)
        assert cli_main(["upscale", str(parent), "--scale", str(scale), "--model", str(tmp_path / name),
                         "--quiet"]) == 0
        child = Path(capsys.readouterr().out.strip())
        made = read_video(child)
        assert (made["width"], made["height"]) == (64 * scale, 64 * scale), name
        if last == "conv_last":
            assert np.abs(made["frames"].astype(int) - 128).max() <= 2, name
        else:
            enlarged = frames.repeat(scale, axis=1).repeat(scale, axis=2)
            assert np.abs(made["frames"].astype(int) - enlarged.astype(int)).mean() < 3, name
        finishing = json.loads(child.with_suffix(".json").read_text())["finishing"]
        assert finishing["model"] == name and finishing["model_scale"] == scale


def test_an_upscaler_named_on_the_hub_comes_from_the_cache_or_says_how_to_fetch_it(settings, tmp_path, capsys,
                                                                                   monkeypatch):
    """hf://owner/repo/file: read from the Hugging Face cache (laid out here as the cache lays files
    out: models--owner--repo/refs/main names the snapshot the file sits in); offline and not there,
    the error names the command that fetches it."""
    import torch

    cache = tmp_path / "hf-cache"
    snapshot = cache / "models--someone--esrgan" / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    (cache / "models--someone--esrgan" / "refs").mkdir()
    (cache / "models--someone--esrgan" / "refs" / "main").write_text("0123abcd")
    torch.save({"params": _random_state(srvgg_layout(scale=2))}, snapshot / "compact-x2.pth")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    parent = _t2v_result(capsys)
    assert cli_main(["upscale", str(parent), "--model", "hf://someone/esrgan/compact-x2.pth", "--quiet"]) == 0
    child = Path(capsys.readouterr().out.strip())
    assert read_video(child)["width"] == 128
    assert json.loads(child.with_suffix(".json").read_text())["finishing"]["model"] == "compact-x2.pth"
    assert cli_main(["upscale", str(parent), "--model", "hf://someone/esrgan/missing.pth"]) == 2
    assert "`hf download someone/esrgan missing.pth`" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--scale", "3"], "The scale is 2 or 4"),
    (["--model", "tiny-rife"], "Tiny RIFE (random weights) does not upscale frames; use realesrgan-x4, realesrgan-x2"),
    (["--model", "no-such-upscaler"], "Unknown annotator 'no-such-upscaler'"),
    (["--tile", "8"], "The tile is 32 to 4096 input pixels a side; got 8"),
])
def test_bad_upscale_settings_are_named(settings, capsys, argv, message):
    parent = _t2v_result(capsys)
    assert cli_main(["upscale", str(parent), *argv]) == 2
    assert message in capsys.readouterr().err
    assert len(list(parent.parent.glob("*.mp4"))) == 1  # nothing was queued or written


def test_upscale_refuses_files_that_are_not_upscalers_and_names_what_to_download(settings, tmp_path, capsys):
    import torch
    from safetensors.torch import save_file

    parent = _t2v_result(capsys)
    lora = tmp_path / "style.safetensors"  # a LoRA: weights, but no super-resolution network
    save_file({"lora_unet_blocks_0_attn1_to_q.lora_down.weight": torch.zeros(4, 16)}, str(lora))
    text = tmp_path / "notes.pth"
    text.write_text("not weights")
    for path, why in ((lora, "no layer of an image super-resolution network"),
                      (text, "it cannot be read as PyTorch weights")):
        assert cli_main(["upscale", str(parent), "--model", str(path)]) == 2
        err = capsys.readouterr().err
        assert f"{path.name} is not an image upscaling model we can read: {why}" in err and "RRDBNet" in err
    assert cli_main(["upscale", str(parent), "--model", str(tmp_path / "missing.pth")]) == 2
    assert "Upscaler file not found" in capsys.readouterr().err
    plain = make_video(tmp_path / "plain.mp4", (64, 64), fps=16, seconds=0.5)
    assert cli_main(["upscale", str(plain)]) == 2
    assert "plain.mp4 is not a result of the studio" in capsys.readouterr().err
    assert cli_main(["upscale", str(parent), "--model", "realesrgan-x2"]) == 2  # no Hub here: what to download
    assert "python -m wan_studio download realesrgan-x2" in capsys.readouterr().err
    assert len(list(parent.parent.glob("*.mp4"))) == 1  # nothing was queued or half-made


# -- to a target size ----------------------------------------------------------------------------
def _size_in_file(path: Path) -> tuple[int, int]:
    """The width and height the mp4 itself declares, read by PyAV (not by the studio's own reader)."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return stream.codec_context.width, stream.codec_context.height


def test_target_sizes_keep_the_aspect_on_even_sides():
    from wan_studio.requests.finishing import target_size, targets_above

    assert target_size(1280, 720, "1080p") == (1920, 1080)
    assert target_size(720, 1280, "1080p") == (1080, 1920)  # portrait: the width is the short side
    assert target_size(1280, 720, "4k") == (3840, 2160)
    assert target_size(832, 480, "1440p") == (2496, 1440)
    assert target_size(854, 480, "1080p") == (1922, 1080)  # 1921.5 wide: even, for H.264
    assert target_size(96, 64, "1080p") == (1620, 1080)
    assert targets_above(1920, 1080) == ["1440p", "4k"] and targets_above(3840, 2160) == []


def test_a_4k_target_reserves_more_zerogpu_time_than_twice_the_size():
    """The model works on the result's frames either way; encoding 3744x2160 frames takes longer."""
    from types import SimpleNamespace

    from wan_studio.memory.estimate import finishing_seconds

    video = SimpleNamespace(width=832, height=480, frames=81)
    twice = SimpleNamespace(mode="upscale", video=video, output_size=(1664, 960))
    to_4k = SimpleNamespace(mode="upscale", video=video, output_size=(3744, 2160))
    assert finishing_seconds(to_4k) > finishing_seconds(twice) > 30


def test_upscale_to_1080p_runs_the_model_then_shrinks_to_the_exact_size(settings, capsys):
    """A 768x576 result (4:3): the x2 model passes 1080p (1536x1152) and the frames are shrunk to
    1440x1080; the aspect is kept and the picture is its parent's."""
    from PIL import Image

    from wan_studio.runtime.gallery import gallery_page
    from wan_studio.runtime.library import OutputLibrary

    small = _t2v_result(capsys, frames=5, size="192x144")
    assert cli_main(["upscale", str(small), "--scale", "4", "--quiet"]) == 0
    parent = Path(capsys.readouterr().out.strip())
    assert _size_in_file(parent) == (768, 576)
    assert cli_main(["upscale", str(parent), "--target", "1080p", "--quiet"]) == 0
    child = Path(capsys.readouterr().out.strip())
    assert _size_in_file(child) == (1440, 1080)
    made, before = read_video(child), read_video(parent)
    assert made["count"] == before["count"] == 5 and made["fps"] == before["fps"]
    for frame, original in zip(made["frames"], before["frames"]):
        back = np.asarray(Image.fromarray(frame).resize((768, 576), Image.BOX), dtype=float)
        assert np.abs(back - original).mean() < 6
    recipe = json.loads(child.with_suffix(".json").read_text())
    assert recipe["finishing"]["target"] == "1080p" and recipe["finishing"]["size"] == "1440x1080"
    assert recipe["finishing"]["model_scale"] == 2 and recipe["finishing"]["scale"] == 2  # x2 was enough
    assert recipe["parent"] == parent.stem
    captions = [entry.caption for entry in gallery_page(OutputLibrary(settings.output_dir))[0]]
    assert captions[0] == "[T2V · upscaled to 1080p] a red kite"
    # already 1080p: refused before anything is queued
    assert cli_main(["upscale", str(child), "--target", "1080p"]) == 2
    assert "This video is already 1440x1080; 1080p would not make it larger. Choose 1440p or 4k." in (
        capsys.readouterr().err)
    assert len(list(settings.output_dir.glob("*.mp4"))) == 3


def test_a_portrait_target_and_a_target_given_with_a_scale(settings, capsys):
    """64x96 to 1080p is 1080x1620 (the short side is the width); the target wins over --scale."""
    parent = _t2v_result(capsys, size="64x96")
    assert cli_main(["upscale", str(parent), "--scale", "2", "--target", "1080p", "--quiet"]) == 0
    child = Path(capsys.readouterr().out.strip())
    assert _size_in_file(child) == (1080, 1620)
    finishing = json.loads(child.with_suffix(".json").read_text())["finishing"]
    assert finishing["target"] == "1080p" and finishing["size"] == "1080x1620"


def test_a_bad_or_too_small_target_exits_2_with_a_sentence(settings, cli_env, capsys):
    import subprocess
    import sys

    parent = _t2v_result(capsys, size="96x64")
    command = [sys.executable, "-m", "wan_studio", "upscale", str(parent), "--target"]
    bad = subprocess.run([*command, "720p"], env=cli_env, capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "argument --target: invalid choice: '720p' (choose from '1080p', '1440p', '4k')" in bad.stderr
    assert cli_main(["upscale", str(parent), "--target", "1080p", "--quiet"]) == 0
    child = Path(capsys.readouterr().out.strip())
    same = subprocess.run([*command[:4], str(child), "--target", "1080p"], env=cli_env, capture_output=True,
                          text=True)
    assert same.returncode == 2 and "Traceback" not in same.stderr
    assert same.stderr.strip() == ("error: This video is already 1620x1080; 1080p would not make it larger. "
                                   "Choose 1440p or 4k.")
    assert len(list(settings.output_dir.glob("*.mp4"))) == 2  # the parent and its 1080p version


def test_the_upscale_endpoint_takes_a_target(running_app, settings, monkeypatch, capsys):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    # the parent from the command line, on the app's folder: the job joins the queue the app serves
    monkeypatch.setenv("WAN_STUDIO_OUTPUT_DIR", str(running_app.outputs))
    parent = _t2v_result(capsys, size="96x64")
    assert parent.parent == running_app.outputs
    client = Client(running_app.url, verbose=False)
    out, recipe = client.predict(parent.stem, None, {"target": "1080p"}, api_name="/upscale")
    assert _size_in_file(Path(out)) == (1620, 1080)
    assert recipe["finishing"]["target"] == "1080p" and recipe["parent"] == parent.stem
    with pytest.raises(AppError, match=r"The target size is one of 1080p, 1440p, 4k .*; got '720p'"):
        client.predict(parent.stem, 2, {"target": "720p"}, api_name="/upscale")
    with pytest.raises(AppError, match="This video is already 1620x1080; 1080p would not make it larger"):
        client.predict(recipe["id"], 2, {"target": "1080p"}, api_name="/upscale")
    with pytest.raises(AppError, match="Unknown option for /upscale: 'size'; the options are 'model', 'tile', "
                                       "'target'"):
        client.predict(parent.stem, 2, {"size": "1080p"}, api_name="/upscale")


# -- as a queued job -----------------------------------------------------------------------------
def test_a_queued_upscale_survives_a_restart_reports_frames_and_stops_cleanly(settings, capsys):
    from wan_studio.queue.store import JobStore
    from wan_studio.queue.worker import QueueWorker
    from wan_studio.requests import UpscaleRequest
    from wan_studio.runtime.engine import Engine

    parent = _t2v_result(capsys, frames=17)
    paths = settings.output_dir / "queue.db", settings.output_dir / ".queue" / "inputs"
    queued = JobStore(*paths).add(UpscaleRequest(result=str(parent), scale=2))
    parent.unlink()  # the queue keeps its own copy of the result
    store = JobStore(*paths)  # a new process: the job comes back from the database
    job = store.get(queued.id)
    assert job.state == "queued" and job.typed_request() == UpscaleRequest(
        result=job.request["result"], scale=2, parent=parent.stem)
    engine = Engine(settings)
    worker = QueueWorker(store, engine, engine.library)
    seen = []
    worker.add_listener(lambda job, event: seen.append(event.progress) if event.kind == "progress" else None)
    worker.run_until_empty()
    done = store.get(queued.id)
    assert done.state == "done" and read_video(Path(done.result_path))["width"] == 128
    frames = [status.step for status in seen if status.state == "finishing"]
    assert frames == list(range(1, 18)) and {s.task for s in seen if s.state == "finishing"} == {"upscaling"}

    stopping = store.add(UpscaleRequest(result=done.result_path, scale=2))

    def stop_after_three(job, event):
        if event.kind == "progress" and event.progress.state == "finishing" and event.progress.step == 3:
            worker.stop_job(job.id)

    worker.add_listener(stop_after_three)
    before = sorted(p.name for p in settings.output_dir.iterdir())
    worker.run_until_empty()
    assert store.get(stopping.id).state == "cancelled"
    assert sorted(p.name for p in settings.output_dir.iterdir()) == before  # no half-made result


def test_the_queue_lists_a_finishing_job_by_what_it_does(settings, capsys):
    from wan_studio.queue.job import request_summary
    from wan_studio.queue.store import JobStore
    from wan_studio.requests import InterpolateRequest

    parent = _t2v_result(capsys)
    store = JobStore(settings.output_dir / "queue.db", settings.output_dir / ".queue" / "inputs")
    job = store.add(InterpolateRequest(result=str(parent), factor=4))
    assert request_summary(job.request) == f"smooth x4 of {parent.stem}"
    from tests.test_queue import queue_main

    assert queue_main(["list"], settings) == 0
    assert f"smooth x4 of {parent.stem}"[:39] + "…" in capsys.readouterr().out  # cut to the column's width


def test_a_stop_from_another_thread_during_upscale_leaves_nothing(engine, capsys):
    from wan_studio.errors import Cancelled
    from wan_studio.requests import UpscaleRequest

    parent = _t2v_result(capsys, frames=17)
    cancel = threading.Event()
    files = sorted(parent.parent.iterdir())

    def report(status):
        if status.state == "finishing" and status.step == 2:
            cancel.set()

    with pytest.raises(Cancelled):
        engine.run(UpscaleRequest(result=str(parent), scale=2), on_progress=report, cancel=cancel)
    assert sorted(parent.parent.iterdir()) == files


def test_a_batch_file_queues_upscales_and_smoothings(settings, tmp_path, capsys):
    """Finishing jobs in a batch file (CSV and JSON), run headless by `queue run`."""
    parent = _t2v_result(capsys)
    (tmp_path / "upscale.csv").write_text(f"mode,result,scale\nupscale,{parent},2\n")
    (tmp_path / "smooth.json").write_text(json.dumps([{"mode": "interpolate", "result": str(parent), "factor": 2}]))
    for name in ("upscale.csv", "smooth.json"):
        assert cli_main(["queue", "add", str(tmp_path / name)]) == 0
    assert cli_main(["queue", "run", "--quiet"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if " done " in line]
    made = [read_video(Path(line.split(" done ")[1].strip())) for line in lines]
    assert sorted((video["width"], video["count"]) for video in made) == [(64, 17), (128, 9)]
