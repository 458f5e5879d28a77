"""S2V's whole pipeline against upstream's own loop (`WanS2V.generate`, `wan22` 2.2.11, test-only),
two clips with guidance on toy weights, on CPU.

Upstream's module cannot be imported here (torchvision, decord, CUDA at import), so its `WanS2V`
class is taken from its source and run with its own audio encoder, schedulers and S2V model,
loaded under stub parent packages. What stays ours on both sides, so the comparison is about the
loop: the toy text encoder, VAE and wav2vec2 (through the interfaces upstream calls), and the
decoded audio samples. The transformer is upstream's `WanModel_S2V` on its side and ours on ours,
with the same weights through our converter.

Every transformer call is recorded on both sides: the noisy latents, timestep, text, reference,
motion latents (clip 2's come from re-encoding the end of clip 1), pose, audio and the first-clip
flag must agree, and so must the decoded video.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import math
import sys
import types

import numpy as np
import pytest
import torch

from tests.media_fixtures import make_image, speech_like, write_wav
from tests.test_s2v_choices_parity import reference_root, reference_s2v_config
from tests.test_s2v_parity import REFERENCE_CONFIG, _load_reference

CLIP_FRAMES = 8
MOTION_FRAMES = 9  # the toy model's; 3 latent frames


def _import_under_stubs(module: str, packages: dict, extra: dict | None = None):
    """Import one upstream module with stub parent packages (and stub top-level modules in `extra`)."""
    root = reference_root()
    saved = {name: mod for name, mod in sys.modules.items() if name == "wan" or name.startswith("wan.")}
    saved_extra = {name: sys.modules.get(name) for name in extra or {}}
    for name, folder in packages.items():
        package = types.ModuleType(name)
        package.__path__ = [str(root / folder)]
        sys.modules[name] = package
    sys.modules.update(extra or {})
    try:
        return importlib.import_module(module)
    finally:
        for name in [n for n in sys.modules if n == "wan" or n.startswith("wan.")]:
            del sys.modules[name]
        sys.modules.update(saved)
        for name, old in saved_extra.items():
            if old is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = old


class _Transforms:
    """The torchvision transforms upstream applies to the reference picture. Our picture is already
    at the chosen size (the size choice has its own test), so resize and crop must change nothing."""

    @staticmethod
    def Resize(short_side):
        def resize(image):
            assert min(image.size) == short_side, "the test picture must already be at the run's size"
            return image
        return resize

    @staticmethod
    def CenterCrop(size):
        def crop(image):
            assert image.size[::-1] == tuple(size), "the test picture must already be at the run's size"
            return image
        return crop

    @staticmethod
    def ToTensor():
        return lambda image: torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)


class _UpstreamVAE:
    """upstream's Wan2_1_VAE interface (lists of [C, T, H, W]; latents normalised by the VAE's mean
    and std) over the toy diffusers VAE."""

    def __init__(self, vae):
        self.vae, self.dtype, self.device = vae, torch.float32, torch.device("cpu")
        self.mean = torch.tensor(vae.config.latents_mean).view(-1, 1, 1, 1)
        self.std = torch.tensor(vae.config.latents_std).view(-1, 1, 1, 1)

    def encode(self, videos):
        return [(self.vae.encode(v[None].float()).latent_dist.mode()[0] - self.mean) / self.std for v in videos]

    def decode(self, latents):
        return [self.vae.decode((z * self.std + self.mean)[None], return_dict=False)[0][0].float().clamp_(-1, 1)
                for z in latents]


def _upstream_class():
    """upstream's WanS2V class from its source, with the names its methods use."""
    from PIL import Image

    unipc = _import_under_stubs("wan.utils.fm_solvers_unipc", {"wan": ".", "wan.utils": "utils"})
    dpm = _import_under_stubs("wan.utils.fm_solvers", {"wan": ".", "wan.utils": "utils"})
    source = (reference_root() / "speech2video.py").read_text()
    node = next(n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.ClassDef) and n.name == "WanS2V")
    namespace = {
        "np": np, "torch": torch, "math": math, "random": __import__("random"), "sys": sys, "gc": __import__("gc"),
        "deepcopy": __import__("copy").deepcopy, "dist": torch.distributed, "Image": Image, "transforms": _Transforms,
        "tqdm": lambda items: items, "FlowUniPCMultistepScheduler": unipc.FlowUniPCMultistepScheduler,
        "FlowDPMSolverMultistepScheduler": dpm.FlowDPMSolverMultistepScheduler,
        "get_sampling_sigmas": dpm.get_sampling_sigmas, "retrieve_timesteps": dpm.retrieve_timesteps,
    }
    exec(compile(ast.Module([node], []), "speech2video.py", "exec"), namespace)
    return namespace["WanS2V"]


def _upstream_audio_encoder(pipe):
    """upstream's AudioEncoder (wav2vec2 states, 50 -> 30 per second, bucketed per video frame) over
    the toy wav2vec2; librosa's decoding is replaced by ours (both sides get the same samples)."""
    from wan_studio.media import audio

    librosa = types.ModuleType("librosa")
    librosa.load = lambda path, sr: (audio.load_audio(path).samples, 16000)
    module = _import_under_stubs("wan.modules.s2v.audio_encoder",
                                 {"wan": ".", "wan.modules": "modules", "wan.modules.s2v": "modules/s2v"},
                                 {"librosa": librosa})
    encoder = object.__new__(module.AudioEncoder)
    encoder.processor, encoder.model, encoder.video_rate = pipe.feature_extractor, pipe.audio_encoder, 30
    return encoder


def _upstream_text_encoder(pipe):
    """upstream's T5EncoderModel call: its tokenizer's whitespace cleaning, UMT5 states cut to the
    prompt's tokens (the model pads them back to its text length with zeros)."""
    tokenizers = _import_under_stubs("wan.modules.tokenizers", {"wan": ".", "wan.modules": "modules"})

    def encode(texts, device):
        out = []
        for text in texts:
            inputs = pipe.tokenizer([tokenizers.whitespace_clean(tokenizers.basic_clean(text))], padding="max_length",
                                    max_length=512, truncation=True, add_special_tokens=True,
                                    return_attention_mask=True, return_tensors="pt")
            states = pipe.text_encoder(inputs.input_ids, inputs.attention_mask).last_hidden_state[0]
            out.append(states[: int(inputs.attention_mask.sum())])
        return out

    return encode


class _Recorder:
    def __init__(self, model):
        self.model, self.calls = model, []

    def __call__(self, x, t, **kwargs):
        self.calls.append(dict(x=x[0].clone(), t=t.clone(), context=kwargs["context"][0].clone(),
                               ref=kwargs["ref_latents"][0].clone(), motion=kwargs["motion_latents"][0].clone(),
                               pose=kwargs["cond_states"][0].clone(), audio=kwargs["audio_input"][0].clone(),
                               first=kwargs["drop_motion_frames"]))
        return self.model(x, t=t, **kwargs)


@pytest.fixture(scope="module")
def toy_pipeline():
    """Our tiny S2V pipeline with upstream's layout where it is fixed: a wav2vec2 of 24 layers (upstream
    mixes 25 hidden states) and a transformer with the upstream model's weights."""
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    from wan_studio import catalog
    from wan_studio.models import tiny
    from wan_studio.models.s2v_transformer import (
        WanS2VTransformer3DModel,
        config_from_original,
        convert_original_state_dict,
    )

    config = {**REFERENCE_CONFIG, "text_dim": tiny.TEXT_DIM, "text_len": 512, "audio_dim": tiny.AUDIO_DIM,
              "num_layers": 2, "audio_inject_layers": [0, 1]}
    torch.manual_seed(0)
    upstream_model = _load_reference().WanModel_S2V(**config).eval()
    with torch.no_grad():  # random values everywhere (upstream zero-inits some layers); small, so 2 steps stay tame
        for param in upstream_model.parameters():
            param.normal_(0.0, 0.1)
    pipe = tiny.build_s2v_pipeline(catalog.get("tiny-s2v"))
    pipe.audio_encoder = Wav2Vec2Model(Wav2Vec2Config(
        vocab_size=8, hidden_size=tiny.AUDIO_DIM, num_hidden_layers=24, num_attention_heads=2, intermediate_size=16,
        conv_dim=(8,) * 7, feat_extract_norm="layer", do_stable_layer_norm=True, num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2)).eval()
    ours = WanS2VTransformer3DModel(**config_from_original({**config, "motion_frames": MOTION_FRAMES})).eval()
    missing, unexpected = ours.load_state_dict(convert_original_state_dict(upstream_model.state_dict()), strict=False)
    assert missing == [] and unexpected == []
    pipe.transformer = ours
    return pipe, upstream_model


def _run_both(pipe, upstream_model, tmp_path, monkeypatch, seconds: float):
    """Our request + mode wrapper + pipeline, and upstream's generate, on the same picture and audio."""
    from pipelines import s2v as s2v_mode
    from wan_studio import catalog
    from wan_studio.catalog import raw_record
    from wan_studio.requests import S2VRequest

    image = make_image(tmp_path / "face.png", (128, 128), color=(180, 120, 90))
    sound = write_wav(tmp_path / "speech.wav", speech_like(seconds), 16000)
    request = S2VRequest(model="tiny-s2v", prompt="a woman talks to the camera", negative_prompt="", image=str(image),
                         audio=str(sound), clip_frames=CLIP_FRAMES, steps=2, guidance=4.5, seed=1234).prepare()
    record = catalog.get("tiny-s2v")

    ours_calls = []

    def record_ours(module, args, kwargs):
        ours_calls.append(dict(x=args[0][0].clone(), t=args[1].clone(), context=args[2][0].clone(),
                               ref=kwargs["reference_latents"][0].clone(), motion=kwargs["motion_latents"][0].clone(),
                               pose=kwargs["pose_latents"], audio=kwargs["audio_embeds"][0].clone(),
                               first=kwargs["drop_motion"]))

    handle = pipe.transformer.register_forward_pre_hook(record_ours, with_kwargs=True)
    try:
        ours_video = s2v_mode.run(pipe, request, record, callback=None)
    finally:
        handle.remove()

    upstream = object.__new__(_upstream_class())
    config = reference_s2v_config()
    recorder = _Recorder(upstream_model)
    upstream.__dict__.update(
        device=torch.device("cpu"), param_dtype=torch.float32, rank=0, t5_cpu=False, init_on_cpu=False,
        num_train_timesteps=config.num_train_timesteps, sample_neg_prompt=config.sample_neg_prompt,
        motion_frames=MOTION_FRAMES, drop_first_motion=config.drop_first_motion, fps=record.fps, audio_sample_m=0,
        text_encoder=_upstream_text_encoder(pipe), vae=_UpstreamVAE(pipe.vae), noise_model=recorder,
        audio_encoder=_upstream_audio_encoder(pipe),
    )
    upstream.text_encoder.model = types.SimpleNamespace(to=lambda device: None, cpu=lambda: None)
    with torch.no_grad():
        upstream_video = upstream.generate(
            input_prompt=request.prompt, ref_image_path=str(image), audio_path=str(sound), enable_tts=False,
            tts_prompt_audio=None, tts_prompt_text=None, tts_text=None, num_repeat=None, pose_video=None,
            max_area=raw_record(record.id)["s2v"]["areas"]["480p"], infer_frames=CLIP_FRAMES, shift=request.flow_shift,
            sample_solver="unipc", sampling_steps=request.steps, guide_scale=request.guidance, n_prompt="",
            seed=request.seed, offload_model=False, init_first_frame=False,
        )
    return request, ours_calls, ours_video, recorder.calls, upstream_video


def _same(ours, theirs, what: str, atol: float = 2e-5):
    assert ours.shape == theirs.shape, f"{what}: shape {tuple(ours.shape)} against upstream's {tuple(theirs.shape)}"
    difference = float((ours.float() - theirs.float()).abs().max())
    assert difference <= atol, f"{what}: differs from upstream's by {difference:.3g}"


def test_two_clips_give_the_transformer_what_upstreams_loop_gives_it(toy_pipeline, tmp_path, monkeypatch):
    """With our one deliberate change (the audio moved to line up with the picture) switched off,
    every transformer call of a two-clip run with guidance sees upstream's inputs, and the video is
    upstream's, trimmed to the audio."""
    from wan_studio.models.s2v_pipeline import WanS2VPipeline

    encode_audio = WanS2VPipeline.encode_audio
    monkeypatch.setattr(WanS2VPipeline, "encode_audio",
                        lambda self, *args, lead_frames=0, **kwargs: encode_audio(self, *args, lead_frames=0, **kwargs))
    pipe, upstream_model = toy_pipeline
    request, ours, ours_video, theirs, upstream_video = _run_both(pipe, upstream_model, tmp_path, monkeypatch, 0.8)

    assert request.clips == 2 and len(ours) == len(theirs) == 2 * request.steps * 2  # clips x steps x (cond, uncond)
    for index, (mine, upstream) in enumerate(zip(ours, theirs)):
        clip, branch = index // (2 * request.steps) + 1, ("prompt", "negative")[index % 2]
        where = f"clip {clip}, step {index // 2 % request.steps + 1}, {branch} branch"
        _same(mine["x"], upstream["x"], f"noisy latents ({where})")
        assert int(mine["t"]) == int(upstream["t"]), f"timestep ({where})"
        text = upstream["context"]
        _same(mine["context"][: len(text)], text, f"text ({where})")
        assert not mine["context"][len(text):].any(), f"text padding ({where})"
        _same(mine["ref"], upstream["ref"], f"reference latents ({where})")
        _same(mine["motion"], upstream["motion"], f"motion latents ({where})")
        assert mine["pose"] is None and not upstream["pose"].any(), f"no pose video ({where})"
        _same(mine["audio"], upstream["audio"], f"audio features ({where})")
        assert mine["first"] == upstream["first"] == (clip == 1), f"first-clip flag ({where})"
    # the negative branch: upstream's S2V negative text for an empty negative prompt, and silence
    assert not theirs[1]["audio"].any() and not ours[1]["audio"].any()
    assert not torch.equal(theirs[0]["context"], theirs[1]["context"])
    # clip 2 continues from clip 1: its motion latents are not the blank ones
    assert not torch.equal(theirs[0]["motion"], theirs[-1]["motion"])

    frames = upstream_video.shape[1]
    assert frames == 2 * CLIP_FRAMES - 3 and request.frames <= frames
    assert ours_video.shape == (request.frames, 128, 128, 3)
    expected = ((upstream_video[:, : request.frames].permute(1, 2, 3, 0) + 1) / 2 * 255).round().clamp(0, 255)
    assert np.abs(ours_video.astype(np.float32) - expected.numpy()).max() <= 1


def test_our_audio_is_upstreams_moved_to_play_with_its_frame(toy_pipeline, tmp_path, monkeypatch):
    """Our one deliberate change: upstream drives kept frame k with the audio of frame k + 3 (the
    3 dropped first frames); ours drives it with its own time's audio: our features are upstream's,
    3 frames later, and silence before the start."""
    pipe, upstream_model = toy_pipeline
    request, ours, _, theirs, _ = _run_both(pipe, upstream_model, tmp_path, monkeypatch, 0.8)
    drop = 3
    first_ours, first_theirs = ours[0]["audio"], theirs[0]["audio"]
    assert not first_ours[..., :drop].any()
    _same(first_ours[..., drop:], first_theirs[..., :-drop], "clip 1 audio, moved 3 frames")
    # clip 2 starts where clip 1 ended, on both sides
    last = 2 * request.steps * 2 - 2
    _same(ours[last]["audio"][..., drop:], theirs[last]["audio"][..., :-drop], "clip 2 audio, moved 3 frames")
    _same(ours[last]["audio"][..., :drop], theirs[0]["audio"][..., -drop:], "clip 2 audio, carried from clip 1")
