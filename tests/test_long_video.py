"""Long videos: past a checkpoint's frame range, a video is made in windows that continue from each
other (wan_studio/runtime/windows.py); a stopped long job continues from its last finished window."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from tests.conftest import read_video
from tests.media_fixtures import make_image
from wan_studio.errors import RequestError
from wan_studio.requests import FLF2VRequest, I2VRequest, T2VRequest, TI2VRequest


def _spy(monkeypatch, module_name: str) -> list:
    """Every call the mode's wrapper makes to the pipeline: the window's request and keyword arguments."""
    import importlib

    module = importlib.import_module(module_name)
    calls, original = [], module.call_pipeline
    monkeypatch.setattr(module, "call_pipeline", lambda pipe, request, callback, **kwargs: (
        calls.append((request, kwargs)), original(pipe, request, callback, **kwargs))[1])
    return calls


def test_t2v_three_times_the_checkpoints_longest_gives_exactly_the_frames_asked(engine, monkeypatch):
    calls = _spy(monkeypatch, "pipelines.t2v")
    events = []
    request = T2VRequest(model="tiny-t2v", prompt="a paper boat\na storm comes\nthe sea calms", frames=99, seed=3)
    result = engine.generate(request.prepare(), on_progress=events.append)
    video = read_video(result.media)
    assert (video["count"], video["fps"], video["width"]) == (99, 16.0, 64)  # 3 x 33, the Tiny one-pass maximum
    windows = result.recipe["windows"]
    assert windows["count"] == 8 and windows["overlap"] == 5 and windows["conditioning"] == "frames"
    assert [request.frames for request, _ in calls] == [17] * 8  # the Tiny native length
    # a prompt per window: its line, the last repeating
    assert [request.prompt for request, _ in calls] == ["a paper boat", "a storm comes"] + ["the sea calms"] * 6
    assert windows["prompts"] == [request.prompt for request, _ in calls]
    running = [event for event in events if event.state == "running"]
    assert {event.clip for event in running} == set(range(1, 9)) and running[-1].clips == 8
    assert running[-1].step == running[-1].total == 8 * 4


def test_each_later_window_holds_the_frames_before(engine, monkeypatch):
    """T2V: a later window's first latents are the last 5 frames of the window before, encoded, and
    held there: once denoised they are exactly those latents."""
    import pipelines.t2v
    from wan_studio.runtime import windows

    held = []
    original = windows.holding_frames

    def spy(pipe, known, seed, callback):
        def check(pipe_, step, timestep, kwargs):
            out = inner(pipe_, step, timestep, kwargs)
            held.append((step, known.clone(), out["latents"][:, :, :known.shape[2]].clone()))
            return out

        inner = original(pipe, known, seed, callback)
        return check

    monkeypatch.setattr(windows, "holding_frames", spy)
    frames_before = []
    run = pipelines.t2v.run
    monkeypatch.setattr(pipelines.t2v, "run", lambda *args: frames_before.append(run(*args)) or frames_before[-1])
    engine.generate(T2VRequest(model="tiny-t2v", prompt="x", frames=37, seed=1).prepare())
    assert len(frames_before) == 3
    last_step = [(known, latents) for step, known, latents in held if step == 3]  # 4 steps: sigma 0 after the last
    assert len(last_step) == 2 and all(np.allclose(known, latents, atol=1e-5) for known, latents in last_step)
    assert held[0][1].shape[2] == 2  # 5 frames: 1 + 4, two latent frames


def test_i2v_and_flf2v_continue_from_the_last_frame_and_flf2v_ends_on_its_last_image(engine, tmp_path, monkeypatch):
    import importlib

    first = make_image(tmp_path / "first.png", (64, 64), color=(200, 60, 30))
    last = make_image(tmp_path / "last.png", (64, 64), color=(20, 60, 200))
    for request in (I2VRequest(model="tiny-i2v", prompt="x", image=str(first), frames=41, seed=2),
                    FLF2VRequest(model="tiny-flf2v", prompt="x", image=str(first), last_image=str(last), frames=41,
                                 seed=2)):
        module = importlib.import_module(f"pipelines.{request.mode}")
        calls = _spy(monkeypatch, f"pipelines.{request.mode}")
        outputs, run = [], module.run
        monkeypatch.setattr(module, "run", lambda *args: outputs.append(run(*args)) or outputs[-1])
        result = engine.generate(request.prepare())
        assert read_video(result.media)["count"] == 41
        assert result.recipe["windows"]["conditioning"] == "last frame" and result.recipe["windows"]["overlap"] == 1
        assert [window.frames for window, _ in calls] == [17, 17, 9]
        # the second window starts on the first window's last frame
        assert np.array_equal(np.asarray(calls[1][1]["image"]), outputs[0][-1])
        if request.mode == "flf2v":  # only the last window is held to the last image
            assert ["last_image" in kwargs for _, kwargs in calls] == [False, False, True]
        monkeypatch.undo()


def test_ti2v_starts_from_its_image_then_holds_frames(engine, tmp_path, monkeypatch):
    image = make_image(tmp_path / "start.png", (64, 64))
    i2v_calls, t2v_calls = _spy(monkeypatch, "pipelines.i2v"), _spy(monkeypatch, "pipelines.t2v")
    result = engine.generate(TI2VRequest(model="tiny-ti2v", prompt="x", image=str(image), frames=41, seed=2).prepare())
    assert read_video(result.media)["count"] == 41 and read_video(result.media)["fps"] == 24.0
    assert len(i2v_calls) == 1 and len(t2v_calls) == 2  # the image starts it; the rest continue from frames


def test_a_stopped_long_job_continues_from_its_last_finished_window_and_matches_an_unbroken_run(settings, monkeypatch):
    """Stopped in its third window, then run again by a fresh engine (a restart): windows 1-2 are
    not made again, and the video is the one an unbroken run makes."""
    import pipelines.t2v
    from wan_studio.errors import Cancelled
    from wan_studio.runtime.engine import Engine

    calls = []
    run = pipelines.t2v.run
    monkeypatch.setattr(pipelines.t2v, "run", lambda *args: calls.append(args[1].seed) or run(*args))
    request = T2VRequest(model="tiny-t2v", prompt="a long shot", frames=53, seed=7).prepare()  # 4 windows
    stop = threading.Event()
    first = Engine(settings)
    with pytest.raises(Cancelled):
        first.generate(request, on_progress=lambda event: event.clip == 3 and stop.set(), cancel=stop)
    assert calls == [7, 8, 9]  # stopped during the third window
    calls.clear()
    resumed = Engine(settings).generate(request)
    assert calls == [9, 10] and resumed.recipe["windows"]["resumed_windows"] == 2
    calls.clear()
    settings_apart = settings  # the same seed in a clean run gives the same video
    unbroken = Engine(settings_apart).generate(request)
    assert len(calls) == 4
    assert np.array_equal(read_video(resumed.media)["frames"], read_video(unbroken.media)["frames"])
    assert not any((settings.output_dir / ".scratch" / "windows").glob("*/window-*.npy"))  # kept only until saved


@pytest.mark.parametrize("fields, field, message", [
    (dict(frames=961), "frames", "between 5 and 960 (60 s at 16 fps"),
    (dict(frames=99, window_overlap=17), "window_overlap", "shorter than the window (17 frames"),
    (dict(frames=99, window_overlap=4), "window_overlap", "4k+1 (whole latents); got 4, nearest legal: 1 or 5"),
    (dict(frames=99, window_overlap=0), "window_overlap", "at least 1"),
    (dict(frames=99, color_correction=1.5), "color_correction", "between 0 and 1"),
])
def test_bad_long_video_settings_are_named(fields, field, message):
    with pytest.raises(RequestError) as info:
        T2VRequest(model="tiny-t2v", prompt="x", **fields).prepare()
    assert info.value.field == field and message in str(info.value)


def test_an_i2v_window_continues_from_one_frame_only(tmp_path):
    image = make_image(tmp_path / "a.png", (64, 64))
    with pytest.raises(RequestError, match="the overlap must be 1, got 5"):
        I2VRequest(model="tiny-i2v", prompt="x", image=str(image), frames=41, window_overlap=5).prepare()


def test_stitching_cross_fades_the_overlap_and_colours_are_pulled_toward_the_first_window():
    from wan_studio.runtime.windows import match_colors, stitch

    dark, light = np.full((5, 2, 2, 3), 0, np.uint8), np.full((5, 2, 2, 3), 200, np.uint8)
    joined = stitch([dark, light], overlap=3, total=7)
    assert joined.shape[0] == 7  # 5 + 5 - 3
    assert [int(v) for v in joined[:, 0, 0, 0]] == [0, 0, 50, 100, 150, 200, 200]  # 1/4, 2/4, 3/4 of the way
    rng = np.random.default_rng(0)
    first = rng.integers(90, 110, (4, 8, 8, 3)).astype(np.uint8)
    drifted = (first.astype(int) + 40).astype(np.uint8)
    half = match_colors(drifted, first, 0.5)
    assert abs(half.mean() - (first.mean() + 20)) < 1  # halfway back
    assert abs(match_colors(drifted, first, 1.0).mean() - first.mean()) < 1
    assert np.array_equal(match_colors(drifted, first, 0.0), drifted)


def test_duration_and_dry_run_show_the_windows_and_the_estimate_covers_them(settings, capsys):
    import json

    from wan_studio.cli import main as cli_main
    from wan_studio.memory.estimate import estimate
    from wan_studio.memory.plans import Machine, ladder

    assert cli_main(["generate", "--mode", "t2v", "--model", "tiny-t2v", "--prompt", "a boat\nthe storm", "--duration",
                     "6.2s", "--dry-run"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["frames"] == 99  # 6.2 s at 16 fps
    assert shown["windows"]["count"] == 8 and shown["windows"]["prompts"][:3] == ["a boat", "the storm", "the storm"]
    assert cli_main(["generate", "--mode", "t2v", "--model", "tiny-t2v", "--prompt", "x", "--duration", "1s",
                     "--dry-run"]) == 0
    assert json.loads(capsys.readouterr().out)["frames"] == 17  # within one pass: 4k+1
    assert cli_main(["generate", "--mode", "t2v", "--prompt", "x", "--duration", "soon", "--dry-run"]) == 2
    assert "--duration takes seconds" in capsys.readouterr().err
    machine = Machine("cuda", 16.0, 64.0, name="NVIDIA GeForce RTX 4080", capability=(8, 9))
    long = T2VRequest(model="wan2.1-t2v-14b", prompt="x", frames=81 * 8 - 7 * 5, seed=1).prepare()  # 8 windows of 81
    one = T2VRequest(model="wan2.1-t2v-14b", prompt="x", frames=81, seed=1).prepare()
    plan = ladder(machine, long.checkpoint)[1]
    long_estimate = estimate(long.checkpoint, long, plan, machine)
    one_estimate = estimate(one.checkpoint, one, plan, machine)
    assert long_estimate.peak_gb == one_estimate.peak_gb  # one window at a time
    assert long_estimate.seconds == pytest.approx(8 * one_estimate.seconds, rel=0.15)


def test_on_zerogpu_a_long_video_takes_one_reservation_a_window(settings, monkeypatch):
    """Off a Space `spaces.GPU` calls the function as it is, so the real runner runs here: each call
    (one GPU reservation on a Space) makes one window, the job waits at the head of the queue in
    between, and the result is the whole video, as long as one unbroken run's."""
    from wan_studio.memory.choose import cost_line
    from wan_studio.memory.estimate import estimate, zerogpu_duration
    from wan_studio.memory.plans import ladder, simulated_machine
    from wan_studio.runtime.studio import Studio, zerogpu_runner

    studio = Studio(settings, gpu_call=None)
    studio.gpu_call = zerogpu_runner(studio.worker, studio.engine)
    reservations, real = [], studio.worker.run_job_now

    def one_reservation(job_id):
        reservations.append(studio.store.get(job_id).state)
        return real(job_id)

    monkeypatch.setattr(studio.worker, "run_job_now", one_reservation)
    result = studio.run(T2VRequest(model="tiny-t2v", prompt="a long road", frames=41, seed=2))
    assert result.recipe["windows"]["count"] == 3 and read_video(result.media)["count"] == 41  # 17 + 12 + 12
    assert reservations == ["queued"] * 3  # one reservation a window, each starting a queued job
    job = studio.store.list(states=["done"])[0]
    assert [m for m in job.messages if m.startswith("Window")] == [
        "Window 1/3 made; the next GPU reservation makes window 2.",
        "Window 2/3 made; the next GPU reservation makes window 3."]
    assert result.recipe["windows"]["resumed_windows"] == 2  # the last call stitched the two kept windows
    # each reservation asks for its window's share of the time, and the cost line says so
    machine = simulated_machine("zerogpu-large")
    long = T2VRequest(model="wan2.1-t2v-1.3b", prompt="x", frames=81 * 8 - 7 * 5, seed=1).prepare()  # 8 windows
    whole = estimate(long.checkpoint, long, ladder(machine, long.checkpoint)[0], machine)
    assert zerogpu_duration(whole, parts=8) < zerogpu_duration(whole) / 4
    assert f"for {zerogpu_duration(whole, parts=8)} s for each of 8 windows" in cost_line(long, machine)


def test_a_long_job_killed_after_its_second_window_finishes_from_the_third_after_a_restart(settings, cli_env, engine,
                                                                                            monkeypatch):
    """The queue runner (a real process) is frozen as the third window starts and killed with
    SIGKILL; the restarted queue makes windows 3 and 4 only."""
    import os
    import signal
    import subprocess
    import sys

    import pipelines.t2v
    from tests.conftest import ROOT
    from tests.test_queue import QUEUE_SCRIPT, wait_for
    from wan_studio.queue.store import JobStore
    from wan_studio.queue.worker import QueueWorker

    db_path, inputs = settings.output_dir / "queue.db", settings.output_dir / ".queue" / "inputs"
    store = JobStore(db_path, inputs)
    (job,) = store.add_many([T2VRequest(model="tiny-t2v", prompt="a long shot", frames=53, seed=5)])  # 4 windows
    store.close()
    frozen = settings.output_dir.parent / "frozen-at-window-3"
    script = (
        "import sys, threading\nfrom pathlib import Path\nfrom wan_studio.queue.worker import QueueWorker\n"
        "marker = Path(sys.argv.pop(1))\n"
        "def freeze(job, event):\n"
        "    if event.kind == 'progress' and event.progress.clip == 3:\n"
        "        marker.touch()\n"
        "        threading.Event().wait()\n"
        "plain_init = QueueWorker.__init__\n"
        "def init_and_freeze(self, *args, **kwargs):\n"
        "    plain_init(self, *args, **kwargs)\n"
        "    self.add_listener(freeze)\n"
        "QueueWorker.__init__ = init_and_freeze\n" + QUEUE_SCRIPT)
    proc = subprocess.Popen([sys.executable, "-c", script, str(frozen), "run"], cwd=ROOT, env=cli_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: frozen.exists() or proc.poll() is not None, 120, "the third window")
        assert proc.poll() is None, proc.communicate()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()

    calls = []
    run = pipelines.t2v.run
    monkeypatch.setattr(pipelines.t2v, "run", lambda *args: calls.append(args[1].seed) or run(*args))
    reopened = JobStore(db_path, inputs)
    worker = QueueWorker(reopened, engine, poll_interval_s=0.2)
    try:
        worker.run_until_empty()
        done = reopened.get(job.id)
    finally:
        worker.stop()
        reopened.close()
    assert done.state == "done" and calls == [7, 8]  # windows 3 and 4 (seeds 5 + 2, 5 + 3)
    assert read_video(done.result_path)["count"] == 53


@pytest.mark.parametrize("mode, model, fields", [
    ("t2v", "tiny-t2v", {}),
    ("i2v", "tiny-i2v", {"image": True}),
])
def test_extend_continues_a_result_from_its_recipe(settings, tmp_path, capsys, mode, model, fields, monkeypatch):
    """`extend RESULT --seconds 2`: the whole video, the old frames first, then 32 more (2 s at 16 fps);
    the new recipe names its parent, and the parent is left as it was."""
    import json
    from pathlib import Path

    from wan_studio.cli import main as cli_main

    args = ["generate", "--mode", mode, "--model", model, "--prompt", "a paper boat", "--frames", "17", "--seed", "4",
            "--quiet"]
    if fields.get("image"):
        args += ["--image", str(make_image(tmp_path / "start.png", (64, 64)))]
    assert cli_main(args) == 0
    parent = capsys.readouterr().out.strip()
    parent_frames = read_video(parent)["frames"]
    calls = _spy(monkeypatch, f"pipelines.{mode}")
    assert cli_main(["extend", parent, "--seconds", "2", "--prompt", "it sails on", "--quiet"]) == 0
    child = capsys.readouterr().out.strip()
    made = read_video(child)
    assert made["count"] == 17 + 32 and made["fps"] == 16.0
    # the old video first (encoded twice as an mp4 now: close, not equal)
    assert np.abs(made["frames"][:16].astype(int) - parent_frames[:16].astype(int)).mean() < 3
    assert all(request.prompt == "it sails on" for request, _ in calls)
    if mode == "i2v":  # the first new window starts on the old video's last frame, not on the old start image
        assert np.abs(np.asarray(calls[0][1]["image"]).astype(int) - parent_frames[-1].astype(int)).mean() < 8
    recipe = json.loads(Path(child).with_suffix(".json").read_text())
    assert recipe["parent"] == Path(parent).stem
    from wan_studio.runtime.gallery import gallery_page
    from wan_studio.runtime.library import OutputLibrary

    assert gallery_page(OutputLibrary(settings.output_dir))[0][0].caption == f"[{mode.upper()} · extended] it sails on"
    assert recipe["windows"]["continuing"] and recipe["windows"]["continued_frames"] == 17
    assert np.array_equal(read_video(parent)["frames"], parent_frames)  # the parent is untouched


def test_extend_refuses_what_it_cannot_continue(settings, tmp_path, capsys):
    from tests.media_fixtures import make_video
    from wan_studio.cli import main as cli_main

    assert cli_main(["generate", "--mode", "v2v", "--model", "tiny-t2v", "--prompt", "x", "--video",
                     str(make_video(tmp_path / "clip.mp4", (64, 64), fps=16, seconds=0.6)), "--quiet"]) == 0
    restyled = capsys.readouterr().out.strip()
    assert cli_main(["extend", restyled, "--seconds", "2"]) == 2
    assert "Extend continues T2V, I2V and TI2V videos" in capsys.readouterr().err
    assert cli_main(["extend", str(tmp_path / "missing.mp4"), "--seconds", "2"]) == 2
    assert "not found" in capsys.readouterr().err
    assert cli_main(["extend", restyled, "--seconds", "0"]) == 2


def test_the_page_says_which_prompt_line_goes_with_which_seconds():
    from ui.panel_specs import frames_ceiling
    from ui.panels import _windows_text
    from wan_studio import catalog

    record = catalog.get("tiny-t2v")
    assert frames_ceiling("t2v", record) == 960 and frames_ceiling("v2v", record) == 33  # 60 s at 16 fps
    text = _windows_text(T2VRequest(model="tiny-t2v", prompt="a paper boat\na storm comes", frames=41, seed=1))
    # windows of 17 frames with 5 held: frames 0-17, 17-29, 29-41 at 16 fps
    assert "Made in 3 windows of up to 17 frames" in text
    assert "- 0.0–1.1 s: a paper boat" in text and "- 1.1–1.8 s: a storm comes" in text
    assert "- 1.8–2.6 s: a storm comes" in text
    assert _windows_text(T2VRequest(model="tiny-t2v", prompt="x", frames=33, seed=1)) == ""  # one pass
    assert "a prompt of several lines" in _windows_text(T2VRequest(model="tiny-t2v", prompt="x", frames=41, seed=1))


@pytest.mark.parametrize("vace_mode, extra", [("grayscale", {}), ("inpaint", {"bbox": [8, 8, 40, 40]}),
                                              ("inpaint", {"mask": "mask video"})])
def test_vace_over_a_long_input_video_works_in_windows_that_keep_the_frames_before(engine, tmp_path, monkeypatch,
                                                                                    vace_mode, extra):
    """A 3 s input at 16 fps (48 frames, past the Tiny VACE's 33): the output follows all of it; each
    later window reads its own slice of the source, and its first 5 frames are the last 5 made,
    given to VACE to keep (black mask)."""
    import pipelines.vace
    from tests.media_fixtures import make_video
    from wan_studio.requests import VACERequest

    calls = _spy(monkeypatch, "pipelines.vace")
    outputs, run = [], pipelines.vace.run
    monkeypatch.setattr(pipelines.vace, "run", lambda *args: outputs.append(run(*args)) or outputs[-1])
    source = make_video(tmp_path / "long.mp4", (64, 64), fps=16, seconds=3.0)
    if extra.get("mask"):  # white box in the middle: regenerate there
        from tests.media_fixtures import make_mask_video

        extra = {"mask": str(make_mask_video(tmp_path / "mask.mp4", (64, 64), fps=16, seconds=3.0))}
    request = VACERequest(model="tiny-vace", prompt="x", vace_mode=vace_mode, video=str(source), seed=1,
                          **extra).prepare()
    assert request.frames == 48
    result = engine.generate(request)
    assert read_video(result.media)["count"] == 48
    assert result.recipe["windows"]["conditioning"] == "frames given to VACE to keep"
    assert [window.frames for window, _ in calls] == [17, 17, 17, 13]  # 17 + 12 + 12 + 8 new frames >= 48
    assert [window.window_start for window, _ in calls] == [0, 12, 24, 36]
    second = calls[1][1]
    assert all(np.array_equal(np.asarray(frame), made) for frame, made in zip(second["video"][:5], outputs[0][-5:]))
    masks = [np.asarray(mask.convert("L")) for mask in second["mask"]]
    assert all(mask.max() == 0 for mask in masks[:5]) and masks[5].max() == 255
    last = [np.asarray(mask.convert("L")) for mask in calls[-1][1]["mask"]]
    assert len(last) == 13 and last[5][32, 32] == 255 and (last[5][2, 2] == 0) == (vace_mode == "inpaint")
    # past the held frames, the window's own slice of the source: source frame 12 + 5
    from wan_studio import media

    source_frames = media.load_video_frames(str(source), fps=16)
    if vace_mode == "grayscale":
        expected = np.asarray(source_frames[17].convert("L").convert("RGB").resize((64, 64)))
        assert np.abs(np.asarray(second["video"][5]).astype(int) - expected.astype(int)).mean() < 2


# -- frame interpolation (RIFE) ----------------------------------------------------------------------
def test_interpolate_doubles_the_frame_rate_keeps_the_duration_and_the_sound(settings, tmp_path, capsys):
    """An S2V result (it has a sound track): x2 gives 2n - 1 frames at twice the fps, the same
    length and the same sound; x4 gives 4n - 3. The parent is left as it was."""
    import json
    from pathlib import Path

    from tests.media_fixtures import speech_like, write_wav
    from wan_studio.cli import main as cli_main
    from wan_studio.media import probe_video

    image = make_image(tmp_path / "face.png", (128, 128))
    audio = write_wav(tmp_path / "voice.wav", speech_like(1.0), 16000)
    assert cli_main(["generate", "--mode", "s2v", "--model", "tiny-s2v", "--prompt", "a singer", "--image", str(image),
                     "--audio", str(audio), "--seed", "1", "--quiet"]) == 0
    parent = Path(capsys.readouterr().out.strip())
    before = read_video(parent)
    n, fps = before["count"], before["fps"]
    for factor in (2, 4):
        assert cli_main(["interpolate", str(parent), "--factor", str(factor), "--quiet"]) == 0
        child = Path(capsys.readouterr().out.strip())
        made = read_video(child)
        assert made["count"] == factor * (n - 1) + 1 and made["fps"] == fps * factor
        assert probe_video(child).has_audio
        assert abs(probe_video(child).duration_s - probe_video(parent).duration_s) < 0.1
        assert np.abs(made["frames"][::factor].astype(int) - before["frames"].astype(int)).mean() < 3  # the old frames
        recipe = json.loads(child.with_suffix(".json").read_text())
        assert recipe["parent"] == parent.stem and recipe["finishing"]["factor"] == factor
        assert recipe["finishing"]["model"] == "tiny-rife" and recipe["request"]["prompt"] == "a singer"
    assert np.array_equal(read_video(parent)["frames"], before["frames"])
    from wan_studio.runtime.gallery import gallery_page
    from wan_studio.runtime.library import OutputLibrary

    captions = [entry.caption for entry in gallery_page(OutputLibrary(settings.output_dir))[0]]
    assert captions[:3] == ["[S2V · smoothed ×4] a singer", "[S2V · smoothed ×2] a singer", "[S2V] a singer"]


def test_interpolate_refuses_what_it_cannot_do(settings, tmp_path, capsys):
    from pathlib import Path

    from wan_studio.cli import main as cli_main

    assert cli_main(["generate", "--mode", "t2v", "--model", "tiny-t2v", "--prompt", "x", "--seed", "1",
                     "--quiet"]) == 0
    result = capsys.readouterr().out.strip()
    assert cli_main(["interpolate", result, "--factor", "3"]) == 2
    assert "The factor is 2 or 4" in capsys.readouterr().err
    assert cli_main(["interpolate", result, "--model", "tiny-depth"]) == 2
    assert "does not interpolate frames" in capsys.readouterr().err
    plain = tmp_path / "plain.mp4"
    from tests.media_fixtures import make_video

    make_video(plain, (64, 64), fps=16, seconds=0.5)
    assert cli_main(["interpolate", str(plain)]) == 2
    assert "plain.mp4 is not a result of the studio" in capsys.readouterr().err
    assert cli_main(["interpolate", result, "--model", "rife-4.25"]) == 2  # no Hub here: what to download
    assert "python -m wan_studio download rife-4.25" in capsys.readouterr().err
    assert len(list(Path(result).parent.glob("*.mp4"))) == 1  # nothing new was written


def test_v2v_over_a_long_input_video_restyles_all_of_it_in_windows(engine, tmp_path, monkeypatch):
    """V2V follows its input past the checkpoint's range: each window restyles its slice of the
    source, and its first latents are held to the frames before (V2V starts partway down the
    schedule: the held latents end exactly on them all the same)."""
    from tests.media_fixtures import make_video
    from wan_studio.requests import V2VRequest
    from wan_studio.runtime import windows

    calls = _spy(monkeypatch, "pipelines.v2v")
    held = []
    original = windows.holding_frames

    def spy(pipe, known, seed, callback):
        inner = original(pipe, known, seed, callback)

        def check(pipe_, step, timestep, kwargs):
            out = inner(pipe_, step, timestep, kwargs)
            held.append((known.clone(), out["latents"][:, :, :known.shape[2]].clone()))
            return out

        return check

    monkeypatch.setattr(windows, "holding_frames", spy)
    source = make_video(tmp_path / "long.mp4", (64, 64), fps=16, seconds=3.0)
    request = V2VRequest(model="tiny-t2v", prompt="as a watercolour", video=str(source), seed=1).prepare()
    assert request.frames == 48
    result = engine.generate(request)
    assert read_video(result.media)["count"] == 48 and result.recipe["windows"]["count"] == 4
    assert [window.window_start for window, _ in calls] == [0, 12, 24, 36]
    from wan_studio import media

    source_frames = media.load_video_frames(str(source), fps=16)
    assert np.array_equal(np.asarray(calls[1][1]["video"][0]), np.asarray(source_frames[12]))  # its own slice
    known, latents = held[-1]  # the last step of the last window
    assert np.allclose(known, latents, atol=1e-5)
