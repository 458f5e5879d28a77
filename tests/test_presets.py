"""Fast / Quality presets, table-driven against the published Lightning releases, and a Fast run on a Tiny MoE model."""

from __future__ import annotations

import json

import pytest

from wan_studio import catalog
from wan_studio.errors import RequestError
from wan_studio.loras import presets
from wan_studio.requests import T2VRequest, request_types

# (checkpoint, mode) -> the Fast LoRAs (lightx2v / Wan2.2-Lightning releases) with their expert,
# or None where Fast falls back
FAST_LORAS = {
    ("wan2.1-t2v-14b", "t2v"): [("lightx2v-t2v-14b", "both")],
    ("wan2.1-t2v-14b", "v2v"): [("lightx2v-t2v-14b", "both")],
    ("wan2.1-t2v-14b", "preview"): [("lightx2v-t2v-14b", "both")],
    ("wan2.1-i2v-14b-480p", "i2v"): [("lightx2v-i2v-14b", "both")],
    ("wan2.1-i2v-14b-720p", "i2v"): [("lightx2v-i2v-14b", "both")],
    ("wan2.1-flf2v-14b-720p", "flf2v"): [("lightx2v-i2v-14b", "both")],
    ("wan2.2-t2v-a14b", "t2v"): [("lightning-t2v-a14b-high", "high"), ("lightning-t2v-a14b-low", "low")],
    ("wan2.2-t2v-a14b", "preview"): [("lightning-t2v-a14b-high", "high"), ("lightning-t2v-a14b-low", "low")],
    ("wan2.2-i2v-a14b", "i2v"): [("lightning-i2v-a14b-high", "high"), ("lightning-i2v-a14b-low", "low")],
    ("tiny-t2v", "t2v"): [("tiny-lightning-t2v", "both")],
    ("tiny-t2v", "v2v"): [("tiny-lightning-t2v", "both")],
    ("tiny-t2v", "preview"): [("tiny-lightning-t2v", "both")],
    ("tiny-t2v-moe", "t2v"): [("tiny-lightning-t2v-moe-high", "high"), ("tiny-lightning-t2v-moe-low", "low")],
    ("tiny-t2v-moe", "preview"): [("tiny-lightning-t2v-moe-high", "high"), ("tiny-lightning-t2v-moe-low", "low")],
    ("tiny-i2v", "i2v"): [("tiny-lightning-i2v", "both")],
    ("tiny-flf2v", "flf2v"): [("tiny-lightning-i2v", "both")],
    ("tiny-i2v-moe", "i2v"): [("tiny-lightning-i2v-moe-high", "high"), ("tiny-lightning-i2v-moe-low", "low")],
}
# checkpoints whose Fast is a FastWan full checkpoint (used when it is on this machine)
FASTWAN = {"wan2.1-t2v-1.3b": "fastwan2.1-t2v-1.3b", "wan2.2-ti2v-5b": "fastwan2.2-ti2v-5b",
           "fastwan2.1-t2v-1.3b": "fastwan2.1-t2v-1.3b", "fastwan2.2-ti2v-5b": "fastwan2.2-ti2v-5b"}
REASONS = {"vace": "VACE Lightning LoRAs have not been trained", "animate": "no Lightning LoRA exists for Wan-Animate",
           "s2v": "no Lightning LoRA exists for Wan 2.2 S2V"}
ALL = [(c.id, mode) for c in catalog.checkpoints() for mode in c.modes]


@pytest.mark.parametrize("model_id, mode", ALL)
def test_quality_is_the_catalog_defaults_without_loras(model_id, mode):
    record = catalog.get(model_id)
    values, loras, messages = presets.resolve(record, mode, "quality")
    assert values["steps"] == record.steps and values["guidance"] == record.guidance
    assert values.get("guidance_2") == record.guidance_2
    # FastWan samples at its distilled timesteps (FastVideo's DMD stage), every other checkpoint with UniPC
    assert values["scheduler"] == ("dmd: 1000, 757, 522" if model_id.startswith("fastwan")
                                   else "UniPCMultistepScheduler")
    assert loras == [] and messages == []


@pytest.mark.parametrize("model_id, mode", ALL)
def test_fast_is_lightning_4_steps_cfg_1_or_falls_back_with_the_reason(model_id, mode, settings):
    record = catalog.get(model_id)
    resolution = presets.resolve(record, mode, "fast", settings=settings)
    values, loras, messages = resolution
    expected = FAST_LORAS.get((model_id, mode))
    if expected:
        assert values["steps"] == 4 and values["guidance"] == 1.0
        assert values.get("guidance_2") == (1.0 if record.is_moe else None)
        assert [(lora["source"], lora["expert"]) for lora in loras] == expected
        assert resolution.model == model_id
        if mode == "flf2v":
            assert "Empirical" in messages[0]
        return
    # no Lightning LoRA: Quality values, same checkpoint (FastWan is not downloaded here), and a message why
    assert loras == [] and resolution.model == model_id
    assert values["steps"] == record.steps and values["guidance"] == record.guidance
    assert len(messages) == 1 and messages[0].startswith(f"Lightning unavailable for {record.name} {mode.upper()}")
    assert f"Using the Quality preset ({record.steps} steps)" in messages[0]
    if mode in REASONS:
        assert REASONS[mode] in messages[0]
    if model_id in FASTWAN and mode in catalog.get(FASTWAN[model_id]).pipelines:
        assert "is not downloaded (python -m wan_studio download " + FASTWAN[model_id] in messages[0]


def test_every_fast_lora_names_a_known_file_with_rank_and_licence():
    table = presets.table()
    distills = [{mode: {"loras": names} for mode, names in per_mode.items()}
                for entry in table["distills"].values() for per_mode in entry["for"].values()]
    for per_mode in list(table["fast"].values()) + list(table["fast_hybrid"].values()) + distills:
        for entry in per_mode.values():
            for item in entry.get("loras", []):
                name = item if isinstance(item, str) else item["lora"]
                record = table["loras"][name]
                assert record["licence"] == "apache-2.0", name  # presets never use non-commercial files
                assert record.get("tiny") or (record["repo"] and record["file"].endswith(".safetensors")), name
    assert table["loras"]["lightning-t2v-a14b-high"]["rank"] == 128
    assert table["loras"]["lightning-t2v-a14b-low"]["rank"] == 64
    causvid = table["loras"]["causvid-t2v-14b"]
    assert causvid["licence"] == "cc-by-nc-4.0" and causvid["non_commercial"]


# the newer Wan 2.2 distills, as their releases publish them (LightX2V's configs/distill/wan22 and the
# Wan2.2-Lightning configs): 4 steps of flow Euler at shift 5, one pass (guidance 1) for both experts
DISTILLS = {
    "lightx2v-1022": ("wan2.2-i2v-a14b", "i2v", "configs/distill/wan22/wan_moe_i2v_distill_with_lora.json",
                      ["wan2.2_i2v_A14b_high_noise_lora_rank64_lightx2v_4step_1022.safetensors",
                       "wan2.2_i2v_A14b_low_noise_lora_rank64_lightx2v_4step_1022.safetensors"]),
    "lightx2v-720p": ("wan2.2-i2v-a14b", "i2v", "configs/distill/wan22/wan_moe_i2v_distill_with_lora.json",
                      ["LoRAs/Wan22_Lightx2v/Wan_2_2_I2V_A14B_HIGH_lightx2v_4step_lora_260412_rank_64_fp16.safetensors",
                       "LoRAs/Wan22_Lightx2v/Wan_2_2_I2V_A14B_LOW_lightx2v_4step_lora_260412_rank_64_fp16.safetensors"]),
    "lightx2v-1217": ("wan2.2-t2v-a14b", "t2v", "configs/distill/wan22/wan_moe_t2v_distill_lora.json",
                      ["wan2.2_t2v_A14b_high_noise_lora_rank64_lightx2v_4step_1217.safetensors",
                       "wan2.2_t2v_A14b_low_noise_lora_rank64_lightx2v_4step_1217.safetensors"]),
}


@pytest.mark.parametrize("name", sorted(DISTILLS))
def test_each_distill_preset_runs_at_its_releases_published_values(name):
    model_id, mode, config, files = DISTILLS[name]
    resolution = presets.resolve(model_id, mode, name)
    assert resolution.values == {"steps": 4, "guidance": 1.0, "guidance_2": 1.0, "flow_shift": 5.0, "sampler": "euler",
                                 "scheduler": "FlowMatchEulerDiscreteScheduler"}
    assert config in resolution.source and "sample_shift 5.0" in resolution.source
    assert [(presets.lora_record(lora["source"])["file"], lora["expert"]) for lora in resolution.loras] == \
        [(files[0], "high"), (files[1], "low")]
    with pytest.raises(RequestError, match=f"The {name} preset is for Wan 2.2 .* offers: quality"):
        presets.resolve("wan2.1-t2v-14b", "t2v", name)
    # the request takes the preset's shift (typed values still win) and the recipe records the source
    assert presets.resolve(model_id, mode, name, {"flow_shift": 3.0}).overrides == {"flow_shift": 3.0}


def test_a_distill_preset_samples_at_the_distilled_timesteps_two_per_expert(engine, settings, monkeypatch):
    """lightx2v-1022 on the Tiny I2V MoE twin: its stand-in pair (the real files' lightx2v layout), four
    Euler steps at 1000, 937.5, 833.3 and 625 (LightX2V's denoising_step_list 1000, 750, 500, 250 bent by
    shift 5, the timesteps it was distilled at), the first two by the high-noise expert."""
    import diffusers

    from tests.media_fixtures import make_image

    timesteps = []
    forward = diffusers.WanTransformer3DModel.forward

    def spy(module, *args, **kwargs):
        timesteps.append((round(float(kwargs["timestep"].flatten()[0]), 1), id(module)))
        return forward(module, *args, **kwargs)

    monkeypatch.setattr(diffusers.WanTransformer3DModel, "forward", spy)
    image = make_image(settings.output_dir.parent / "start.png", (64, 64))
    request = request_types()["i2v"](model="tiny-i2v-moe", prompt="it moves", image=str(image), preset="lightx2v-1022",
                                     width=64, height=64, frames=5, seed=3).prepare()
    assert [lora.layout for lora in request.resolved_loras] == ["lightx2v", "lightx2v"]
    result = engine.generate(request)
    pipe = engine.swap._active
    by_expert = {which: sorted({t for t, m in timesteps if m == id(model)}, reverse=True)
                 for which, model in (("high", pipe.transformer), ("low", pipe.transformer_2))}
    assert by_expert == {"high": [1000.0, 937.5], "low": [833.3, 625.0]}
    assert pipe.transformer.active_adapters() == [request.resolved_loras[0].adapter_name]
    recipe = json.loads(result.recipe_path.read_text())
    assert recipe["preset"]["name"] == "lightx2v-1022" and recipe["request"]["flow_shift"] == 5.0
    assert "LightX2V" in recipe["preset"]["source"]


def test_fastwan_serves_fast_when_downloaded(settings):
    folder = settings.models_dir / "FastWan2.1-T2V-1.3B-Diffusers"
    folder.mkdir(parents=True)
    (folder / "model_index.json").write_text("{}")
    resolution = presets.resolve("wan2.1-t2v-1.3b", "t2v", "fast", settings=settings)
    assert resolution.model == "fastwan2.1-t2v-1.3b" and resolution.values["steps"] == 3
    assert resolution.values["guidance"] == 1.0 and resolution.loras == []
    assert "FastWan2.1 T2V 1.3B" in resolution.messages[0]


def test_user_values_win_and_are_recorded_as_overrides():
    values, _, _ = resolution = presets.resolve("wan2.2-t2v-a14b", "t2v", "fast", {"steps": 6, "guidance": 1.0})
    assert values["steps"] == 6 and values["guidance"] == 1.0 and values["guidance_2"] == 1.0
    assert resolution.overrides == {"steps": 6}  # a typed value equal to the preset's is no override


def test_hybrid_only_where_defined_and_unknown_preset_refused():
    values, loras, _ = presets.resolve("wan2.2-i2v-a14b", "i2v", "fast-hybrid")
    assert loras == [{"source": "lightx2v-i2v-14b", "weight": 1.0, "expert": "both"}] and values["steps"] == 4
    with pytest.raises(RequestError, match="fast-hybrid preset exists only for Wan 2.2 I2V"):
        presets.resolve("wan2.1-t2v-14b", "t2v", "fast-hybrid")
    with pytest.raises(RequestError, match="Unknown preset 'turbo'; choose one of: fast, quality, fast-hybrid, "
                                           "lightx2v-1022, lightx2v-720p, lightx2v-1217"):
        T2VRequest(model="tiny-t2v", prompt="a fox", preset="turbo")


def test_list_presets_for_the_radio():
    vace = {p["name"]: p for p in presets.list_presets("wan2.1-vace-14b", "vace")}
    assert not vace["fast"]["available"] and "VACE" in vace["fast"]["note"]
    i2v = [p["name"] for p in presets.list_presets("wan2.2-i2v-a14b", "i2v")]
    assert i2v == ["quality", "fast", "fast-hybrid", "lightx2v-1022", "lightx2v-720p"]
    t2v = [p["name"] for p in presets.list_presets("wan2.2-t2v-a14b", "t2v")]
    assert t2v == ["quality", "fast", "lightx2v-1217"]


def test_fast_on_tiny_moe_runs_4_steps_at_cfg_1_with_both_adapters_active(engine, monkeypatch):
    import diffusers

    seen = {}
    real_call = diffusers.WanPipeline.__call__

    def spy(pipe, *args, **kwargs):
        seen.update(steps=kwargs["num_inference_steps"], guidance=kwargs["guidance_scale"],
                    guidance_2=kwargs.get("guidance_scale_2"),
                    high=pipe.transformer.active_adapters(), low=pipe.transformer_2.active_adapters(),
                    scheduler=type(pipe.scheduler).__name__)
        return real_call(pipe, *args, **kwargs)

    monkeypatch.setattr(diffusers.WanPipeline, "__call__", spy)
    request = T2VRequest(model="tiny-t2v-moe", prompt="a fox", preset="fast", width=64, height=64, frames=5,
                         seed=1).prepare()
    high, low = request.resolved_loras
    result = engine.generate(request)
    # Wan2.2-Lightning's own sampling: flow Euler at shift 5, not the checkpoint's UniPC at 12
    assert seen == {"steps": 4, "guidance": 1.0, "guidance_2": 1.0, "high": [high.adapter_name],
                    "low": [low.adapter_name], "scheduler": "EvenEuler"}
    assert request.flow_shift == 5.0 and request.sampler == "euler"
    recipe = json.loads(result.recipe_path.read_text())
    assert recipe["preset"]["name"] == "fast" and recipe["preset"]["overrides"] == {}
    assert recipe["preset"]["values"]["sampler"] == "euler" and "Wan2.2-Lightning" in recipe["preset"]["source"]
    assert [lora["expert"] for lora in recipe["preset"]["loras"]] == ["high", "low"]
    assert all(len(lora["sha256"]) == 64 for lora in recipe["preset"]["loras"])

    # Quality on the same pipeline: adapters off, no reload, catalog values
    loads = engine.swap.loads
    quality = T2VRequest(model="tiny-t2v-moe", prompt="a fox", preset="quality", width=64, height=64, frames=5, seed=1,
                         steps=3).prepare()
    quality_result = engine.generate(quality)
    assert engine.swap.loads == loads
    assert seen["steps"] == 3 and seen["guidance"] == 4.0 and seen["guidance_2"] == 3.0
    assert seen["scheduler"] == "UniPCMultistepScheduler" and quality.flow_shift == 12.0  # the checkpoint's own
    pipe = engine.swap._active
    assert not pipe.transformer._hf_peft_config_loaded or all(
        not layer.merged and layer.disable_adapters for layer in _lora_layers(pipe.transformer))
    assert json.loads(quality_result.recipe_path.read_text())["preset"]["overrides"] == {"steps": 3}


def test_swapping_checkpoint_drops_its_loras(engine):
    engine.generate(T2VRequest(model="tiny-t2v", prompt="a fox", preset="fast", width=64, height=64, frames=5, seed=1))
    assert engine.swap._active.transformer.peft_config
    engine.generate(T2VRequest(model="tiny-t2v-moe", prompt="a fox", width=64, height=64, frames=5, seed=1))
    engine.generate(T2VRequest(model="tiny-t2v", prompt="a fox", width=64, height=64, frames=5, seed=1))
    assert not getattr(engine.swap._active.transformer, "peft_config", None)


def test_fast_fallback_message_reaches_the_recipe(engine):
    cls = request_types()["t2v"]
    request = cls(model="tiny-ti2v", prompt="a fox", preset="fast", width=64, height=64, frames=5, seed=1).prepare()
    assert request.steps == 4 and request.guidance == 5.0  # tiny-ti2v's Quality values
    assert "Lightning unavailable for Tiny" in request.preset_messages[0]
    recipe = json.loads(engine.generate(request).recipe_path.read_text())
    assert recipe["preset"]["messages"] == request.preset_messages


def _lora_layers(module):
    from peft.tuners.lora import LoraLayer

    return [m for m in module.modules() if isinstance(m, LoraLayer)]


def test_api_takes_preset_and_loras_in_options_and_enhances(running_app, settings):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    from tests.lora_fixtures import tiny_dims, write_lora_file

    write_lora_file(running_app.loras / "style.safetensors", "wan", tiny_dims("tiny-t2v", settings), rank=2)
    earlier = set(running_app.outputs.glob("*.mp4"))  # other modules' jobs on the worker's app
    client = Client(running_app.url, verbose=False)
    video, recipe = client.predict("tiny-t2v", "a paper boat", {
        "preset": "fast", "loras": [{"source": "style.safetensors", "weight": 0.7}], "width": 64, "height": 64,
        "frames": 5}, api_name="/t2v")
    assert recipe["request"]["steps"] == 4 and recipe["preset"]["name"] == "fast"
    assert [lora["source"] for lora in recipe["preset"]["loras"]] == ["tiny-lightning-t2v", "style.safetensors"]
    with pytest.raises(AppError, match="over the API a LoRA is named"):
        client.predict("tiny-t2v", "x", {"loras": [{"source": "/etc/ssl/x.safetensors"}]}, api_name="/t2v")
    with pytest.raises(AppError, match="LoRA 'nope' not found"):
        client.predict("tiny-t2v", "x", {"loras": ["nope"]}, api_name="/t2v")
    enhanced = client.predict("a fox", "i2v", "rules", api_name="/enhance")
    assert enhanced["method"] == "rules" and enhanced["prompt"].startswith("a fox. ")
    with pytest.raises(AppError, match="The prompt is empty"):
        client.predict("", "t2v", "rules", api_name="/enhance")
    assert len(set(running_app.outputs.glob("*.mp4")) - earlier) == 1  # refused jobs wrote nothing
