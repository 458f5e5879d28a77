"""Every real checkpoint's sampling defaults against the values its makers publish.

Wan 2.2: wan22's own wan/configs/*.py (read with ast: they import torch and easydict).
FastWan: FastVideo 0.2.1's presets, pipeline configs and registry, read as data from the wheel
that scripts/fetch_test_data.py unpacks. Wan 2.1: diffusers' pipeline __call__ defaults and the
examples in its pipeline docstrings. Where the catalog chooses differently on purpose it says so
under "choices", and the test holds the chosen value.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import re
from pathlib import Path

import pytest

from wan_studio import catalog

ROOT = Path(__file__).resolve().parent.parent
FASTVIDEO = ROOT / ".cache" / "reference" / "fastvideo"
REAL = [c.id for c in catalog.checkpoints() if not c.is_tiny]


# -- reading the references ---------------------------------------------------------------------

def _number(node):
    """A literal, or a product of literals (MAX_AREA_CONFIGS writes 720 * 1280)."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        return _number(node.left) * _number(node.right)
    return ast.literal_eval(node)


def _wan_dir() -> Path:
    return Path(importlib.util.find_spec("wan").submodule_search_locations[0])  # found, not imported


def _wan22_config(module: str) -> dict:
    """`name.attr = literal` assignments of a wan/configs module, after its `update(wan_shared_cfg)`."""
    values: dict = {}
    for node in ast.parse((_wan_dir() / "configs" / f"{module}.py").read_text()).body:
        if (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
                and getattr(node.value.func, "attr", "") == "update"):
            values.update(_wan22_config("shared_config"))
        elif isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Attribute):
            try:
                values[node.targets[0].attr] = _number(node.value)
            except ValueError:  # torch dtypes, EasyDict(...)
                pass
    return values


def _wan22_tables() -> dict:
    """configs/__init__.py: task -> config module, SUPPORTED_SIZES, MAX_AREA_CONFIGS."""
    tree = ast.parse((_wan_dir() / "configs" / "__init__.py").read_text())
    modules = {alias.asname or alias.name: node.module.lstrip(".") for node in tree.body
               if isinstance(node, ast.ImportFrom) for alias in node.names}
    tables = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict):
            keys = [k.value for k in node.value.keys]
            if node.targets[0].id == "WAN_CONFIGS":
                tables["modules"] = {k: modules[v.id] for k, v in zip(keys, node.value.values)}
            else:
                tables[node.targets[0].id] = {k: _number(v) for k, v in zip(keys, node.value.values)}
    return tables


def _signature_defaults(module: str, cls: str, method: str = "generate") -> dict:
    tree = ast.parse((_wan_dir() / f"{module}.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == cls:
            fn = next(f for f in node.body if isinstance(f, ast.FunctionDef) and f.name == method)
            args = fn.args.args[-len(fn.args.defaults):]
            found = {}
            for a, d in zip(args, fn.args.defaults):
                try:
                    found[a.arg] = _number(d)
                except ValueError:  # a default that is a name
                    pass
            return found
    raise AssertionError(f"{cls}.{method} not found in wan/{module}.py")


def _fastvideo(relative: str) -> ast.Module:
    path = FASTVIDEO / relative
    if not path.exists():
        pytest.fail(f"FastVideo's published settings are missing ({path}). Fetch the test data with "
                    "`make test` or `python scripts/fetch_test_data.py`.", pytrace=False)
    return ast.parse(path.read_text())


def _fastvideo_presets() -> dict[str, dict]:
    found = {}
    for node in ast.walk(_fastvideo("pipelines/basic/wan/presets.py")):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "InferencePreset":
            kw = {k.arg: k.value for k in node.keywords}
            defaults = {k.value: ast.literal_eval(v) for k, v in zip(kw["defaults"].keys, kw["defaults"].values)
                        if isinstance(v, ast.Constant)}
            found[kw["name"].value] = defaults
    return found


def _fastvideo_pipeline_configs() -> dict[str, dict]:
    """Class-level defaults of configs/pipelines/wan.py, inherited down the file's own classes."""
    classes = {}
    for node in _fastvideo("configs/pipelines/wan.py").body:
        if not isinstance(node, ast.ClassDef):
            continue
        values = {}
        for base in node.bases:
            values.update(classes.get(getattr(base, "id", ""), {}))
        for item in node.body:
            if isinstance(item, ast.AnnAssign) and item.value is not None:
                value = item.value
                if isinstance(value, ast.Call) and value.keywords and isinstance(value.keywords[0].value, ast.Lambda):
                    value = value.keywords[0].value.body  # field(default_factory=lambda: [...])
                try:
                    values[item.target.id] = ast.literal_eval(value)
                except ValueError:
                    pass
        classes[node.name] = values
    return classes


def _fastvideo_registrations() -> dict[str, dict]:
    """registry.py: HF repo -> pipeline_config_cls and default_preset."""
    found = {}
    for node in ast.walk(_fastvideo("registry.py")):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "register_configs":
            kw = {k.arg: k.value for k in node.keywords}
            if "hf_model_paths" not in kw:
                continue
            entry = {"pipeline_config": getattr(kw.get("pipeline_config_cls"), "id", None),
                     "preset": getattr(kw.get("default_preset"), "value", None)}
            for path in kw["hf_model_paths"].elts:
                found[path.value] = entry
    return found


def _diffusers_reference(pipeline: str) -> dict:
    """__call__ defaults plus what the class's docs example passes."""
    import diffusers

    cls = getattr(diffusers, pipeline)
    found = {k: p.default for k, p in inspect.signature(cls.__call__).parameters.items()
             if p.default is not inspect.Parameter.empty}
    doc = importlib.import_module(cls.__module__).EXAMPLE_DOC_STRING
    for name, pattern in (("example_guidance", r"guidance_scale=([\d.]+)"), ("example_frames", r"num_frames=(\d+)"),
                          ("example_fps", r"fps=(\d+)"), ("example_height", r"height=(\d+)"),
                          ("example_width", r"width=(\d+)")):
        match = re.search(pattern, doc)
        found[name] = float(match.group(1)) if match else None
    rule = re.search(r"# ([\d.]+) for 720P, ([\d.]+) for 480P", doc)
    found["shift_rule"] = {"720p": float(rule.group(1)), "480p": float(rule.group(2))} if rule else None
    found["example_scheduler"] = "UniPCMultistepScheduler" if "UniPCMultistepScheduler" in doc else None
    area = re.search(r"max_area = (\d+) \* (\d+)", doc)
    found["example_area"] = int(area.group(1)) * int(area.group(2)) if area else None
    return found


def _size(text: str) -> tuple[int, int]:  # wan22 writes width*height
    w, h = text.split("*")
    return int(w), int(h)


# -- the comparisons ----------------------------------------------------------------------------

def test_every_real_checkpoint_cites_a_checked_source():
    assert len(REAL) >= 14
    for model_id in REAL:
        source = catalog.raw_record(model_id).get("source", {})
        assert source.get("from") in ("wan22", "fastvideo", "diffusers", "videox-fun", "diffusers-modular"), \
            f"{model_id} cites no source"
        assert source.get("cites"), model_id


@pytest.mark.parametrize("model_id", [m for m in REAL if catalog.raw_record(m)["source"]["from"] == "wan22"])
def test_wan22_checkpoints_match_upstream_configs(model_id):
    record, raw = catalog.get(model_id), catalog.raw_record(model_id)
    task, choices = raw["source"]["config"], raw.get("choices", {})
    tables = _wan22_tables()
    cfg = _wan22_config(tables["modules"][task])
    assert record.steps == cfg["sample_steps"]
    scale = cfg["sample_guide_scale"]
    if isinstance(scale, tuple):  # (low noise, high noise); diffusers: guidance_scale -> transformer (high noise)
        low_noise, high_noise = scale
        assert (record.guidance, record.guidance_2) == (high_noise, low_noise), model_id
        assert record.boundary_ratio == cfg["boundary"]
    else:
        assert (record.guidance, record.guidance_2, record.boundary_ratio) == (scale, None, None)
    assert set(record.flow_shift.values()) == {cfg["sample_shift"]}, model_id
    assert record.fps == cfg["sample_fps"]
    upstream_sizes = {_size(s) for s in tables["SUPPORTED_SIZES"][task]}
    if task == "s2v-14B":  # upstream keeps the reference image's aspect within an area
        assert record.frames_default == _signature_defaults("speech2video", "WanS2V")["infer_frames"]
        areas = raw["s2v"]["areas"]
        assert areas == {"480p": tables["MAX_AREA_CONFIGS"]["832*480"], "720p": tables["MAX_AREA_CONFIGS"]["1024*704"],
                         "720p-full": tables["MAX_AREA_CONFIGS"]["1280*720"]}
        # upstream's largest supported area is our largest bucket, and every size offered fits within it
        assert areas["720p-full"] == max(tables["MAX_AREA_CONFIGS"][s] for s in tables["SUPPORTED_SIZES"][task])
        assert all(w * h <= areas["720p-full"] and w % 64 == h % 64 == 0 for w, h in record.sizes)
        assert max(w * h for w, h in record.sizes) > areas["720p"]
        assert "sizes" in choices
    else:
        assert record.frames_default == cfg["frame_num"]
        assert set(record.sizes) == upstream_sizes and record.default_size in upstream_sizes
    solver_of = {"t2v-A14B": ("text2video", "WanT2V"), "i2v-A14B": ("image2video", "WanI2V"),
                 "ti2v-5B": ("textimage2video", "WanTI2V"), "s2v-14B": ("speech2video", "WanS2V"),
                 "animate-14B": ("animate", "WanAnimate")}[task]
    solver = _signature_defaults(*solver_of)["sample_solver"]
    assert record.scheduler == "unipc"
    if solver != "unipc":  # Animate: upstream's generate() defaults to dpm++
        assert (task, solver) == ("animate-14B", "dpm++") and "scheduler" in choices


def test_a14b_experts_get_upstream_guidance_in_the_diffusers_order():
    """wan_t2v_A14B.py: sample_guide_scale = (3.0, 4.0), (low noise, high noise)."""
    t2v = catalog.get("wan2.2-t2v-a14b")
    assert (t2v.guidance, t2v.guidance_2) == (4.0, 3.0)  # transformer (high noise), transformer_2 (low noise)
    i2v = catalog.get("wan2.2-i2v-a14b")
    assert (i2v.guidance, i2v.guidance_2) == (3.5, 3.5)
    fastvideo = _fastvideo_presets()["wan_2_2_t2v_a14b"]  # a second publisher, in diffusers' names
    assert (fastvideo["guidance_scale"], fastvideo["guidance_scale_2"]) == (t2v.guidance, t2v.guidance_2)


def test_dry_run_shows_each_expert_at_its_guidance(tmp_path):
    from wan_studio.requests import T2VRequest
    from wan_studio.runtime.dry_run import prepared_summary
    from wan_studio.settings import Settings

    summary = prepared_summary(T2VRequest(model="wan2.2-t2v-a14b", prompt="a city at night"),
                               Settings(output_dir=tmp_path / "out", models_dir=tmp_path / "models",
                                        tiny_models_dir=tmp_path / "tiny"))
    assert summary["experts"]["high_noise"]["guidance"] == 4.0
    assert summary["experts"]["low_noise"]["guidance"] == 3.0
    assert (summary["guidance"], summary["guidance_2"]) == (4.0, 3.0)


@pytest.mark.parametrize("model_id", [m for m in REAL if catalog.raw_record(m)["source"]["from"] == "fastvideo"])
def test_fastwan_runs_at_its_maintainers_settings(model_id):
    record, raw = catalog.get(model_id), catalog.raw_record(model_id)
    registered = _fastvideo_registrations()[record.repo_id]
    assert registered == {"pipeline_config": raw["source"]["pipeline_config"], "preset": raw["source"]["preset"]}
    preset = _fastvideo_presets()[registered["preset"]]
    config = _fastvideo_pipeline_configs()[registered["pipeline_config"]]
    assert record.default_size == (preset["width"], preset["height"])
    assert record.frames_default == preset["num_frames"] and record.fps == preset["fps"]
    assert set(record.flow_shift.values()) == {config["flow_shift"]}
    assert record.scheduler == "dmd" and list(record.timesteps) == config["dmd_denoising_steps"]
    # DmdDenoisingStage runs one conditional pass at each dmd timestep: the preset's guidance_scale
    # and num_inference_steps never reach it, so 1.0 (no CFG) and len(timesteps) steps are the same run
    stage = next(n for n in ast.walk(_fastvideo("pipelines/stages/denoising.py"))
                 if isinstance(n, ast.ClassDef) and n.name == "DmdDenoisingStage")
    stage_text = ast.unparse(stage)
    assert "dmd_denoising_steps" in stage_text and "guidance_scale" not in stage_text
    assert record.steps == len(config["dmd_denoising_steps"]) and record.guidance == 1.0
    assert {"guidance", "steps"} <= set(raw["choices"])


# Wan 2.1 values held on purpose, each with the outside value that backs it
WAN21_HELD = {
    ("wan2.1-i2v-14b-480p", "steps"): lambda: _fastvideo_presets()["wan_i2v_14b_480p"]["num_inference_steps"],
    ("wan2.1-i2v-14b-720p", "steps"): lambda: _fastvideo_presets()["wan_i2v_14b_720p"]["num_inference_steps"],
    # diffusers' Wan docs page (FLF2V example): not in the wheel, so held as written there
    ("wan2.1-flf2v-14b-720p", "guidance"): lambda: 5.5,
    ("wan2.1-flf2v-14b-720p", "flow_shift"): lambda: 16.0,
}


# VideoX-Fun (alibaba-pai's trainer of the Fun models; not on PyPI, so held as published): the example
# script examples/wan2.2_vace_fun/predict_v2v_control.py and config/wan2.2/wan_civitai_t2v.yaml
VIDEOX_FUN_PUBLISHED = {
    "wan2.2-vace-fun-a14b": {"steps": 50, "guidance": 5.0, "shift": 12.0, "boundary": 0.875, "frames": 81, "fps": 16,
                             "sample_size": (832, 480)},
}


@pytest.mark.parametrize("model_id", [m for m in REAL if catalog.raw_record(m)["source"]["from"] == "videox-fun"])
def test_videox_fun_checkpoints_run_at_their_published_settings(model_id):
    record, raw, published = catalog.get(model_id), catalog.raw_record(model_id), VIDEOX_FUN_PUBLISHED[model_id]
    assert record.steps == published["steps"]
    assert record.guidance == record.guidance_2 == published["guidance"]  # one guidance_scale for both experts
    assert set(record.flow_shift.values()) == {published["shift"]}
    assert (record.frames_default, record.fps) == (published["frames"], published["fps"])
    assert record.boundary_ratio == published["boundary"]
    assert set(published["sample_size"]) == set(record.default_size)  # the example runs it portrait
    # trained on Wan2.2-T2V-A14B: the boundary and shift are the base model's own (wan22's t2v-A14B config)
    base = _wan22_config(_wan22_tables()["modules"]["t2v-A14B"])
    assert (record.boundary_ratio, published["shift"]) == (base["boundary"], base["sample_shift"])
    assert {(w, h) for w, h in record.sizes} == {_size(s) for s in _wan22_tables()["SUPPORTED_SIZES"]["t2v-A14B"]}
    assert record.repo_id.endswith("-diffusers") and "alibaba-pai/" in raw["weights_from"]
    assert {"scheduler", "sizes"} <= set(raw["choices"])


# Wan 2.1's own sizes per task (Wan-Video/Wan2.1 wan/configs/__init__.py SUPPORTED_SIZES; the package is not
# on PyPI, so held as published), for the checkpoints whose diffusers repo does not say
WAN21_SUPPORTED_SIZES = {"wan2.1-flf2v-14b-720p": ("720*1280", "1280*720", "480*832", "832*480")}


@pytest.mark.parametrize("model_id", sorted(WAN21_SUPPORTED_SIZES))
def test_wan21_checkpoints_offer_every_size_upstream_supports(model_id, tmp_path):
    from tests.media_fixtures import make_image
    from wan_studio.requests import FLF2VRequest
    from wan_studio.runtime.dry_run import prepared_summary
    from wan_studio.settings import Settings

    record = catalog.get(model_id)
    assert set(record.sizes) == {_size(s) for s in WAN21_SUPPORTED_SIZES[model_id]}
    # upstream's generate.py samples FLF2V at shift 16 whatever the size
    assert {record.flow_shift_for(w, h) for w, h in record.sizes} == {16.0}
    first, last = make_image(tmp_path / "a.png", (1280, 720)), make_image(tmp_path / "b.png", (1280, 720))
    settings = Settings(output_dir=tmp_path / "out", models_dir=tmp_path / "models", tiny_models_dir=tmp_path / "tiny")
    made = {size: prepared_summary(FLF2VRequest(model=model_id, prompt="a bird takes off", image=str(first),
                                                last_image=str(last), width=size[0], height=size[1]), settings)
            for size in ((832, 480), (1280, 720))}
    small, large = made[(832, 480)], made[(1280, 720)]
    assert (small["width"], small["height"], small["flow_shift"], small["steps"]) == (832, 480, 16.0, 50)
    assert small["estimate"]["peak_gib"] < large["estimate"]["peak_gib"]
    assert small["estimate"]["seconds"] < large["estimate"]["seconds"] / 2


@pytest.mark.parametrize("model_id", [m for m in REAL if catalog.raw_record(m)["source"]["from"] == "diffusers"])
def test_wan21_checkpoints_match_diffusers(model_id):
    record, raw = catalog.get(model_id), catalog.raw_record(model_id)
    choices = raw.get("choices", {})
    ref = _diffusers_reference(raw["source"]["pipeline"])
    rule = ref["shift_rule"] or _diffusers_reference("WanPipeline")["shift_rule"]

    def expected(field, value):
        held = WAN21_HELD.get((model_id, field))
        if held is None:
            return value
        assert field in choices, f"{model_id} differs from diffusers on {field} but its choices do not say why"
        return held()

    assert record.steps == expected("steps", ref["num_inference_steps"])
    assert record.guidance == expected("guidance", ref["example_guidance"])
    assert ref["example_guidance"] == ref["guidance_scale"]
    for resolution, shift in record.flow_shift.items():
        assert shift == expected("flow_shift", rule[resolution]), (model_id, resolution)
    assert record.frames_default == (ref["example_frames"] or ref["num_frames"]) == ref.get("num_frames", 81)
    assert record.fps == ref["example_fps"] == 16
    w, h = record.default_size
    if w * h <= 832 * 480:  # 480p: the __call__ default (and the I2V example's max area)
        assert (w, h) == (ref["width"], ref["height"])
        assert ref["example_area"] in (None, w * h)
    else:  # 720p: the size of WanPipeline's docs example
        t2v = _diffusers_reference("WanPipeline")
        assert (w, h) == (t2v["example_width"], t2v["example_height"])
    assert record.scheduler == "unipc"
    assert _diffusers_reference("WanPipeline")["example_scheduler"] == "UniPCMultistepScheduler"
    assert set(choices) <= {"steps", "guidance", "flow_shift"}
    assert {f for (m, f) in WAN21_HELD if m == model_id} <= set(choices)


def test_fastwan_sampling_renoises_at_the_distilled_timesteps():
    """FastVideo's DmdDenoisingStage: x0 = x - sigma * v, then x0 noised again to the next level."""
    import torch

    from pipelines.common import few_step_scheduler

    generator = torch.Generator("cpu").manual_seed(7)
    scheduler = few_step_scheduler((1000, 757, 522), 8.0, generator)
    scheduler.set_timesteps(3)
    assert scheduler.timesteps.tolist() == [1000.0, 757.0, 522.0]
    # FastVideo looks each timestep up on its 1000-step grid bent by shift 8: t/1000 within 0.001
    assert torch.allclose(scheduler.sigmas, torch.tensor([1.0, 0.757, 0.522, 0.0]), atol=1e-3)
    with pytest.raises(ValueError, match="runs 3 steps"):
        scheduler.set_timesteps(4)

    sample, velocity = torch.full((1, 4), 2.0), torch.full((1, 4), 1.5)
    sigma, sigma_next = scheduler.sigmas[0].item(), scheduler.sigmas[1].item()
    expected_noise = torch.randn((1, 4), generator=torch.Generator("cpu").manual_seed(7))
    out = scheduler.step(velocity, scheduler.timesteps[0], sample, return_dict=False)[0]
    clean = sample - sigma * velocity
    assert torch.allclose(out, (1 - sigma_next) * clean + sigma_next * expected_noise, atol=1e-6)
    scheduler.step(velocity, scheduler.timesteps[1], out)
    last = scheduler.step(velocity, scheduler.timesteps[2], sample, return_dict=False)[0]
    assert torch.allclose(last, sample - scheduler.sigmas[2] * velocity, atol=1e-6)  # the last step is the prediction


def test_fastwan_requests_keep_the_distilled_step_count():
    from wan_studio.errors import RequestError
    from wan_studio.requests import T2VRequest

    request = T2VRequest(model="fastwan2.1-t2v-1.3b", prompt="a fox").prepare()
    assert (request.width, request.height, request.frames, request.steps, request.flow_shift) == (832, 448, 61, 3, 8.0)
    with pytest.raises(RequestError, match="distilled to 3 steps"):
        T2VRequest(model="fastwan2.1-t2v-1.3b", prompt="a fox", steps=8).prepare()
