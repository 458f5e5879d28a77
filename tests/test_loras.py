"""LoRA manager: every key layout loads into Tiny pipelines, toggles exactly, and a LoRA that cannot fit is
refused when the request is prepared at submit (nothing queued, nothing written). The LoRA files are built from the
published key layouts in tests/data/lora_layouts.json (tests/lora_fixtures.py), not by our reader's code."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from tests.lora_fixtures import LAYOUTS, WAN21_1_3B, WAN21_14B, tiny_dims, write_lora_file
from wan_studio import catalog, loras
from wan_studio.errors import RequestError
from wan_studio.loras import apply as lora_apply
from wan_studio.requests import T2VRequest, request_from_dict

SIZE = dict(width=64, height=64, frames=5, seed=3, steps=2)


@pytest.fixture
def lora_settings(settings, tmp_path, monkeypatch):
    monkeypatch.setenv("WAN_STUDIO_LORAS_DIR", str(tmp_path / "loras"))
    from wan_studio.settings import load_settings

    return load_settings()


def frames_for(engine, request) -> np.ndarray:
    import pipelines

    record = request.checkpoint
    wrapper = pipelines.wrapper_for(request.mode)
    pipe = engine.swap.activate(record, pipelines.pipeline_mode(wrapper, request))
    lora_apply.prepare(pipe, request, record)
    return wrapper.run(pipe, request, record, None)


@pytest.mark.parametrize("layout", sorted(LAYOUTS["layouts"]))
def test_every_layout_changes_the_output_and_disabling_restores_it_exactly(engine, lora_settings, layout):
    path = write_lora_file(lora_settings.loras_dir / f"style-{layout}.safetensors", layout,
                           tiny_dims("tiny-t2v", lora_settings), rank=4, seed=5)
    base = frames_for(engine, T2VRequest(model="tiny-t2v", prompt="a fox", **SIZE).prepare())
    with_lora = T2VRequest(model="tiny-t2v", prompt="a fox", loras=[{"source": path.name, "weight": 1.0}],
                           **SIZE).prepare()
    # Kijai's and LightX2V's extractions share the lightx2v reader (diffusion_model. with lora_down)
    read_as_lightx2v = ("kijai", "lightx2v-extract", "kjnodes-extract")
    assert with_lora.resolved_loras[0].layout == ("lightx2v" if layout in read_as_lightx2v else layout)
    changed = frames_for(engine, with_lora)
    assert not np.array_equal(base, changed)
    loads = engine.swap.loads
    again = frames_for(engine, T2VRequest(model="tiny-t2v", prompt="a fox", **SIZE).prepare())
    assert np.array_equal(base, again)  # disabled: exactly the base output
    assert engine.swap.loads == loads  # toggled on the active pipeline, no reload


def test_moe_pair_low_lora_reaches_transformer_2_only(engine, lora_settings):
    high = write_lora_file(lora_settings.loras_dir / "high.safetensors", "kijai",
                           tiny_dims("tiny-t2v-moe", lora_settings), rank=4, seed=1)
    low = write_lora_file(lora_settings.loras_dir / "low.safetensors", "kijai",
                          tiny_dims("tiny-t2v-moe", lora_settings, "transformer_2"), rank=2, seed=2)
    request = T2VRequest(model="tiny-t2v-moe", prompt="a fox", loras=["high:1.0:high", f"{low}:0.7:low"],
                         **SIZE).prepare()
    frames_for(engine, request)
    pipe = engine.swap._active
    assert [lora.path for lora in request.resolved_loras] == [high, low]  # "high" by name from the library, low by path
    high_name, low_name = (lora.adapter_name for lora in request.resolved_loras)
    assert lora_apply.loaded_adapters(pipe.transformer) == {high_name}
    assert lora_apply.loaded_adapters(pipe.transformer_2) == {low_name}
    assert pipe.transformer.active_adapters() == [high_name] and pipe.transformer_2.active_adapters() == [low_name]


def test_expert_low_on_a_dense_model_is_refused(lora_settings):
    path = write_lora_file(lora_settings.loras_dir / "x.safetensors", "diffusers", tiny_dims("tiny-t2v", lora_settings))
    with pytest.raises(RequestError, match="expert 'low' needs a Wan 2.2 A14B"):
        T2VRequest(model="tiny-t2v", prompt="a fox", loras=[{"source": str(path), "expert": "low"}], **SIZE).prepare()


def test_a_1_3b_lora_on_a_14b_model_is_refused_naming_key_and_shapes(lora_settings):
    # only block 0 (a real 1.3B LoRA has 30 blocks; the shapes are what matter)
    path = write_lora_file(lora_settings.loras_dir / "my-1.3b-style.safetensors", "wan", WAN21_1_3B, rank=2, blocks=[0])
    record = catalog.get("wan2.1-t2v-14b")
    with pytest.raises(RequestError) as refused:
        loras.check(record, loras.normalize_specs([str(path)]), lora_settings)
    message = str(refused.value)
    assert "my-1.3b-style" in message and "Wan 2.1 T2V 14B" in message
    assert "blocks.0." in message and "1536" in message and "5120" in message


def test_mismatched_lora_refused_at_validation_and_nothing_written(engine, lora_settings):
    wrong = write_lora_file(lora_settings.loras_dir / "i2v-only.safetensors", "diffusers",
                            tiny_dims("tiny-i2v", lora_settings))
    # a LoRA trained for another width: the tiny transformer with 3 heads of 12 (36) instead of 2 (24)
    tiny = tiny_dims("tiny-t2v", lora_settings)
    write_lora_file(lora_settings.loras_dir / "wide.safetensors", "diffusers", dict(tiny, dim=36))
    with pytest.raises(RequestError) as refused:
        T2VRequest(model="tiny-t2v", prompt="a fox", loras=[{"source": "wide"}], **SIZE).prepare()
    assert str(refused.value).startswith("LoRA 'wide' does not fit Tiny T2V (random weights) (transformer): key ")
    assert re.search(r"key transformer\.blocks\.[01]\.[a-z0-9_.]+\.lora_[AB]\.weight has shape (4x36|36x4) but "
                     r"'blocks\.[01]\.[a-z0-9_.]+' (takes 24 inputs|gives 24 outputs)",
                     str(refused.value)), refused.value
    assert refused.value.field == "loras"
    assert wrong.is_file()
    assert not lora_settings.output_dir.exists() or not any(lora_settings.output_dir.rglob("*.mp4"))


@pytest.mark.parametrize("loras_value, message", [
    ([{"source": "no-such-lora"}], "LoRA 'no-such-lora' not found"),
    ([{"source": "x", "weight": "heavy"}], "weight must be a number"),
    ([{"source": "x", "expert": "middle"}], "expert must be high, low or both"),
    ("x.safetensors", "loras must be a list"),
])
def test_bad_lora_entries_get_specific_messages(lora_settings, loras_value, message):
    with pytest.raises(RequestError, match=message):
        T2VRequest(model="tiny-t2v", prompt="a fox", loras=loras_value, **SIZE).prepare()


def test_unknown_key_format_and_non_safetensors_are_refused(lora_settings):
    import torch
    from safetensors.torch import save_file

    folder = lora_settings.loras_dir
    folder.mkdir(parents=True)
    save_file({"unet.down_blocks.0.weight": torch.zeros(2, 2)}, str(folder / "sdxl.safetensors"))
    with pytest.raises(RequestError, match=r"unknown key format \(first key: unet.down_blocks.0.weight\)"):
        T2VRequest(model="tiny-t2v", prompt="a fox", loras=["sdxl"], **SIZE).prepare()
    (folder / "old.pt").write_bytes(b"not safe")
    with pytest.raises(RequestError, match="not a .safetensors file"):
        T2VRequest(model="tiny-t2v", prompt="a fox", loras=[str(folder / "old.pt")], **SIZE).prepare()


def test_cli_spec_parsing():
    assert loras.parse_cli_spec("style") == {"source": "style", "weight": 1.0, "expert": "both"}
    assert loras.parse_cli_spec("/a/b.safetensors:0.6") == {"source": "/a/b.safetensors", "weight": 0.6,
                                                            "expert": "both"}
    assert loras.parse_cli_spec("hf://o/r/f.safetensors:1.5:low") == {"source": "hf://o/r/f.safetensors", "weight": 1.5,
                                                                      "expert": "low"}


def test_listing_tells_layout_rank_trigger_words_and_fits(lora_settings):
    write_lora_file(lora_settings.loras_dir / "anime.safetensors", "kohya", tiny_dims("tiny-t2v", lora_settings),
                    rank=3, metadata={"modelspec.trigger_phrase": "anime style", "ss_base_model_version": "wan_tiny"})
    rows = {row["source"]: row for row in loras.list_loras(lora_settings)}
    anime = rows["anime.safetensors"]
    assert anime["layout"] == "kohya" and anime["rank"] == 3 and anime["trigger_words"] == "anime style"
    assert anime["base_model"] == "wan_tiny"
    assert "tiny-t2v" in anime["fits"] and "wan2.1-t2v-14b" not in anime["fits"]
    assert rows["causvid-t2v-14b"]["non_commercial"] and rows["causvid-t2v-14b"]["licence"] == "cc-by-nc-4.0"
    assert rows["lightx2v-t2v-14b"]["state"] == "not downloaded"
    fitting = [r["source"] for r in loras.list_loras(lora_settings) if "tiny-t2v" in r.get("fits", [])]
    assert "anime.safetensors" in fitting


def test_recipe_records_each_lora_with_its_sha256_and_reruns(engine, lora_settings):
    import hashlib

    path = write_lora_file(lora_settings.loras_dir / "style.safetensors", "diffusers",
                           tiny_dims("tiny-t2v", lora_settings))
    request = T2VRequest(model="tiny-t2v", prompt="a fox", loras=["style:0.8"], **SIZE).prepare()
    result = engine.generate(request)
    recipe = json.loads(result.recipe_path.read_text())
    recorded = recipe["preset"]["loras"][0]
    assert recorded["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert recorded["weight"] == 0.8 and recorded["file"] == "style.safetensors"
    again = request_from_dict(recipe["request"]).prepare()
    assert [lora.sha256 for lora in again.resolved_loras] == [recorded["sha256"]]


def test_cli_generate_with_preset_and_lora_and_the_loras_listing(lora_settings, capsys):
    from tests.conftest import run_cli_here

    write_lora_file(lora_settings.loras_dir / "style.safetensors", "kohya", tiny_dims("tiny-t2v-moe", lora_settings),
                    rank=2, metadata={"modelspec.trigger_phrase": "paper craft"})
    proc = run_cli_here(capsys, "generate", "--model", "tiny-t2v-moe", "--prompt", "a paper boat", "--preset", "fast",
                   "--lora", "style:0.5:low", "--size", "64x64", "--frames", "5", "--quiet")
    assert proc.returncode == 0, proc.stderr
    recipe = json.loads(Path(proc.stdout.strip()).with_suffix(".json").read_text())
    assert recipe["request"]["steps"] == 4 and recipe["request"]["guidance"] == 1.0
    assert [(lora["source"], lora["expert"], lora["weight"]) for lora in recipe["preset"]["loras"]] == [
        ("tiny-lightning-t2v-moe-high", "high", 1.0), ("tiny-lightning-t2v-moe-low", "low", 1.0), ("style", "low", 0.5)]

    refused = run_cli_here(capsys, "generate", "--model", "tiny-t2v", "--prompt", "a boat", "--lora", "missing-one")
    assert refused.returncode == 2 and "error: LoRA 'missing-one' not found" in refused.stderr
    assert "Traceback" not in refused.stderr

    listing = run_cli_here(capsys, "loras")
    assert listing.returncode == 0, listing.stderr
    line = next(row for row in listing.stdout.splitlines() if row.startswith("style.safetensors"))
    assert "kohya" in line and "tiny-t2v-moe" in line and "trigger: paper craft" in line
    assert "non-commercial" in next(row for row in listing.stdout.splitlines() if row.startswith("causvid-t2v-14b"))


def test_batch_csv_rows_carry_preset_and_loras_and_a_bad_row_refuses_the_file(lora_settings, tmp_path):
    from wan_studio.queue.batch import load_batch

    write_lora_file(lora_settings.loras_dir / "style.safetensors", "diffusers", tiny_dims("tiny-t2v", lora_settings))
    batch = tmp_path / "jobs.csv"
    batch.write_text("model,prompt,preset,loras,width,height,frames\n"
                     "tiny-t2v,a fox,fast,style:0.5,64,64,5\n"
                     "tiny-t2v,a boat,quality,,64,64,5\n")
    fast, quality = load_batch(batch, lora_settings)
    assert fast.steps == 4 and [(lora.source, lora.weight) for lora in fast.resolved_loras] == [
        ("tiny-lightning-t2v", 1.0), ("style", 0.5)]
    assert quality.steps == catalog.get("tiny-t2v").steps and quality.resolved_loras == []
    batch.write_text("model,prompt,loras\ntiny-t2v,a fox,style\ntiny-t2v,a boat,gone\n")
    with pytest.raises(RequestError, match="LoRA 'gone' not found"):
        load_batch(batch, lora_settings)


def test_hybrid_wan21_i2v_lora_fits_wan22_i2v_without_its_image_attention(lora_settings):
    # block 0 of a Wan 2.1 I2V 14B lightx2v LoRA, with its image attention (k_img, v_img)
    path = write_lora_file(lora_settings.loras_dir / "lightx2v-i2v-block0.safetensors", "lightx2v", WAN21_14B, rank=2,
                           blocks=[0], image_attention=True)
    fitted = loras.check(catalog.get("wan2.2-i2v-a14b"), loras.normalize_specs([str(path)]), lora_settings)
    assert fitted[0].targets(catalog.get("wan2.2-i2v-a14b")) == ["transformer", "transformer_2"]
    # on Wan 2.1 I2V the image attention is there, and its matrices are checked too
    assert loras.check(catalog.get("wan2.1-i2v-14b-480p"), loras.normalize_specs([str(path)]), lora_settings)


@pytest.mark.parametrize("layout, image_attention", [("lightx2v-extract", True), ("kjnodes-extract", False)])
def test_the_newer_distill_files_fit_the_a14b_experts(lora_settings, layout, image_attention):
    """Block 0 and the head of a LightX2V 1022 low-noise file (with the Wan 2.1 image attention its
    size shows) and of Kijai's 260412 extraction, at A14B's real sizes, pass the check on each expert."""
    path = write_lora_file(lora_settings.loras_dir / f"{layout}-block0.safetensors", layout, WAN21_14B, rank=2,
                           blocks=[0], image_attention=image_attention)
    record = catalog.get("wan2.2-i2v-a14b")
    for expert, targets in (("high", ["transformer"]), ("low", ["transformer_2"])):
        fitted = loras.check(record, loras.normalize_specs([{"source": str(path), "expert": expert}]), lora_settings)
        assert fitted[0].layout == "lightx2v" and fitted[0].targets(record) == targets
    smaller = write_lora_file(lora_settings.loras_dir / f"{layout}-1.3b.safetensors", layout, WAN21_1_3B, rank=2,
                              blocks=[0])
    with pytest.raises(RequestError, match="does not fit"):
        loras.check(record, loras.normalize_specs([str(smaller)]), lora_settings)


def test_fast_i2v_on_tiny_moe_loads_the_seko_pair(engine, lora_settings):
    from tests.media_fixtures import make_image
    from wan_studio.requests import request_types

    image = make_image(lora_settings.output_dir.parent / "first.png", size=(64, 64))
    request = request_types()["i2v"](model="tiny-i2v-moe", prompt="it moves", image=str(image), preset="fast",
                                     width=64, height=64, frames=5, seed=2).prepare()
    assert [lora.layout for lora in request.resolved_loras] == ["seko", "seko"]
    frames = frames_for(engine, request)
    assert frames.shape == (5, 64, 64, 3)
    pipe = engine.swap._active
    assert pipe.transformer.active_adapters() == [request.resolved_loras[0].adapter_name]
    assert pipe.transformer_2.active_adapters() == [request.resolved_loras[1].adapter_name]


def test_a_pipeline_without_lora_support_refuses_loras_before_the_run(monkeypatch, lora_settings):
    path = write_lora_file(lora_settings.loras_dir / "style.safetensors", "diffusers",
                           tiny_dims("tiny-t2v", lora_settings))
    record = catalog.get("tiny-t2v")
    monkeypatch.setitem(record.pipelines, "t2v", "OurOwnPipelineWithoutLoras")
    with pytest.raises(RequestError, match="runs OurOwnPipelineWithoutLoras, which cannot load LoRAs"):
        T2VRequest(model="tiny-t2v", prompt="a fox", loras=[str(path)], **SIZE).prepare()
    # no LoRA: runs as before
    assert T2VRequest(model="tiny-t2v", prompt="a fox", **SIZE).prepare().resolved_loras == []
