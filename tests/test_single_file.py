"""The files users have (config.json model_files): a Tiny transformer written as a single file in the
original Wan layout, in bf16, FP8 and FP8 with per-tensor scales, runs T2V through the same request as
the folder one; FP8 stays FP8 on the device; the plan counts what is resident; `--dry-run` names the
files; Settings finds them in a ComfyUI folder.

Measured bounds (64x64, 9 frames, 3 steps, CPU fp32; mean absolute difference in 8-bit levels against
the folder's video): bf16 file 0.49, FP8 0.59, FP8-scaled 0.59. The same FP8-scaled file with its scales
ignored (what diffusers' single-file path alone makes of it) is off by 1.09 only: the Tiny video hardly
depends on the block weights, so one transformer forward is the discriminating check (relative L2 error
against the folder's: bf16 0.24 %, FP8 0.77 %, FP8-scaled 0.85 %; scales ignored 124 %)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from tests.conftest import read_video
from tests.single_file_fixtures import PRECISIONS, header_only_file, original_state_dict, write_single_file
from tests.test_gguf import with_config
from wan_studio.requests import T2VRequest

RUN = dict(model="tiny-t2v", prompt="a fox in the snow", width=64, height=64, frames=9, steps=3, seed=1)
BOUND = 0.8  # mean |difference| in 8-bit levels; measured 0.49 (bf16), 0.59 (fp8), 0.59 (fp8-scaled)


@pytest.fixture
def tiny_transformer(settings):
    from diffusers import WanTransformer3DModel

    from wan_studio import catalog, models

    folder = models.resolve(catalog.get("tiny-t2v"), settings)
    return WanTransformer3DModel.from_pretrained(folder, subfolder="transformer")


@pytest.fixture
def reference_video(settings):
    from wan_studio.runtime.engine import Engine

    return read_video(Engine(settings).generate(T2VRequest(**RUN)).media)["frames"].astype(np.int16)


def test_the_fixture_has_upstreams_key_names_and_shapes(tiny_transformer):
    """Upstream's own WanModel (wan22 2.2.11) at the Tiny config names every tensor the fixture holds."""
    from tests.test_s2v_parity import _load_reference

    cfg = tiny_transformer.config
    upstream = _load_reference().WanModel(
        model_type="t2v", patch_size=tuple(cfg.patch_size), in_dim=cfg.in_channels,
        dim=cfg.num_attention_heads * cfg.attention_head_dim, ffn_dim=cfg.ffn_dim, freq_dim=cfg.freq_dim,
        text_dim=cfg.text_dim, out_dim=cfg.out_channels, num_heads=cfg.num_attention_heads, num_layers=cfg.num_layers,
        qk_norm=True, cross_attn_norm=cfg.cross_attn_norm, eps=cfg.eps)
    expected = {name: tuple(t.shape) for name, t in upstream.state_dict().items()}
    for precision in PRECISIONS:
        written = original_state_dict(tiny_transformer.state_dict(), precision)
        weights = {name: tuple(t.shape) for name, t in written.items()
                   if not name.endswith(".scale_weight") and name != "scaled_fp8"}
        assert weights == expected, precision


@pytest.mark.parametrize("precision", PRECISIONS)
def test_a_single_file_transformer_makes_the_same_video(settings, tiny_transformer, reference_video, precision,
                                                        tmp_path, monkeypatch):
    import torch

    from wan_studio.runtime.engine import Engine

    path = write_single_file(tiny_transformer.state_dict(), tmp_path / f"tiny-t2v_{precision}.safetensors", precision)
    engine = Engine(with_config(tmp_path, monkeypatch, {"model_files": {"tiny-t2v": {"transformer": str(path)}}}))
    result = engine.generate(T2VRequest(**RUN, memory_plan="low-vram"))
    video = read_video(result.media)
    assert (video["count"], video["width"], video["height"]) == (9, 64, 64)
    assert np.abs(video["frames"].astype(np.int16) - reference_video).mean() < BOUND
    transformer = engine.swap.active_pipeline.transformer
    dtypes = {p.dtype for p in transformer.parameters()}
    notes = result.recipe["memory"]["notes"]
    if precision == "bf16":  # loaded in the plan's dtype like a folder's weights, and quantized as the plan says
        assert torch.float8_e4m3fn not in dtypes
        assert not any("from its file" in note for note in notes)
    else:  # kept in FP8 with its scales, and quantized no further
        assert torch.float8_e4m3fn in dtypes
        assert transformer.stored_in_fp8 == precision
        assert any(note.endswith("skipped: the transformer's weights come in FP8 from its file") for note in notes)
    # the recipe names the file it was made with, its precision and a cheap identity, and re-runs as before
    from wan_studio.media.recipe import load_recipe
    from wan_studio.requests import request_from_dict
    from wan_studio.runtime.gallery import reload_request

    raw = path.read_bytes()
    header_end = 8 + int.from_bytes(raw[:8], "little")
    files = load_recipe(result.recipe_path)["files"]
    assert set(files) == {"transformer"}
    assert {key: files["transformer"][key] for key in ("file", "precision", "bytes", "header_sha256")} == {
        "file": str(path), "precision": precision, "bytes": len(raw),
        "header_sha256": hashlib.sha256(raw[:header_end]).hexdigest()}
    assert load_recipe(result.media)["files"] == files  # the copy inside the mp4 too
    assert request_from_dict(reload_request(engine.library, result.id)).to_dict() == result.recipe["request"]


@pytest.mark.parametrize("precision", PRECISIONS)
def test_the_loaded_weights_are_the_files_values(settings, tiny_transformer, precision, tmp_path):
    """Weight by weight: the file's bf16 values exactly, or its FP8 values times their scale."""
    import torch

    from wan_studio import catalog, models
    from wan_studio.models.single_file import load_transformer

    folder = models.resolve(catalog.get("tiny-t2v"), settings)
    path = write_single_file(tiny_transformer.state_dict(), tmp_path / "t.safetensors", precision)
    loaded = load_transformer(catalog.get("tiny-t2v"), "transformer", str(path), folder, torch.float32, settings)
    modules = dict(loaded.named_modules())
    for name, original in tiny_transformer.state_dict().items():
        layer, _, leaf = name.rpartition(".")
        value = getattr(modules[layer], leaf)
        if value.dtype == torch.float8_e4m3fn:
            scale = modules[layer].scale_weight
            expected = original / scale if precision == "fp8-scaled" else original
            assert torch.equal(value.float() * scale, expected.to(torch.float8_e4m3fn).float() * scale), name
        else:
            assert torch.equal(value, original.to(torch.bfloat16).float()), name


# relative L2 of one forward; measured 0.0024, 0.0077, 0.0085
FORWARD_BOUND = {"bf16": 0.005, "fp8": 0.02, "fp8-scaled": 0.02}


def test_one_forward_is_within_the_precisions_error_and_the_scales_matter(settings, tiny_transformer, tmp_path):
    """The discriminating check (the Tiny video barely depends on the block weights: ignoring the scales
    moves it by 1.09 levels only): one transformer forward against the folder's, and the same FP8-scaled
    file read as diffusers' single-file path alone reads it (scales ignored: off by 124 %)."""
    import torch
    from diffusers import WanTransformer3DModel
    from safetensors.torch import load_file

    from wan_studio import catalog, models
    from wan_studio.models.single_file import load_transformer

    folder = models.resolve(catalog.get("tiny-t2v"), settings)
    torch.manual_seed(0)
    inputs = (torch.randn(1, 16, 3, 8, 8), torch.tensor([500.0]), torch.randn(1, 12, 32))

    def error(model) -> float:
        with torch.no_grad():
            out, ref = model(*inputs, return_dict=False)[0], tiny_transformer(*inputs, return_dict=False)[0]
        return ((out - ref).norm() / ref.norm()).item()

    for precision in PRECISIONS:
        path = write_single_file(tiny_transformer.state_dict(), tmp_path / f"{precision}.safetensors", precision)
        loaded = load_transformer(catalog.get("tiny-t2v"), "transformer", str(path), folder, torch.float32, settings)
        assert error(loaded) < FORWARD_BOUND[precision], precision
    unscaled = WanTransformer3DModel.from_single_file(load_file(str(path)), config=str(folder), subfolder="transformer")
    assert error(unscaled) > 0.5


def _original_shapes(record) -> dict:
    from accelerate import init_empty_weights
    from diffusers import WanTransformer3DModel

    from tests.gguf_fixtures import original_name
    from wan_studio.memory.footprints import transformer_config

    with init_empty_weights():
        model = WanTransformer3DModel(**{k: v for k, v in transformer_config(record).items() if not k.startswith("_")})
    return {original_name(name): tuple(t.shape) for name, t in model.state_dict().items()}


def test_the_plan_counts_what_an_fp8_file_keeps_resident(settings, tmp_path, monkeypatch):
    from wan_studio import catalog
    from wan_studio.memory.choose import choose
    from wan_studio.memory.plans import simulated_machine

    record, rtx4080 = catalog.get("wan2.1-t2v-14b"), simulated_machine("cuda", 16, (8, 9))
    request = T2VRequest(model=record.id, prompt="x", width=832, height=480, frames=81).prepare()
    folder_plan = choose(record, request, rtx4080)
    shapes = _original_shapes(record)
    params = sum(int(np.prod(s)) for s in shapes.values())
    path = header_only_file(tmp_path / "wan2.1_t2v_14B_fp8_scaled.safetensors", shapes, "fp8-scaled")
    with_config(tmp_path, monkeypatch, {"model_files": {record.id: {"transformer": str(path)}}})
    from_file = choose(record, request, rtx4080)
    resident = from_file.estimate.breakdown["weights_transformer"]
    assert params / 2**30 < resident < 1.05 * params / 2**30  # about one byte a parameter: FP8, as it stays
    # the same as the folder's weights quantized to 8 bits on this card, now without any quantizing
    assert resident == pytest.approx(folder_plan.estimate.breakdown["weights_transformer"], rel=0.01)
    bf16 = header_only_file(tmp_path / "wan2.1_t2v_14B_bf16.safetensors", shapes, "bf16")
    with_config(tmp_path, monkeypatch, {"model_files": {record.id: {"transformer": str(bf16)}}})
    as_folder = choose(record, request, rtx4080)  # a bf16 file is planned (and quantized) like the folder
    assert as_folder.estimate.breakdown["weights_transformer"] == folder_plan.estimate.breakdown["weights_transformer"]


def test_dry_run_names_the_files(settings, tmp_path, monkeypatch, capsys):
    from wan_studio.cli import main

    shapes = _original_shapes(__import__("wan_studio.catalog", fromlist=["get"]).get("wan2.1-t2v-14b"))
    transformer = header_only_file(tmp_path / "wan2.1_t2v_14B_fp8_scaled.safetensors", shapes, "fp8-scaled")
    with_config(tmp_path, monkeypatch, {"model_files": {"wan2.1-t2v-14b": {"transformer": str(transformer)}}})
    main(["generate", "--model", "wan2.1-t2v-14b", "--prompt", "a fox", "--dry-run"])
    summary = json.loads(capsys.readouterr().out)
    assert summary["files"] == {"transformer": {"file": str(transformer), "precision": "fp8-scaled"}}


def test_files_in_a_comfyui_folder_are_found_by_their_usual_names(settings, tiny_transformer, tmp_path, monkeypatch):
    from wan_studio.models.single_file import found_files, local_file, suggested_files

    comfy = tmp_path / "ComfyUI"
    for sub in ("models/diffusion_models", "models/text_encoders", "models/vae"):
        (comfy / sub).mkdir(parents=True)
    state = tiny_transformer.state_dict()
    write_single_file(state, comfy / "models/diffusion_models/wan2.1_t2v_14B_fp8_scaled.safetensors", "fp8-scaled")
    write_single_file(state, comfy / "models/diffusion_models/wan2.1_t2v_14B_bf16.safetensors", "bf16")
    write_single_file(state, comfy / "models/diffusion_models/my_own_finetune.safetensors", "bf16")
    write_single_file(state, comfy / "models/vae/wan_2.1_vae.safetensors", "bf16")
    settings = with_config(tmp_path, monkeypatch, {"comfyui_dir": str(comfy)})
    rows = {(r["model"], r["component"], r["file"]): r for r in found_files(settings)}
    row = rows[("wan2.1-t2v-14b", "transformer", "wan2.1_t2v_14B_fp8_scaled.safetensors")]
    assert (row["precision"], row["where"]) == ("fp8-scaled", "found in your ComfyUI folder")
    assert ("wan2.1-t2v-14b", "vae", "wan_2.1_vae.safetensors") in rows
    assert not any(file == "my_own_finetune.safetensors" for _, _, file in rows)
    assert suggested_files(settings, "wan2.1-t2v-14b") == {
        "transformer": str(comfy / "models/diffusion_models/wan2.1_t2v_14B_fp8_scaled.safetensors"),
        "vae": str(comfy / "models/vae/wan_2.1_vae.safetensors")}
    # a bare name in model_files is looked up there
    assert local_file("my_own_finetune.safetensors", settings) == (
        comfy / "models/diffusion_models/my_own_finetune.safetensors")


def test_transformer_files_still_works_and_a_missing_file_is_a_clear_error(settings, tmp_path, monkeypatch):
    from wan_studio import catalog
    from wan_studio.errors import ModelNotAvailable
    from wan_studio.models.single_file import model_files
    from wan_studio.runtime.engine import Engine

    old = with_config(tmp_path, monkeypatch, {"transformer_files": {"tiny-t2v": "/x/old.gguf"},
                                              "model_files": {"tiny-t2v": {"vae": "/x/vae.safetensors"}}})
    assert model_files(catalog.get("tiny-t2v"), old) == {"transformer": "/x/old.gguf", "vae": "/x/vae.safetensors"}
    engine = Engine(with_config(tmp_path, monkeypatch,
                                {"model_files": {"tiny-t2v": str(tmp_path / "gone.safetensors")}}))
    with pytest.raises(ModelNotAvailable, match=r"The model file .*gone.safetensors does not exist"):
        engine.generate(T2VRequest(**RUN))


def test_a_text_encoder_single_file_in_comfyuis_naming(settings, reference_video, tmp_path, monkeypatch):
    """ComfyUI's umt5_xxl files use transformers' T5 names (encoder.block.N..., shared.weight)."""
    from safetensors.torch import save_file
    from transformers import UMT5EncoderModel

    from wan_studio import catalog, models
    from wan_studio.runtime.engine import Engine

    folder = models.resolve(catalog.get("tiny-t2v"), settings)
    encoder = UMT5EncoderModel.from_pretrained(folder, subfolder="text_encoder")
    state = {name: t.contiguous() for name, t in encoder.state_dict().items() if name != "encoder.embed_tokens.weight"}
    path = tmp_path / "umt5_xxl_fp16.safetensors"
    save_file(state, str(path))
    engine = Engine(with_config(tmp_path, monkeypatch, {"model_files": {"tiny-t2v": {"text_encoder": str(path)}}}))
    video = read_video(engine.generate(T2VRequest(**RUN)).media)["frames"].astype(np.int16)
    assert np.array_equal(video, reference_video)


LOAD_MEMORY = '''
import json, sys, types
from pathlib import Path

import torch
from accelerate import init_empty_weights
from diffusers import WanTransformer3DModel

from tests.gguf_fixtures import original_name
from tests.single_file_fixtures import header_only_file
from wan_studio.models.single_file import load_transformer

folder = Path(sys.argv[1])
with init_empty_weights():  # 8 blocks of Wan 2.1 1.3B: 370 M parameters, a 423 MB FP8-scaled file
    model = WanTransformer3DModel(num_attention_heads=12, attention_head_dim=128, ffn_dim=8960, num_layers=8)
model.save_config(folder / "transformer")
path = header_only_file(folder / "medium_fp8_scaled.safetensors",
                        {original_name(n): tuple(t.shape) for n, t in model.state_dict().items()}, "fp8-scaled")


def status(key):
    return int(next(line for line in open("/proc/self/status") if line.startswith(key)).split()[1]) * 1024


before = status("VmRSS:")
open("/proc/self/clear_refs", "w").write("5")  # the high-water mark starts again from here
loaded = load_transformer(types.SimpleNamespace(name="medium"), "transformer", str(path), folder, torch.bfloat16,
                          types.SimpleNamespace(), cls=WanTransformer3DModel)
for weight in loaded.parameters():  # every byte read, as moving the model to the device reads it
    weight.view(torch.uint8).max()
print(json.dumps({"file": path.stat().st_size, "growth": status("VmHWM:") - before,
                  "fp8": sum(w.numel() for w in loaded.parameters() if w.dtype == torch.float8_e4m3fn)}))
'''


def test_loading_an_fp8_file_holds_about_the_files_size_in_memory(tmp_path):
    """A 14B FP8 file (14 GB) must load on a 32 GB machine: no bf16 copy of the weights on the way (the
    earlier loader, diffusers' from_single_file and an FP8 put-back, peaked at 2.65x the file, 28 GB for
    a 14B model). Peak resident memory of a fresh process (file pages included) while it loads a 423 MB
    FP8-scaled file and reads every weight: measured 1.03x the file's size."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    done = subprocess.run([sys.executable, "-c", LOAD_MEMORY, str(tmp_path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    assert measured["fp8"] > 0.85 * measured["file"]  # the block weights stay FP8
    assert 0.8 * measured["file"] < measured["growth"] < 1.6 * measured["file"], measured


def test_a_vae_single_file_in_upstreams_names_decodes_as_the_folder_vae(tmp_path):
    """ComfyUI's `wan_2.1_vae.safetensors` layout: upstream's WanVAE_ names, bf16. A small VAE of the
    published layout (diffusers' converter reads that layout only: dim_mult 1,2,4,4 and two residual
    blocks per stage; the Tiny checkpoints' VAE is not of it) loads from such a file and decodes like the
    folder's and exactly like upstream's own module holding the same file. Relative L2 of the decoded video
    measured: 2.5 % against the folder's float32 VAE (the file's bf16 rounding, through a random decoder),
    0.0 against upstream's WanVAE_ with the file's weights."""
    import types

    import torch
    from diffusers import AutoencoderKLWan
    from safetensors.torch import save_file

    from tests.single_file_fixtures import original_vae_state_dict, upstream_vae
    from wan_studio.models.single_file import load_vae

    torch.manual_seed(0)
    vae = AutoencoderKLWan(base_dim=4, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2,
                           temperal_downsample=[False, True, True]).eval()
    vae.save_pretrained(tmp_path / "checkpoint" / "vae")
    original = original_vae_state_dict(vae)
    path = tmp_path / "wan_2.1_vae.safetensors"
    save_file(original, str(path))
    loaded = load_vae(types.SimpleNamespace(name="small"), str(path), tmp_path / "checkpoint", torch.float32,
                      types.SimpleNamespace())
    reference = upstream_vae(vae.config).eval()
    reference.load_state_dict({name: t.float() for name, t in original.items()}, strict=True)
    latents = torch.randn(1, 16, 3, 8, 8)
    with torch.no_grad():
        video = loaded.decode(latents).sample
        folder_video = vae.decode(latents).sample
        upstream_video = reference.decode(latents, [0.0, 1.0]).clamp(-1, 1)

    def error(other) -> float:
        return ((video - other).norm() / other.norm()).item()

    assert video.shape == (1, 3, 9, 64, 64)
    assert error(upstream_video) < 1e-5, error(upstream_video)
    assert error(folder_video) < 0.05, error(folder_video)
