"""Speech to video on the Tiny S2V model: audio in any format, the typed request and its errors,
end to end through the engine and the CLI (mp4 as long as the audio, with the audio in it)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import read_video
from tests.media_fixtures import make_image, make_video, speech_like, to_mp3, write_wav
from wan_studio import media
from wan_studio.cli import main as cli_main
from wan_studio.errors import Cancelled, RequestError
from wan_studio.media import audio
from wan_studio.requests import S2VRequest


@pytest.fixture(scope="module")
def sounds(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sounds")
    wav = write_wav(folder / "speech.wav", speech_like(2.5), 16000)
    not_audio = folder / "notes.wav"
    not_audio.write_text("these are meeting notes, not a recording\n")
    return {
        "wav": wav,
        "mp3": to_mp3(wav, folder / "speech.mp3"),
        "stereo48k": write_wav(folder / "speech-48k-stereo.wav", speech_like(2.5, 48000, channels=2), 48000),
        "short": write_wav(folder / "short.wav", speech_like(0.3), 16000),
        "long": write_wav(folder / "long.wav", speech_like(31.0, 8000), 8000),  # tiny-s2v takes at most 30 s
        "not_audio": not_audio,
        "silent_video": make_video(folder / "silent.mp4", (64, 64), fps=16, seconds=1.0),
        "image": make_image(folder / "face.png", (120, 120), color=(220, 180, 150)),
        "wide": make_image(folder / "wide.png", (240, 120)),
        "pose": make_video(folder / "pose.mp4", (96, 96), fps=24, seconds=1.0),
    }


# -- audio -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["wav", "mp3", "stereo48k"])
def test_any_audio_format_decodes_to_16k_mono(sounds, name):
    decoded = audio.load_audio(sounds[name])
    assert decoded.sample_rate == 16000 and decoded.samples.ndim == 1 and decoded.samples.dtype == np.float32
    assert decoded.duration_s == pytest.approx(2.5, abs=0.06)  # mp3 frames may add a few ms
    reference = audio.load_audio(sounds["wav"]).samples
    rms = float(np.sqrt(np.mean(decoded.samples**2)))
    assert rms == pytest.approx(float(np.sqrt(np.mean(reference**2))), rel=0.25)  # the same speech, not silence


def test_unreadable_audio_files_are_named_in_the_error(sounds, tmp_path):
    with pytest.raises(RequestError, match="notes.wav is not audio ffmpeg can read") as info:
        audio.load_audio(sounds["not_audio"])
    assert info.value.field == "audio"
    with pytest.raises(RequestError, match="silent.mp4 has no sound track"):
        audio.load_audio(sounds["silent_video"])
    with pytest.raises(RequestError, match="does not exist"):
        audio.load_audio(tmp_path / "gone.wav")


# -- the request -----------------------------------------------------------------------------------
def test_request_follows_the_audio_and_the_image(sounds):
    request = S2VRequest(model="tiny-s2v", prompt="a woman talks", image=str(sounds["image"]),
                         audio=str(sounds["wav"])).prepare()
    assert request.frames == 40 and request.duration_s == pytest.approx(2.5)  # 2.5 s at 16 fps
    assert request.clip_frames == 32 and request.clips == 2  # the first clip gives 29 frames, so two are needed
    assert (request.width, request.height) == (128, 128)
    assert (request.steps, request.guidance) == (2, 4.5)
    wide = S2VRequest(model="tiny-s2v", prompt="x", image=str(sounds["wide"]), audio=str(sounds["mp3"]),
                      resolution="720p").prepare()
    assert wide.width > wide.height and wide.width % 64 == 0 and wide.height % 64 == 0
    real = S2VRequest(model="wan2.2-s2v-14b", prompt="x", image=str(sounds["wide"]), audio=str(sounds["wav"])).prepare()
    assert (real.clip_frames, real.clips, real.steps, real.guidance, real.flow_shift) == (80, 1, 40, 4.5, 3.0)
    # as the reference: a picture already within the 480p area is not enlarged, only padded to the 64-pixel grid
    assert (real.width, real.height) == (256, 128)


@pytest.mark.parametrize("change, field, message", [
    ({"audio": None}, "audio", "needs an audio file"),
    ({"audio": "not_audio"}, "audio", "notes.wav is not audio"),
    ({"audio": "silent_video"}, "audio", "no sound track"),
    ({"audio": "short"}, "audio", "0.30 s long; S2V needs at least 0.5 s"),
    ({"audio": "long"}, "audio", "31.0 s long; Tiny S2V .* takes at most 30 s"),
    ({"image": None}, "image", "needs a reference image"),
    ({"pose_video": "not_audio"}, "pose_video", "notes.wav"),
    ({"clip_frames": 30}, "clip_frames", "multiple of 4"),
    ({"frames": 41}, "frames", "between 1 and 40"),
    ({"resolution": "1080p"}, "resolution", "480p, 720p"),
])
def test_each_bad_input_has_its_own_message(sounds, change, field, message):
    given = {"image": "image", "audio": "wav", **change}
    fields = {k: (str(sounds[v]) if isinstance(v, str) and v in sounds else v) for k, v in given.items()}
    with pytest.raises(RequestError, match=message) as info:
        S2VRequest(model="tiny-s2v", prompt="a man sings", **fields).prepare()
    assert info.value.field == field


def test_refused_cli_job_writes_nothing(sounds, settings, capsys):
    code = cli_main(["generate", "--mode", "s2v", "--model", "tiny-s2v", "--prompt", "x",
                     "--image", str(sounds["image"]), "--audio", str(sounds["short"])])
    assert code == 2 and "at least 0.5 s" in capsys.readouterr().err
    code = cli_main(["generate", "--mode", "t2v", "--model", "tiny-t2v", "--prompt", "x",
                     "--audio", str(sounds["wav"])])
    assert code == 2 and "--audio is not an input of t2v" in capsys.readouterr().err
    assert not settings.output_dir.exists() or not any(settings.output_dir.iterdir())


# -- end to end ------------------------------------------------------------------------------------
def _audio_of(mp4: Path) -> float:
    return audio.load_audio(mp4, field="result").duration_s


def test_wav_to_video_two_clips_stitched_with_the_audio_muxed(engine, sounds):
    request = S2VRequest(model="tiny-s2v", prompt="a woman talks", image=str(sounds["image"]),
                         audio=str(sounds["wav"]), seed=5)
    pipe = engine.swap.activate(request.checkpoint, "s2v")
    calls = []
    hook = pipe.transformer.register_forward_pre_hook(lambda module, args, kwargs: calls.append(kwargs["drop_motion"]),
                                                      with_kwargs=True)
    events = []
    try:
        result = engine.generate(request, on_progress=events.append)
    finally:
        hook.remove()
    video = read_video(result.media)
    assert (video["count"], video["width"], video["height"], video["fps"]) == (40, 128, 128, 16.0)
    assert media.probe_video(result.media).has_audio
    assert _audio_of(result.media) == pytest.approx(2.5, abs=0.08)
    # two clips of 2 steps, each with a conditional and an unconditional pass; the second continues the first
    assert calls == [True] * 4 + [False] * 4
    steps = [e.step for e in events if e.stage == "denoising"]
    assert steps == [1, 2, 3, 4] and {e.total for e in events if e.stage == "denoising"} == {4}
    assert [(e.clip, e.clips) for e in events if e.stage == "denoising"] == [(1, 2), (1, 2), (2, 2), (2, 2)]
    assert "Step 3/4, clip 2/2" in [e for e in events if e.stage == "denoising"][2].describe()
    # the audio is kept beside the result and the recipe points at the copy
    copied = result.media.parent / result.recipe["request"]["audio"]
    assert copied.read_bytes() == sounds["wav"].read_bytes()
    assert result.recipe["output"]["audio"]["codec"] == "aac" and result.recipe["request"]["clip_frames"] == 32


def test_each_frame_is_driven_by_the_audio_it_plays_with(engine, sounds, monkeypatch):
    """Wan's reference drops the first clip's first 3 frames but feeds that clip audio from t=0, so its
    picture leads the sound by 187.5 ms. Here an audio encoder whose every state is its own time stamp
    shows which moment of the audio drove each output frame."""
    import types

    import torch

    request = S2VRequest(model="tiny-s2v", prompt="a woman talks", image=str(sounds["image"]), audio=str(sounds["wav"]),
                         steps=1, seed=5).prepare()
    pipe = engine.swap.activate(request.checkpoint, "s2v")
    config = pipe.audio_encoder.config

    class Clock(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.anchor = torch.nn.Parameter(torch.zeros(1))  # for the pipeline's dtype and device
            self.config = config

        @property
        def device(self):
            return self.anchor.device

        @property
        def dtype(self):
            return self.anchor.dtype

        def forward(self, values, output_hidden_states=True):
            count = (values.shape[-1] - 400) // 320 + 1  # wav2vec2's 50-a-second frames
            stamp = (torch.arange(count, dtype=torch.float32) + 1)[None, :, None].expand(1, count, config.hidden_size)
            return types.SimpleNamespace(hidden_states=(stamp,) * (config.num_hidden_layers + 1))

    monkeypatch.setattr(pipe, "audio_encoder", Clock())
    seen = []
    hook = pipe.transformer.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(kwargs["audio_embeds"][0, 0, 0].float().clone()), with_kwargs=True)
    try:
        engine.generate(request)
    finally:
        hook.remove()
    conditional = [embeds for embeds in seen if embeds.abs().sum() > 0]  # the unconditional passes get silence
    assert len(conditional) == request.clips == 2
    checked = 0
    for clip, embeds in enumerate(conditional):
        for index, stamp in enumerate(embeds.tolist()):
            frame = clip * request.clip_frames - 3 + index  # the first clip's first 3 frames are dropped
            if frame < 0 or stamp == 0:
                assert frame < 0 or frame >= 40, (clip, index)  # silence only before the start or past the end
                continue
            heard = (stamp - 1) / 50  # the moment of the audio (50 wav2vec2 frames a second) that drove it
            # within a 30 fps feature step plus the 50 -> 30 resampling's stretch (~1 %); the old lead was 0.1875 s
            assert abs(heard - frame / 16) <= 0.07, (frame, heard)
            checked += 1
    assert checked == 40  # every output frame


def test_starting_from_the_reference_picture_keeps_the_first_clips_frames(engine, sounds, tmp_path, capsys):
    audio = write_wav(tmp_path / "two-seconds.wav", speech_like(2.0), 16000)
    fields = dict(model="tiny-s2v", prompt="a woman talks", image=str(sounds["image"]), audio=str(audio), steps=1,
                  seed=2)
    plain = S2VRequest(**fields).prepare()
    started = S2VRequest(**fields, init_first_frame=True).prepare()
    assert (plain.clips, plain.frames) == (1, 29)  # made after blank motion frames, the clip loses its first 3
    assert (started.clips, started.frames) == (1, 32)  # continuing from the picture it keeps all 2.0 s
    pipe = engine.swap.activate(started.checkpoint, "s2v")
    drops = []
    hook = pipe.transformer.register_forward_pre_hook(lambda module, args, kwargs: drops.append(kwargs["drop_motion"]),
                                                      with_kwargs=True)
    try:
        result = engine.generate(started)
    finally:
        hook.remove()
    assert read_video(result.media)["count"] == 32 and drops == [False, False]  # the motion frames are used
    code = cli_main(["generate", "--mode", "s2v", "--model", "tiny-s2v", "--prompt", "x",
                     "--image", str(sounds["image"]), "--audio", str(audio), "--init-first-frame", "--dry-run"])
    out = capsys.readouterr().out
    assert code == 0 and '"init_first_frame": true' in out and '"frames": 32' in out


def test_the_dpm_plus_plus_sampler_runs_every_step_of_every_clip(engine, sounds, monkeypatch):
    from diffusers import DPMSolverMultistepScheduler

    steps = []
    real_step = DPMSolverMultistepScheduler.step
    monkeypatch.setattr(DPMSolverMultistepScheduler, "step",
                        lambda self, *args, **kwargs: steps.append(1) or real_step(self, *args, **kwargs))
    request = S2VRequest(model="tiny-s2v", prompt="a woman talks", image=str(sounds["image"]), audio=str(sounds["wav"]),
                         steps=3, seed=4, solver="dpm++").prepare()
    result = engine.generate(request)
    assert read_video(result.media)["count"] == 40 and len(steps) == 3 * request.clips == 6
    assert result.recipe["request"]["solver"] == "dpm++"


def test_mp3_and_pose_video_through_the_cli(sounds, settings, capsys):
    code = cli_main(["generate", "--mode", "s2v", "--model", "tiny-s2v", "--prompt", "a man sings",
                     "--image", str(sounds["wide"]), "--audio", str(sounds["mp3"]), "--pose-video", str(sounds["pose"]),
                     "--steps", "1", "--seed", "3", "--quiet"])
    out = capsys.readouterr()
    assert code == 0, out.err
    path = Path(out.out.strip().splitlines()[-1])
    video = read_video(path)
    assert video["count"] == 40 and video["fps"] == 16.0
    assert media.probe_video(path).has_audio and _audio_of(path) == pytest.approx(2.5, abs=0.1)


def test_stop_between_steps_saves_nothing(engine, sounds, settings):
    request = S2VRequest(model="tiny-s2v", prompt="x", image=str(sounds["image"]), audio=str(sounds["stereo48k"]),
                         seed=1)
    cancel = threading.Event()

    def on_progress(event):
        if event.stage == "denoising" and event.step == 1:
            cancel.set()

    with pytest.raises(Cancelled):
        engine.generate(request, on_progress=on_progress, cancel=cancel)
    assert not list(settings.output_dir.glob("*.mp4"))


def test_queued_job_keeps_its_audio_and_the_recipe_reruns_it(engine, sounds, settings, tmp_path, capsys):
    from wan_studio.queue.store import JobStore
    from wan_studio.queue.worker import QueueWorker

    speech = tmp_path / "take-1.mp3"
    speech.write_bytes(sounds["mp3"].read_bytes())
    store = JobStore(tmp_path / "queue" / "queue.db", tmp_path / "queue" / "inputs", busy_timeout_s=2.0)
    worker = QueueWorker(store, engine, poll_interval_s=0.2)
    try:
        job = store.add(S2VRequest(model="tiny-s2v", prompt="a man talks", image=str(sounds["image"]),
                                   audio=str(speech), steps=1, seed=9))
        speech.unlink()  # the queue has its own copy
        assert Path(job.request["audio"]).parent == store.inputs_dir / job.id
        worker.run_until_empty()
        done = store.get(job.id)
    finally:
        worker.stop(timeout=30)
        store.close()
    assert done.state == "done", done.error_message
    recipe_file = Path(done.result_path).with_suffix(".json")
    first = read_video(done.result_path)
    assert first["count"] == 40 and media.probe_video(done.result_path).has_audio
    # the recipe points at the library's copy of the audio, so the result re-runs exactly
    assert cli_main(["generate", "--recipe", str(recipe_file), "--quiet"]) == 0
    again = read_video(Path(capsys.readouterr().out.strip().splitlines()[-1]))
    assert np.array_equal(again["frames"], first["frames"])
