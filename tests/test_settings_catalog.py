"""Settings precedence, the catalog as data, and the light backend probe."""

from __future__ import annotations

import json

import pytest

from wan_studio import catalog
from wan_studio.backend import Backend, probe_light
from wan_studio.settings import load_settings

BYTES_PER_PARAM = {"float32": 4, "bfloat16": 2}


def footprint_gb(record, dtype: str = "bfloat16") -> dict[str, float]:
    """Weight bytes of each component of a record in GB, from its parameter counts (own and shared;
    VAE always fp32)."""
    per = BYTES_PER_PARAM[dtype]
    sizes = {name: params * per for name, params in record.components.items()}
    for shared_id in dict.fromkeys(record.shared.values()):
        component = catalog.shared_component(shared_id)
        sizes[shared_id] = component.params_b * (4 if "vae" in component.components else per)
    return {k: round(v, 2) for k, v in sizes.items()}


def mode_matrix() -> dict[str, dict[str, list[str]]]:
    """mode -> generation -> checkpoint ids, derived from the records."""
    matrix: dict[str, dict[str, list[str]]] = {m: {g: [] for g in catalog.GENERATIONS} for m in catalog.modes()}
    for c in catalog.checkpoints():
        for mode in c.modes:
            matrix[mode][c.generation].append(c.id)
    return matrix


def test_flag_beats_environment_beats_config(tmp_path, monkeypatch):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"output_dir": "from-config", "models_dir": "/abs/models", "port": 9000}))
    monkeypatch.setenv("WAN_STUDIO_CONFIG", str(config))
    monkeypatch.delenv("WAN_STUDIO_OUTPUT_DIR", raising=False)
    monkeypatch.delenv("WAN_STUDIO_MODELS_DIR", raising=False)
    s = load_settings()
    assert s.output_dir == tmp_path / "from-config" and str(s.models_dir) == "/abs/models" and s.port == 9000
    monkeypatch.setenv("WAN_STUDIO_OUTPUT_DIR", str(tmp_path / "from-env"))
    assert load_settings().output_dir == tmp_path / "from-env"
    assert load_settings(output_dir=str(tmp_path / "from-flag")).output_dir == tmp_path / "from-flag"
    assert load_settings(port=7000).port == 7000


def test_every_open_checkpoint_of_the_brief_is_in_the_catalog():
    real = {c.repo_id for c in catalog.checkpoints() if not c.is_tiny}
    assert real == {
        "Wan-AI/Wan2.1-T2V-1.3B-Diffusers", "Wan-AI/Wan2.1-T2V-14B-Diffusers", "Wan-AI/Wan2.1-I2V-14B-480P-Diffusers",
        "Wan-AI/Wan2.1-I2V-14B-720P-Diffusers", "Wan-AI/Wan2.1-FLF2V-14B-720P-diffusers",
        "Wan-AI/Wan2.1-VACE-1.3B-diffusers", "Wan-AI/Wan2.1-VACE-14B-diffusers", "Wan-AI/Wan2.2-TI2V-5B-Diffusers",
        "Wan-AI/Wan2.2-T2V-A14B-Diffusers", "Wan-AI/Wan2.2-I2V-A14B-Diffusers", "Wan-AI/Wan2.2-S2V-14B",
        "Wan-AI/Wan2.2-Animate-14B-Diffusers",
        # FastWan full distilled checkpoints serve the Fast preset where no Lightning LoRA exists
        "FastVideo/FastWan2.1-T2V-1.3B-Diffusers", "FastVideo/FastWan2.2-TI2V-5B-FullAttn-Diffusers",
        # the rest of the Wan 2.2 family: Animate-2 (base and distilled) and VACE-Fun A14B's diffusers conversion
        "Wan-AI/Wan2.2-Animate-2-14B-Diffusers", "Wan-AI/Wan2.2-Animate-2-14B-Distilled-Diffusers",
        "linoyts/Wan2.2-VACE-Fun-14B-diffusers",
    }
    assert {s.generation for s in catalog.api_only_slots()} == {"2.5", "2.6", "2.7"}
    assert not any(c.generation in ("2.5", "2.6", "2.7") for c in catalog.checkpoints())


def test_records_are_self_consistent():
    for c in catalog.checkpoints():
        assert c.frames_min <= c.frames_default <= c.frames_max, c.id
        if c.frame_rule == "4k+1":
            assert (c.frames_default - 1) % 4 == 0, c.id
        assert all(w % c.spatial_granularity == 0 and h % c.spatial_granularity == 0 for w, h in c.sizes), c.id
        assert c.is_moe == (c.boundary_ratio is not None) == (c.guidance_2 is not None), c.id
        assert all(shared in ("text_encoder", "tokenizer", "vae", "image_encoder", "image_processor")
                   for shared in c.shared), c.id


# Published sizes. A transformer named "14B" has about 14e9 parameters, 2 bytes each in bf16; the names
# round down (the 1.3B counts 1.42e9, I2V's image cross-attention adds about 17%), so 0.95x to 1.2x.
NAMED_BILLIONS = {
    "wan2.1-t2v-1.3b": 1.3, "fastwan2.1-t2v-1.3b": 1.3, "wan2.2-ti2v-5b": 5, "fastwan2.2-ti2v-5b": 5,
    "wan2.1-t2v-14b": 14, "wan2.1-i2v-14b-480p": 14, "wan2.1-i2v-14b-720p": 14, "wan2.1-flf2v-14b-720p": 14,
    "wan2.2-t2v-a14b": 14, "wan2.2-i2v-a14b": 14,  # A14B: 14B per expert
    "wan2.2-s2v-14b": 14, "wan2.2-animate-14b": 14, "wan2.2-animate-2-14b": 14, "wan2.2-animate-2-14b-distilled": 14,
}
# the shared files as Wan-AI publishes them: umt5-xxl-enc-bf16 11.36 GB, Wan2.1_VAE.pth 508 MB (fp32),
# Wan2.2_VAE.pth 2.82 GB (fp32)
SHARED_GB = {"umt5-xxl": 11.36, "wan2.1-vae": 0.508, "wan2.2-vae": 2.82}


def test_weight_sizes_match_the_published_models():
    for model, billions in NAMED_BILLIONS.items():
        sizes = footprint_gb(catalog.get(model), "bfloat16")
        transformers = [sizes[key] for key in ("transformer", "transformer_2") if key in sizes]
        assert len(transformers) == (2 if "a14b" in model else 1), model
        for gb in transformers:
            assert 0.95 * 2 * billions <= gb <= 1.2 * 2 * billions, (model, gb)
        for shared, published in SHARED_GB.items():
            if shared in sizes:
                assert sizes[shared] == pytest.approx(published, rel=0.03), (model, shared)
    assert footprint_gb(catalog.get("wan2.1-t2v-1.3b"), "float32")["transformer"] == pytest.approx(5.68, rel=0.02)
    # VACE is its base model plus control blocks (no count of its own is published): bigger than the base
    for vace, base in (("wan2.1-vace-1.3b", "wan2.1-t2v-1.3b"), ("wan2.1-vace-14b", "wan2.1-t2v-14b")):
        assert footprint_gb(catalog.get(vace))["transformer"] > footprint_gb(catalog.get(base))["transformer"]
    # VACE-Fun A14B: each expert is Wan2.1-VACE-14B's layout; its converted repo's transformer folder is 34.7 GB
    fun = footprint_gb(catalog.get("wan2.2-vace-fun-a14b"), "bfloat16")
    assert fun["transformer"] == fun["transformer_2"] == pytest.approx(34.7, rel=0.01)
    assert set(NAMED_BILLIONS) | {"wan2.1-vace-1.3b", "wan2.1-vace-14b", "wan2.2-vace-fun-a14b"} == {
        c.id for c in catalog.checkpoints() if not c.is_tiny}


def test_mode_matrix_is_derived_from_records():
    matrix = mode_matrix()
    assert matrix["t2v"]["2.2"] == ["wan2.2-ti2v-5b", "wan2.2-t2v-a14b", "fastwan2.2-ti2v-5b"]
    assert matrix["vace"]["2.2"] == ["wan2.2-vace-fun-a14b"]
    assert matrix["vace"]["2.1"] == ["wan2.1-vace-1.3b", "wan2.1-vace-14b"]
    assert matrix["s2v"]["2.2"] == ["wan2.2-s2v-14b"] and matrix["s2v"]["2.1"] == []
    assert matrix["flf2v"]["2.1"] == ["wan2.1-flf2v-14b-720p"]
    for mode in ("t2v", "i2v", "flf2v", "v2v", "vace", "ti2v", "animate"):
        assert matrix[mode]["tiny"], f"no Tiny model for {mode}"


def test_footprints_use_fp32_for_the_vae():
    fp = footprint_gb(catalog.get("wan2.2-t2v-a14b"), "bfloat16")
    assert fp["transformer"] == fp["transformer_2"] == round(14.29 * 2, 2)
    assert fp["wan2.1-vae"] == round(0.127 * 4, 2)


def test_backend_dtypes_follow_the_brief():
    assert Backend("cuda", "cuda", "RTX 4080", bf16=True).transformer_dtype == "bfloat16"
    assert Backend("mps", "mps", "M3").transformer_dtype == "float16"
    assert Backend("cpu", "cpu", "x86").transformer_dtype == "float32"
    assert all(Backend(k, k, "x").vae_dtype == "float32" for k in ("cuda", "mps", "cpu"))


def test_light_probe_does_not_import_torch_here():
    import subprocess
    import sys

    from tests.conftest import ROOT

    code = ("import sys; from wan_studio.backend import probe_light; b = probe_light(); "
            "print(b.kind, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.split()[1] == "False"
    assert out.split()[0] == probe_light().kind


def test_a_memory_limit_caps_the_plan_and_a_wrong_one_is_named(settings, monkeypatch, capsys):
    import subprocess
    import sys

    from tests.conftest import ROOT
    from wan_studio.cli import main as cli_main

    plan = ["plan", "--model", "tiny-t2v", "--size", "64x64", "--frames", "9", "--json"]
    monkeypatch.setenv("WAN_STUDIO_MEMORY_LIMIT_GB", "1")
    assert cli_main(plan) == 1  # 1 GiB leaves nothing after the runtime's own share
    assert "nothing fits: " in capsys.readouterr().out
    monkeypatch.setenv("WAN_STUDIO_MEMORY_LIMIT_GB", "3")
    assert cli_main(plan) == 0
    assert '"plan": "max-speed"' in capsys.readouterr().out
    monkeypatch.setenv("WAN_STUDIO_MEMORY_LIMIT_GB", "lots")
    assert cli_main(plan) == 2
    assert "error: memory_limit_gb must be a number of GiB (0: no limit); got 'lots'." in capsys.readouterr().err
    started = subprocess.run([sys.executable, "app.py", "--memory-limit", "-2", "--port", "0"], cwd=ROOT,
                             capture_output=True, text=True, timeout=120)
    assert started.returncode != 0 and "error: memory_limit_gb must be a number of GiB (0: no limit); got -2.0." \
        in started.stderr
