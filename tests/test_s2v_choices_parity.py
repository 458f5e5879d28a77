"""S2V's choices against the upstream reference (`wan22` 2.2.11, test-only): the output size for an
image and the default negative prompt. The reference package cannot be imported on CPU as a whole,
so its config module is loaded under stub parent packages, and its size function is read from its
source and run on its own."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import math
import sys
import types
from pathlib import Path

import pytest

from tests.media_fixtures import make_image, speech_like, write_wav
from wan_studio.requests import S2VRequest
from wan_studio.requests.s2v import size_within_area


def reference_root() -> Path:
    spec = importlib.util.find_spec("wan")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("wan22 (the upstream reference) is not installed; `make test` installs it with --no-deps")
    return Path(list(spec.submodule_search_locations)[0])


def reference_size_function():
    """upstream WanS2V.get_size_less_than_area, taken from its source and run alone (it needs only math)."""
    source = (reference_root() / "speech2video.py").read_text()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef) and node.name == "get_size_less_than_area":
            namespace = {"math": math}
            exec(compile(ast.Module([node], []), "speech2video.py", "exec"), namespace)
            function = namespace["get_size_less_than_area"]
            return lambda height, width, area: function(None, height, width, target_area=area)
    pytest.fail("upstream speech2video.py has no get_size_less_than_area")


def reference_s2v_config():
    root = reference_root()
    saved = {name: mod for name, mod in sys.modules.items() if name == "wan" or name.startswith("wan.")}
    for name, folder in (("wan", root), ("wan.configs", root / "configs")):
        package = types.ModuleType(name)
        package.__path__ = [str(folder)]
        sys.modules[name] = package
    try:
        return importlib.import_module("wan.configs.wan_s2v_14B").s2v_14B
    finally:
        for name in [n for n in sys.modules if n == "wan" or n.startswith("wan.")]:
            del sys.modules[name]
        sys.modules.update(saved)


IMAGES = [(1920, 1080), (1080, 1920), (1280, 720), (720, 1280), (1024, 1024), (640, 480), (480, 640), (3000, 2000),
          (2000, 3000), (1366, 768), (1000, 1333), (800, 800), (4032, 3024), (3024, 4032), (2560, 1080), (1080, 2560),
          (512, 512), (240, 120), (120, 240), (96, 96), (4000, 500), (500, 4000), (1600, 900), (900, 1600), (777, 555)]


@pytest.mark.parametrize("area", [832 * 480, 1024 * 704, 1280 * 720])  # S2V-14B's 480p, 720p and 720p-full buckets
def test_the_output_size_is_the_one_the_reference_picks(area):
    reference = reference_size_function()
    for width, height in IMAGES:
        ref_height, ref_width = reference(height, width, area)
        assert size_within_area(width, height, area) == (ref_width, ref_height), (width, height, area)


def test_a_16_by_9_photo_at_both_resolutions(tmp_path):
    photo = make_image(tmp_path / "photo.jpg", (1920, 1080))
    audio = write_wav(tmp_path / "speech.wav", speech_like(2.0), 16000)
    sizes = {resolution: S2VRequest(model="wan2.2-s2v-14b", prompt="she sings", image=str(photo), audio=str(audio),
                                    resolution=resolution).prepare() for resolution in ("480p", "720p", "720p-full")}
    # the sizes the issue measured on the reference (ours used to be 768x448 and 1088x576)
    assert (sizes["480p"].width, sizes["480p"].height) == (832, 448)
    assert (sizes["720p"].width, sizes["720p"].height) == (1088, 640)
    # upstream's largest area (--size 1280*720), which we used to refuse
    full = sizes["720p-full"]
    assert (full.width, full.height) == reference_size_function()(1080, 1920, 1280 * 720)[::-1]
    assert full.width * full.height > sizes["720p"].width * sizes["720p"].height


def test_the_default_negative_prompt_is_s2vs_own_and_an_empty_one_means_it(tmp_path):
    expected = reference_s2v_config().sample_neg_prompt
    assert "情绪激动剧烈" in expected and "色调艳丽" not in expected  # S2V's, not the generic Wan one
    image = make_image(tmp_path / "face.png", (120, 120))
    audio = write_wav(tmp_path / "speech.wav", speech_like(1.0), 16000)
    for given in (None, ""):
        request = S2VRequest(model="tiny-s2v", prompt="a man talks", image=str(image), audio=str(audio),
                             negative_prompt=given).prepare()
        assert request.negative_prompt == expected
    kept = S2VRequest(model="tiny-s2v", prompt="x", image=str(image), audio=str(audio), negative_prompt="blurry")
    assert kept.prepare().negative_prompt == "blurry"


def reference_audio_buckets():
    """upstream AudioEncoder.get_audio_embed_bucket_fps (and the sampling helper it calls), from source."""
    import numpy as np
    import torch

    source = (reference_root() / "modules" / "s2v" / "audio_encoder.py").read_text()
    wanted = {"get_audio_embed_bucket_fps", "get_sample_indices"}
    nodes = [node for node in ast.walk(ast.parse(source)) if isinstance(node, ast.FunctionDef) and node.name in wanted]
    assert {node.name for node in nodes} == wanted
    namespace = {"math": math, "np": np, "torch": torch}
    exec(compile(ast.Module(nodes, []), "audio_encoder.py", "exec"), namespace)
    encoder = types.SimpleNamespace(video_rate=30)  # AudioEncoder's rate after its linear interpolation

    def clips(audio_s: float, clip_frames: int = 80) -> int:
        from transformers import Wav2Vec2Config, Wav2Vec2Model

        # the feature count wav2vec2's convolutions give for this many 16 kHz samples
        model = types.SimpleNamespace(config=Wav2Vec2Config())  # only its convolution layout is read
        samples = torch.tensor(round(audio_s * 16000))
        features = int(Wav2Vec2Model._get_feat_extract_output_lengths(model, samples))
        resampled = int(features / 50.0 * 30)  # linear_interpolation(feat, input_fps=50, output_fps=30)
        embeds = torch.zeros(2, resampled, 4)
        return namespace["get_audio_embed_bucket_fps"](encoder, embeds, fps=16, batch_frames=clip_frames)[1]

    return clips


def test_clip_and_frame_counts_near_every_clip_boundary_match_the_reference(tmp_path):
    reference = reference_audio_buckets()
    image = make_image(tmp_path / "face.png", (120, 120))
    lengths = [round(boundary + delta, 3) for boundary in (5.0, 10.0, 15.0)
               for delta in (-0.2, -0.06, -0.02, 0.0, 0.02, 0.06, 0.1, 0.2)]
    for seconds in lengths:
        audio = write_wav(tmp_path / f"speech-{seconds}.wav", speech_like(seconds), 16000)
        request = S2VRequest(model="tiny-s2v", prompt="x", image=str(image), audio=str(audio), clip_frames=80).prepare()
        clips = reference(seconds)
        assert request.clips == clips, seconds
        assert request.frames == min(math.ceil(seconds * 16 - 1e-6), clips * 80 - 3), seconds  # trimmed with the audio


@pytest.mark.parametrize("clip_frames", [48, 64])
def test_shorter_clips_follow_the_reference_clip_count(tmp_path, clip_frames):
    """Upstream's infer_frames takes any multiple of 4 (48 for less memory): its bucket count for
    each length, near each clip boundary, is ours."""
    reference = reference_audio_buckets()
    image = make_image(tmp_path / "face.png", (120, 120))
    clip_s = clip_frames / 16
    for seconds in [round(k * clip_s + delta, 3) for k in (1, 2) for delta in (-0.1, 0.0, 0.06, 0.2)]:
        audio = write_wav(tmp_path / f"speech-{seconds}.wav", speech_like(seconds), 16000)
        request = S2VRequest(model="tiny-s2v", prompt="x", image=str(image), audio=str(audio),
                             clip_frames=clip_frames).prepare()
        clips = reference(seconds, clip_frames)
        assert request.clips == clips, seconds
        assert request.frames == min(math.ceil(seconds * 16 - 1e-6), clips * clip_frames - 3), seconds


def test_five_seconds_of_audio_make_one_clip_and_a_little_more_makes_two(tmp_path):
    image = make_image(tmp_path / "face.png", (120, 120))
    made = {}
    for seconds in (5.0, 5.1):
        audio = write_wav(tmp_path / f"speech-{seconds}.wav", speech_like(seconds), 16000)
        request = S2VRequest(model="tiny-s2v", prompt="x", image=str(image), audio=str(audio), clip_frames=80).prepare()
        made[seconds] = (request.clips, request.frames)
    assert made == {5.0: (1, 77), 5.1: (2, 82)}  # ours used to run two clips for 5.0 s


def reference_sampling_sigmas():
    """upstream get_sampling_sigmas (its dpm++ schedule), from source."""
    import numpy as np

    source = (reference_root() / "utils" / "fm_solvers.py").read_text()
    node = next(n for n in ast.walk(ast.parse(source))
                if isinstance(n, ast.FunctionDef) and n.name == "get_sampling_sigmas")
    namespace = {"np": np}
    exec(compile(ast.Module([node], []), "fm_solvers.py", "exec"), namespace)
    return namespace["get_sampling_sigmas"]


@pytest.mark.parametrize("steps, shift", [(40, 3.0), (20, 5.0), (8, 3.0)])
def test_dpm_plus_plus_samples_upstreams_sigmas(settings, steps, shift):
    """diffusers' DPM-Solver++ on flow sigmas starts at 1 - 1/1000 where upstream starts at 1; the
    rest of the schedule agrees to 1e-3."""
    import numpy as np

    from pipelines.common import set_flow_shift
    from wan_studio import catalog
    from wan_studio.runtime.engine import Engine

    pipe = Engine(settings).swap.activate(catalog.get("tiny-s2v"), "s2v")
    set_flow_shift(pipe, shift)
    scheduler = pipe._scheduler_for("dpm++")
    assert type(scheduler).__name__ == "DPMSolverMultistepScheduler"
    scheduler.set_timesteps(steps)
    ours = scheduler.sigmas[:steps].numpy()
    assert np.abs(ours - reference_sampling_sigmas()(steps, shift)).max() < 1e-3


def test_dry_run_shows_what_the_real_model_will_make(tmp_path, settings, capsys):
    """`generate --dry-run` for S2V-14B (no weights needed) prints the size, frames, clips and
    negative prompt the run will use: upstream's for a 16:9 photo and 5.0 s of audio."""
    import json

    from wan_studio.cli import main as cli_main

    photo = make_image(tmp_path / "photo.jpg", (1920, 1080))
    audio = write_wav(tmp_path / "speech.wav", speech_like(5.0), 16000)
    code = cli_main(["generate", "--mode", "s2v", "--model", "wan2.2-s2v-14b", "--prompt", "she sings",
                     "--image", str(photo), "--audio", str(audio), "--dry-run"])
    out, err = capsys.readouterr()
    assert code == 0, err
    shown = json.loads(out)
    assert (shown["width"], shown["height"], shown["frames"], shown["clips"]) == (832, 448, 77, 1)
    assert shown["negative_prompt"] == reference_s2v_config().sample_neg_prompt
