"""Memory plans: exact footprints, the estimator, plan choice per machine, plans applied to Tiny
models, out-of-memory step-down, and the ZeroGPU reservation."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import run_cli_here
from wan_studio import catalog
from wan_studio.memory import footprints, plans
from wan_studio.memory.choose import choose
from wan_studio.memory.estimate import Shape, estimate
from wan_studio.memory.plans import Plan, ladder, simulated_machine

ROOT = Path(__file__).resolve().parent.parent
REAL = [c for c in catalog.checkpoints() if not c.is_tiny]


# -- footprints ---------------------------------------------------------------------------------
def wan_transformer_params(dim, ffn, layers, in_ch, out_ch, text_dim=4096, freq=256, heads_dim=128):
    """Parameters of a diffusers WanTransformer3DModel counted by hand from its layers."""
    linear = lambda i, o: i * o + o  # noqa: E731
    patch = in_ch * 1 * 2 * 2 * dim + dim
    condition = linear(freq, dim) + linear(dim, dim) + linear(dim, 6 * dim) + linear(text_dim, dim) + linear(dim, dim)
    attention = 4 * linear(dim, dim) + 2 * dim  # q, k, v, out + RMS norms of q and k across heads
    block = 2 * attention + 2 * dim + linear(dim, ffn) + linear(ffn, dim) + 6 * dim  # + cross-attn norm, modulation
    head = linear(dim, out_ch * 4) + 2 * dim
    return patch + condition + layers * block + head


@pytest.mark.parametrize("model, dim, ffn, layers, channels", [
    ("wan2.1-t2v-1.3b", 1536, 8960, 30, 16),
    ("wan2.2-ti2v-5b", 3072, 14336, 30, 48),
])
def test_meta_footprint_matches_hand_count(model, dim, ffn, layers, channels):
    fp = footprints.footprints(catalog.get(model))["transformer"]
    assert fp.params == wan_transformer_params(dim, ffn, layers, channels, channels)
    assert fp.exact and fp.blocks == layers
    # the published sizes: 1.3B is 1.42 B parameters, TI2V is 5.0 B
    assert round(fp.params / 1e9, 2) == {"wan2.1-t2v-1.3b": 1.42, "wan2.2-ti2v-5b": 5.0}[model]


def test_shared_encoders_are_counted_exactly():
    fps = footprints.footprints(catalog.get("wan2.1-i2v-14b-480p"))
    assert round(fps["text_encoder"].params / 1e9, 2) == 5.68  # UMT5-XXL encoder
    assert round(fps["image_encoder"].params / 1e9, 2) == 0.63  # CLIP ViT-H/14 vision tower
    assert round(fps["vae"].params / 1e6) == 127  # Wan 2.1 VAE


# -- the estimator --------------------------------------------------------------------------------
def shape(record, **changes):
    w, h = record.default_size
    base = Shape(record.modes[0], w, h, record.frames_default, record.steps, record.guidance, record.guidance_2)
    return dataclasses.replace(base, **changes)


def test_estimate_grows_with_frames_and_size_and_shrinks_with_quantization():
    record = catalog.get("wan2.1-t2v-14b")
    machine = simulated_machine("cuda", 16, (8, 9))
    plan = ladder(machine, record)[1]
    small = estimate(record, shape(record, frames=33, width=832, height=480), plan, machine)
    big = estimate(record, shape(record, frames=81), plan, machine)
    assert big.peak_gb > small.peak_gb and big.seconds > small.seconds
    assert big.tokens == 21 * 45 * 80  # latent frames x (720/8/2) x (1280/8/2)
    quantized = estimate(record, shape(record), dataclasses.replace(plan, quantization="fp8-dynamic"), machine)
    assert quantized.breakdown["weights_transformer"] < 0.55 * big.breakdown["weights_transformer"]
    tiled = estimate(record, shape(record), dataclasses.replace(plan, vae_tiling=True, vae_tile=128), machine)
    untiled = estimate(record, shape(record), dataclasses.replace(plan, vae_tiling=False), machine)
    assert tiled.breakdown["vae_decode_working"] < untiled.breakdown["vae_decode_working"] / 10


def test_moe_keeps_one_expert_resident_under_offload():
    record = catalog.get("wan2.2-t2v-a14b")
    machine = simulated_machine("cuda", 80, (9, 0))
    rungs = {p.name: p for p in ladder(machine, record)}
    both = estimate(record, shape(record), rungs["max-speed"], machine)
    one = estimate(record, shape(record), rungs["balanced"], machine)
    expert = both.breakdown["weights_transformer"]
    assert both.breakdown["denoise_phase"] - one.breakdown["denoise_phase"] >= expert
    # balanced offloads, so only the expert in use sits on the GPU; max-speed keeps both there
    assert rungs["balanced"].offload != "none" and rungs["max-speed"].offload == "none"


# -- choosing a plan, table-driven over machines and every checkpoint at its native sizes -----------
MACHINES = {
    "rtx4080-16gb": simulated_machine("cuda", 16, (8, 9)),
    "rtx3090-24gb": simulated_machine("cuda", 24, (8, 6)),
    "8gb": simulated_machine("cuda", 8, (8, 9)),
    "mps-36gb": simulated_machine("mps", 36),
    "zerogpu-large": simulated_machine("zerogpu-large"),
    "zerogpu-xlarge": simulated_machine("zerogpu-xlarge"),
    "cpu-64gb": simulated_machine("cpu", ram_gb=64),
}


def native_shapes(record):
    for width, height in record.sizes:
        yield shape(record, width=width, height=height)


@pytest.mark.parametrize("machine_name", MACHINES)
def test_chosen_plan_fits_and_obeys_backend_rules(machine_name):
    machine = MACHINES[machine_name]
    chosen, refused = [], []
    for record in REAL:
        for s in native_shapes(record):
            try:
                choice = choose(record, s, machine)
            except plans.NoPlanFits as exc:
                refused.append(record.id)
                assert "What would fit" in str(exc) or "Nothing smaller fits" in str(exc)
                assert f"{s.width}x{s.height}" in str(exc)
                continue
            chosen.append(choice)
            for plan, _, _ in choice.considered:
                if machine.kind == "mps" or (machine.kind == "cuda" and machine.capability < (8, 9)):
                    assert "fp8" not in plan.quantization, (record.id, plan)
                if machine.kind == "mps":
                    assert plan.compile == "none" and plan.transformer_dtype == "float16"
                if machine.kind == "cpu":
                    assert plan.transformer_dtype == "float32" and plan.offload == "none"
    # Animate-2 keeps a whole segment's reference K/V at every layer (about 34 GB at 800x640 in bf16): diffusers
    # runs it on an 80 GB card, so a smaller one is offered a shorter segment instead
    kv_cache = {r.id for r in REAL if r.extra.get("reference_kv_cache")}
    if machine_name in ("rtx4080-16gb", "rtx3090-24gb", "mps-36gb"):
        refused = [model for model in refused if model not in kv_cache]
    if machine_name in ("rtx4080-16gb", "rtx3090-24gb", "mps-36gb", "zerogpu-xlarge"):
        assert not refused, f"{machine_name} must run every checkpoint at its native sizes: {refused}"
    assert chosen


# Plans a person can check from published sizes in bf16: UMT5-XXL 10.6 GiB, 1.3B 2.6 GiB, 14B 26.6 GiB
# (13.5 in FP8), and about 7 GiB of activations at 1280x720x81 for a 14B model.
@pytest.mark.parametrize("model, size, machine, plan, quantization", [
    # the 1.3B with UMT5 on the GPU at once does not fit 16 GiB; one model at a time does
    ("wan2.1-t2v-1.3b", "832x480", simulated_machine("cuda", 16, (8, 9)), "balanced", "none"),
    ("wan2.1-t2v-1.3b", "832x480", simulated_machine("cuda", 80, (9, 0)), "max-speed", "none"),
    # 14B: FP8 weights plus 720p activations exceed 16 GiB, so blocks are streamed in
    ("wan2.1-t2v-14b", "1280x720", simulated_machine("cuda", 16, (8, 9)), "low-vram", "fp8-storage"),
    ("wan2.1-t2v-14b", "1280x720", simulated_machine("cuda", 80, (9, 0)), "max-speed", "none"),
    # two 26.6 GiB experts, UMT5 and activations pass 80 GiB: one expert on the GPU at a time
    ("wan2.2-t2v-a14b", "1280x720", simulated_machine("cuda", 80, (9, 0)), "balanced", "none"),
    # ZeroGPU large (48 GB) runs 14B in FP8; both A14B experts in bf16 need xlarge
    ("wan2.1-t2v-14b", "832x480", simulated_machine("zerogpu-large"), "balanced-quantized", "fp8-dynamic"),
    ("wan2.2-t2v-a14b", "1280x720", simulated_machine("zerogpu-large"), "max-speed", "none"),
])
def test_known_runs_get_the_expected_plan(model, size, machine, plan, quantization):
    record = catalog.get(model)
    width, height = (int(v) for v in size.split("x"))
    choice = choose(record, shape(record, width=width, height=height, frames=81), machine)
    assert (choice.plan.name, choice.plan.quantization) == (plan, quantization)
    if model == "wan2.2-t2v-a14b" and machine.kind == "zerogpu":
        assert choice.machine.zerogpu_size == "xlarge"


def test_14b_at_720p_is_refused_on_8gb_with_a_size_that_does_fit():
    record, machine = catalog.get("wan2.1-t2v-14b"), simulated_machine("cuda", 8, (8, 9))
    with pytest.raises(plans.NoPlanFits, match="^Wan 2.1 T2V 14B at 1280x720, 81 frames needs about") as info:
        choose(record, shape(record, width=1280, height=720, frames=81), machine)
    assert "What would fit: " in str(info.value) and "832x480 with 81 frames" in str(info.value)
    assert choose(record, shape(record, width=832, height=480, frames=81), machine).plan.name == "low-vram"  # it does


def test_more_vram_never_gets_a_smaller_plan():
    vram = (8, 12, 16, 24, 32, 48, 80, 141)
    for record in REAL:
        for s in native_shapes(record):
            ranks = []
            for gb in vram:
                machine = simulated_machine("cuda", gb, (8, 9))
                names = [p.name for p in ladder(machine, record)]
                try:
                    ranks.append(names.index(choose(record, s, machine).plan.name))
                except plans.NoPlanFits:
                    ranks.append(len(names))  # refused: below the smallest plan
            assert ranks == sorted(ranks, reverse=True), (record.id, s.width, s.height, dict(zip(vram, ranks)))
            assert ranks[-1] == 0, f"{record.id} {s.width}x{s.height} is not max-speed on 141 GiB"


def test_capability_86_gets_int8_where_16gb_ada_gets_fp8():
    record = catalog.get("wan2.1-t2v-14b")
    s = shape(record, width=832, height=480)
    ampere = choose(record, s, MACHINES["rtx3090-24gb"])
    assert ampere.plan.quantization == "int8-weight"
    ada = choose(record, s, simulated_machine("cuda", 24, (8, 9)))
    assert ada.plan.quantization.startswith("fp8")


def test_zerogpu_routes_moe_720p_to_xlarge_and_1_3b_to_large():
    moe = catalog.get("wan2.2-t2v-a14b")
    assert choose(moe, shape(moe), MACHINES["zerogpu-large"]).machine.zerogpu_size == "xlarge"
    small = catalog.get("wan2.1-t2v-1.3b")
    assert choose(small, shape(small), MACHINES["zerogpu-large"]).machine.zerogpu_size == "large"
    # a 14B at 480p fits `large` with FP8, as the reference Spaces run it
    big = catalog.get("wan2.1-t2v-14b")
    choice = choose(big, shape(big, width=832, height=480), MACHINES["zerogpu-large"])
    assert choice.machine.zerogpu_size == "large" and choice.plan.quantization == "fp8-dynamic"


def test_too_big_says_what_would_fit():
    record = catalog.get("wan2.1-t2v-14b")
    with pytest.raises(plans.NoPlanFits) as err:
        choose(record, shape(record, width=1280, height=720, frames=121), MACHINES["8gb"])
    message = str(err.value)
    assert "Wan 2.1 T2V 14B at 1280x720, 121 frames" in message and "What would fit" in message


def test_pinned_plan_is_used_and_unknown_names_are_refused():
    record = catalog.get("wan2.1-t2v-1.3b")
    choice = choose(record, shape(record), MACHINES["rtx4080-16gb"], "minimum")
    assert choice.plan.name == "minimum" and choice.plan.offload == "sequential"
    with pytest.raises(plans.StudioError, match="Unknown memory plan 'turbo'"):
        choose(record, shape(record), MACHINES["rtx4080-16gb"], "turbo")


def test_readme_minutes_table_matches_the_estimator():
    """The minutes table moved from the README to docs/memory-and-speed.md; `--write-readme` writes it there."""
    from wan_studio.cli.plan import README_END, README_START, minutes_table

    page = (ROOT / "docs" / "memory-and-speed.md").read_text()
    inside = page.split(README_START)[1].split(README_END)[0].strip()
    assert inside == minutes_table().strip(), (
        "The minutes table in docs/memory-and-speed.md is stale: regenerate with "
        "`python -m wan_studio plan --table --write-readme`"
    )


FIT_TABLE_START, FIT_TABLE_END = "<!-- fit-table:start -->", "<!-- fit-table:end -->"
FIT_TABLE_CARDS_GB = (8, 12, 16, 24, 48, 80)


def fit_table() -> str:
    """Markdown: the plan each real checkpoint gets at each native size (Quality, its default frames)
    on a CUDA card of each size (capability 8.9, the RAM `simulated_machine` gives it); checkpoints
    that get the same plans on every card share a row."""
    from wan_studio.cli.plan import run_shape

    machines = [simulated_machine("cuda", gb, (8, 9)) for gb in FIT_TABLE_CARDS_GB]
    rows: dict[tuple[str, ...], list[str]] = {}
    for record in REAL:
        for width, height in dict.fromkeys(tuple(sorted(s, reverse=True)) for s in record.sizes):
            run, _ = run_shape(record, size=f"{width}x{height}")
            cells = []
            for machine in machines:
                try:
                    cells.append(choose(record, run, machine).plan.label)
                except plans.NoPlanFits:
                    cells.append("does not fit")
            rows.setdefault(tuple(cells), []).append(f"{record.name} {width}x{height}x{run.frames}")
    lines = ["| Checkpoint, size x frames | " + " | ".join(f"{gb} GB" for gb in FIT_TABLE_CARDS_GB) + " |",
             "|---|" + "---|" * len(FIT_TABLE_CARDS_GB)]
    lines += [f"| {', '.join(names)} | " + " | ".join(cells) + " |" for cells, names in rows.items()]
    return "\n".join(lines)


def test_readme_gpu_table_matches_the_plans_the_studio_picks():
    readme = (ROOT / "README.md").read_text()
    inside = readme.split(FIT_TABLE_START)[1].split(FIT_TABLE_END)[0].strip()
    expected = fit_table()
    assert inside == expected, f"The README's GPU table is stale; put this between its fit-table markers:\n{expected}"


@pytest.mark.parametrize("model, size, frames, published_s", [
    ("wan2.1-t2v-1.3b", "832x480", "81", 261.4),  # Wan 2.1 README: RTX 4090, --offload_model True --t5_cpu
    ("wan2.2-ti2v-5b", "1280x704", "121", 534.7),  # Wan 2.2 README: RTX 4090, --offload_model True --t5_cpu
])
def test_a_named_gpu_reproduces_wans_published_times(capsys, model, size, frames, published_s):
    run = run_cli_here(capsys, "plan", "--gpu", "RTX 4090", "--model", model, "--size", size, "--frames", frames,
                       "--plan", "balanced", "--attention", "native", "--json")
    assert run.returncode == 0, run.stderr
    found = json.loads(run.stdout)
    assert (found["plan"], found["attention"], found["cache"]) == ("balanced", "native", "off")
    assert found["shape"]["steps"] == 50 and "RTX 4090 24 GiB" in found["machine"]
    assert 0.8 <= found["seconds"] / published_s <= 1.2, found["seconds"]
    assert found["peak_gib"] > 0 and found["ram_gib"] > 0


def test_the_gpu_table_drives_time_fp8_speeds_linear_layers_only():
    from wan_studio.memory.estimate import estimate, shape_for
    from wan_studio.memory.fit import machine_of

    record = catalog.get("wan2.1-t2v-14b")
    run = shape_for(record, "t2v", "1280x720", 81, 50)
    bf16 = Plan("balanced", "bfloat16", offload="model")
    fp8 = Plan("balanced", "bfloat16", "fp8-dynamic", offload="model")
    seconds = {gpu: estimate(record, run, bf16, machine_of(gpu)).seconds_breakdown["denoise"]
               for gpu in ("RTX 4080", "RTX 4090")}
    assert seconds["RTX 4080"] / seconds["RTX 4090"] == pytest.approx(165.2 / 97.5, rel=0.01)  # the table's bf16 rates
    with_fp8 = estimate(record, run, fp8, machine_of("RTX 4090")).seconds_breakdown["denoise"]
    # FP8 doubles the linear layers' peak rate (x0.8 efficiency) and leaves attention, most of a 720p run, alone
    assert 0.5 * seconds["RTX 4090"] < with_fp8 < 0.9 * seconds["RTX 4090"]
    on_a100 = estimate(record, run, fp8, machine_of("A100")).seconds_breakdown["denoise"]  # no FP8 tensor cores
    assert on_a100 == estimate(record, run, bf16, machine_of("A100")).seconds_breakdown["denoise"]


def test_wan_22_vae_costs_about_twice_the_21_vae_per_pixel_not_its_parameter_ratio():
    from wan_studio.memory.estimate import estimate, shape_for
    from wan_studio.memory.fit import machine_of

    plan, gpu = Plan("balanced", "bfloat16", offload="model"), machine_of("RTX 4090")
    per_pixel = {}
    for model, size in (("wan2.1-t2v-1.3b", "832x480"), ("wan2.2-ti2v-5b", "832x480")):
        record = catalog.get(model)
        run = shape_for(record, "t2v", size, 81, 50)
        per_pixel[model] = estimate(record, run, plan, gpu).seconds_breakdown["decode"] / (81 * 832 * 480)
    # counted with torch's FLOP counter: 8.7 and 18.9 MFLOP per decoded pixel (scripts/count_vae_flops.py)
    assert per_pixel["wan2.2-ti2v-5b"] / per_pixel["wan2.1-t2v-1.3b"] == pytest.approx(18.9 / 8.7, rel=0.01)


def test_s2v_counts_its_motion_tokens_and_the_per_clip_decode_and_re_encode():
    import dataclasses as dc

    from wan_studio.memory.estimate import estimate, shape_for
    from wan_studio.memory.fit import machine_of

    record, plan, gpu = catalog.get("wan2.2-s2v-14b"), Plan("balanced", "bfloat16", offload="model"), machine_of("H100")
    one = shape_for(record, "s2v", "832x448", 80, 40)
    est = estimate(record, one, plan, gpu)
    # 20 latent frames + the reference, 28 x 52 tokens each; the motion frames packed 1 + 2/2 + 16/4 at
    # full, 1/4 and 1/16 of that grid: 1456 + 364 + 364
    assert est.tokens == 21 * 28 * 52 + 1456 + 364 + 364
    two = estimate(record, dc.replace(one, passes=2), plan, gpu).seconds_breakdown
    # the second clip decodes after the 73 motion frames and re-encodes them: more than twice one clip's decode
    assert two["decode"] > 2 * est.seconds_breakdown["decode"] and two["denoise"] == pytest.approx(
        2 * est.seconds_breakdown["denoise"], rel=0.01)


def test_the_stored_time_model_is_the_fit_of_the_timed_runs():
    from wan_studio.memory import fit
    from wan_studio.memory.estimate import calibration

    stored = {k: v for k, v in calibration()["utilisation"].items() if k != "source"}
    assert fit.fit(calibration()["published_runs"]) == stored, "refit with `python -m wan_studio plan --fit --write`"
    ratios = [fit.predicted_seconds(run, stored) / run["seconds"] for run in calibration()["published_runs"]]
    assert len(ratios) == 15 and all(0.8 <= r <= 1.2 for r in ratios)
    with pytest.raises(plans.StudioError, match="at least as many timed runs"):
        fit.fit(calibration()["published_runs"][:1])


def test_plan_refuses_an_unknown_gpu(capsys):
    run = run_cli_here(capsys, "plan", "--gpu", "RTX 9999", "--model", "wan2.1-t2v-1.3b")
    assert run.returncode == 2
    assert "Unknown GPU 'RTX 9999'" in run.stderr and "RTX 4080" in run.stderr and "H100" in run.stderr


def test_plan_cli_prints_choice_and_rejects_bad_machine(capsys):
    run = lambda *a: run_cli_here(capsys, "plan", *a)  # noqa: E731
    ok = run("--model", "wan2.1-t2v-14b", "--size", "1280x720", "--frames", "81", "--vram", "16GiB",
             "--backend", "cuda")
    assert ok.returncode == 0, ok.stderr
    assert "plan:    Low VRAM" in ok.stdout and "rungs considered:" in ok.stdout
    assert re.search(r"Max speed\s+[0-9.]+ GiB\s+does not fit", ok.stdout)
    missing = run("--model", "wan2.1-t2v-14b", "--backend", "cuda")
    assert missing.returncode == 2 and "--vram 16GiB" in missing.stderr


# -- plans applied to Tiny models -------------------------------------------------------------------
def run_tiny(engine, plan: Plan, model="tiny-t2v", spy=None):
    import pipelines
    from wan_studio.requests import T2VRequest

    record = catalog.get(model)
    request = T2VRequest(model=model, prompt="a red fox in the snow", width=64, height=64, frames=9, steps=3,
                         seed=7).prepare()
    pipe = engine.swap.activate(record, "t2v", plan)
    if spy is not None:
        spy(pipe)
    return pipelines.wrapper_for("t2v").run(pipe, request, record, lambda p, s, t, kw: kw).astype(np.float32)


@pytest.fixture
def plain(engine):
    return run_tiny(engine, Plan("max-speed", "float32"))


@pytest.mark.parametrize("changes", [
    {"quantization": "fp8-storage"},
    {"quantization": "int8-weight"},
    {"offload": "group"},
])
def test_plan_elements_run_tiny_and_stay_close(engine, plain, changes):
    out = run_tiny(engine, Plan("low-vram", "float32", **changes))
    assert out.shape == plain.shape
    assert np.abs(out - plain).mean() < 8.0, "output drifted too far from the plain run"
    pipe = engine.swap.active_pipeline
    if changes.get("quantization") == "fp8-storage":
        import torch

        assert pipe.transformer.blocks[0].ffn.net[2].weight.dtype == torch.float8_e4m3fn
    if changes.get("quantization") == "int8-weight":
        assert "torchao" in type(pipe.transformer.blocks[0].ffn.net[2].weight).__module__
    if changes.get("offload") == "group":
        from diffusers.hooks.group_offloading import _is_group_offload_enabled

        assert _is_group_offload_enabled(pipe.transformer)


@pytest.mark.parametrize("when", ["while loading", "after loading"])
def test_quantizing_keeps_embedders_and_the_output_projection_in_full_precision(engine, when):
    import torch

    from wan_studio.memory.apply import convert_weights

    int8 = Plan("low-vram", "float32", "int8-weight")
    if when == "while loading":  # what the swap manager does: diffusers' torchao quantizer, shard by shard
        pipe = engine.swap.activate(catalog.get("tiny-t2v"), "t2v", int8)
        assert pipe.transformer.quantization_method == "torchao"
    else:  # a transformer that came unquantized (convert_weights quantizes it in place)
        pipe = engine.swap.activate(catalog.get("tiny-t2v"), "t2v", Plan("max-speed", "float32"))
        engine.swap.release()
        convert_weights(pipe, int8, "cpu")
    linears = {name: module for name, module in pipe.transformer.named_modules() if isinstance(module, torch.nn.Linear)}
    blocks = [name for name in linears if name.startswith("blocks.")]
    others = [name for name in linears if not name.startswith("blocks.")]
    assert blocks and any(name.startswith("condition_embedder.") for name in others) and "proj_out" in others
    for name in blocks:  # torchao's quantized weight tensor
        assert type(linears[name].weight).__name__ != "Parameter", name
        assert type(linears[name].weight) is not torch.Tensor, name
    for name in others:
        assert type(linears[name].weight) is torch.nn.Parameter and linears[name].weight.dtype == torch.float32, name


def test_vae_tiling_with_small_tiles_uses_tiles(engine, plain, monkeypatch):
    calls = []

    def spy(pipe):
        original = pipe.vae.tiled_decode
        monkeypatch.setattr(pipe.vae, "tiled_decode", lambda *a, **k: calls.append(1) or original(*a, **k))

    out = run_tiny(engine, Plan("balanced", "float32", vae_tiling=True, vae_tile=32), spy=spy)
    assert calls, "the VAE decoded without tiles"
    assert np.abs(out - plain).mean() < 8.0


def test_changing_plan_swaps_hooks_and_reloads_only_for_new_weights(engine):
    record = catalog.get("tiny-t2v")
    base = Plan("max-speed", "float32")
    first = engine.swap.activate(record, "t2v", base)
    loads = engine.swap.loads
    tiled = engine.swap.activate(record, "t2v", dataclasses.replace(base, name="balanced", vae_tiling=True))
    assert engine.swap.loads == loads and tiled.transformer is first.transformer and tiled.vae.use_tiling
    grouped = engine.swap.activate(record, "t2v", dataclasses.replace(base, name="low-vram", offload="group"))
    assert engine.swap.loads == loads
    from diffusers.hooks.group_offloading import _is_group_offload_enabled

    assert _is_group_offload_enabled(grouped.transformer)
    engine.swap.activate(record, "t2v", base)  # back: the group offload hooks come off
    assert not _is_group_offload_enabled(engine.swap.active_pipeline.transformer)
    engine.swap.activate(record, "t2v", dataclasses.replace(base, name="low-vram", quantization="int8-weight"))
    assert engine.swap.loads == loads + 1, "a new quantization must reload the weights"


# -- out of memory ----------------------------------------------------------------------------------
def inject_oom(monkeypatch, fail_plans: set[str], at_step: int = 2):
    """Make the T2V wrapper raise torch.OutOfMemoryError at `at_step` while a plan in `fail_plans` is active."""
    import torch

    import pipelines
    from pipelines import t2v

    original = t2v.run
    seen = []

    def run(pipe, request, record, callback):
        plan_name = _active_plan_name()

        def failing(pipe_, step, timestep, kwargs):
            if plan_name in fail_plans and step + 1 == at_step:
                seen.append(plan_name)
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (injected)")
            return callback(pipe_, step, timestep, kwargs)

        return original(pipe, request, record, failing)

    monkeypatch.setattr(t2v, "run", run)
    assert pipelines.wrapper_for("t2v").run is run
    return seen


_ENGINES = []


def _active_plan_name():
    return _ENGINES[-1].swap.active_plan.name


def test_oom_steps_down_and_the_recipe_says_so(engine, monkeypatch):
    from wan_studio.requests import T2VRequest

    _ENGINES.append(engine)
    seen = inject_oom(monkeypatch, {"max-speed"})
    request = T2VRequest(model="tiny-t2v", prompt="a lighthouse at dusk", width=64, height=64, frames=9, steps=3)
    result = engine.generate(request)
    assert seen == ["max-speed"] and result.media.exists()
    memory = result.recipe["memory"]
    assert memory["plan"] == "balanced"
    assert memory["steps_down"] == [{"from": "max-speed", "to": "balanced",
                                     "error": "CUDA out of memory. Tried to allocate 2.00 GiB (injected)"}]
    assert any("Out of memory with the Max speed plan" in m for m in result.recipe["messages"])


def test_oom_on_every_rung_fails_clearly_and_the_worker_goes_on(settings, monkeypatch):
    from wan_studio.queue.store import DONE, FAILED
    from wan_studio.requests import T2VRequest
    from wan_studio.runtime.studio import Studio

    studio = Studio(settings)
    _ENGINES.append(studio.engine)
    every = {p.name for p in ladder(studio.engine.machine, catalog.get("tiny-t2v"))}
    seen = inject_oom(monkeypatch, every)
    request = T2VRequest(model="tiny-t2v", prompt="a lighthouse at dusk", width=64, height=64, frames=9, steps=3)
    doomed = studio.submit(request)
    studio.worker.run_until_empty()
    failed = studio.store.get(doomed.id)
    assert failed.state == FAILED and failed.error_type == "OutOfMemory"
    assert "Out of memory even with the Minimum memory plan" in failed.error_message
    assert seen == ["max-speed", "balanced", "low-vram", "minimum"]
    assert not list(Path(settings.output_dir).glob("*.mp4"))
    seen_before = len(seen)
    monkeypatch.undo()
    fine = studio.submit(request)
    studio.worker.run_until_empty()
    assert studio.store.get(fine.id).state == DONE and len(seen) == seen_before


def test_step_down_is_recorded_in_the_job_messages(settings, monkeypatch):
    from wan_studio.requests import T2VRequest
    from wan_studio.runtime.studio import Studio

    studio = Studio(settings)
    _ENGINES.append(studio.engine)
    inject_oom(monkeypatch, {"max-speed"})
    job = studio.submit(T2VRequest(model="tiny-t2v", prompt="rain on a window", width=64, height=64, frames=9, steps=3))
    studio.worker.run_until_empty()
    done = studio.store.get(job.id)
    assert done.state == "done"
    assert any("ran again with Balanced" in m for m in done.messages)


def test_unknown_memory_plan_is_refused_at_validation():
    from wan_studio.errors import RequestError
    from wan_studio.requests import T2VRequest

    with pytest.raises(RequestError, match="Unknown memory plan 'huge'") as err:
        T2VRequest(model="tiny-t2v", prompt="x", memory_plan="huge")
    assert err.value.field == "memory_plan"
    assert T2VRequest(model="tiny-t2v", prompt="x", memory_plan="Low VRAM").memory_plan == "low-vram"


# -- ZeroGPU ----------------------------------------------------------------------------------------
def test_zerogpu_reserves_the_estimate_picks_the_size_and_never_touches_cuda(settings, monkeypatch):
    import dataclasses as dc

    import spaces
    import torch

    from wan_studio.backend import Backend
    from wan_studio.memory.estimate import zerogpu_duration
    from wan_studio.requests import T2VRequest
    from wan_studio.runtime.engine import Engine
    from wan_studio.runtime.studio import Studio

    assert not spaces.config.Config.zero_gpu, "spaces must be in its local mode here"
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    decorated = []
    real_gpu = spaces.GPU

    def recording_gpu(task=None, *, duration=None, size=None):
        decorated.append({"duration": duration, "size": size})
        return real_gpu(task, duration=duration, size=size)

    monkeypatch.setattr(spaces, "GPU", recording_gpu)
    # a ZeroGPU machine whose device is the CPU, so the tiny run works here (spaces emulates CUDA on a Space)
    # compile off: blocks compiled at start are tests/test_compile.py's
    settings = dc.replace(settings, zerogpu_preload=("tiny-t2v",), compile="off")
    engine = Engine(settings, backend=Backend("zerogpu", "cpu", "ZeroGPU (test)", total_memory_gb=48.0, bf16=True))
    studio = Studio(settings, engine=engine)
    assert {d["size"] for d in decorated} == {"large", "xlarge"}
    studio.start()
    try:
        assert engine.swap.active_key is not None, "weights are loaded in the main process at start"
        request = T2VRequest(model="tiny-t2v", prompt="waves on a beach", width=64, height=64, frames=9, steps=2)
        job = studio.submit(request)
        duration = decorated[0]["duration"]
        expected = zerogpu_duration(engine.choose_plan(request).estimate)
        assert duration(job.id) == expected and expected >= 30
        result = studio.wait_for_result(job, timeout_s=300)
        assert result.media.exists()
        assert result.recipe["memory"]["machine"].startswith("ZeroGPU large")
        # Tiny has no compiled blocks in the catalog: no AOTI in the plan (nor in the estimate), and it says so
        assert result.recipe["memory"]["compile"] == "none"
        assert ("AOTI skipped: compile is off in the settings; runs uncompiled" in result.recipe["memory"]["notes"])
        assert "reserves ZeroGPU large for" in studio.estimate_cost(request)
    finally:
        studio.stop()
    assert not torch.cuda.is_initialized()


def test_zerogpu_loads_the_compiled_blocks_the_catalog_names_and_credits_them_only_then(engine, monkeypatch):
    import dataclasses as dc

    import spaces

    from wan_studio.memory.apply import attach_runtime
    from wan_studio.memory.estimate import shape_for

    record = catalog.get("wan2.2-t2v-a14b")
    space = simulated_machine("zerogpu-large")
    run = shape_for(record, "t2v", "832x480", 81, 40)  # a run that large makes with its FP8 plan
    plain = choose(dc.replace(record, extra={}), run, space)  # a catalog naming no repo
    compiled = dc.replace(record, extra={"aoti": {"repo": "owner/wan22-aoti", "variants": {"fp8-dynamic": "fp8da"}}})
    with_blocks = choose(compiled, run, space)
    assert (plain.plan.compile, with_blocks.plan.compile) == ("none", "aoti")
    assert with_blocks.estimate.seconds < plain.estimate.seconds  # the compile speed-up, only where it applies
    # the repo has FP8 blocks only: the bf16 rung stays uncompiled
    assert [p.compile for p in ladder(space, compiled)] == ["none", "aoti"]
    loaded = []
    monkeypatch.setattr(spaces, "aoti_blocks_load", lambda module, repo, variant=None: loaded.append((repo, variant)))
    pipe = engine.swap.activate(catalog.get("tiny-t2v-moe"), "t2v", Plan("max-speed", "float32"))
    notes = attach_runtime(pipe, dc.replace(with_blocks.plan, attention="native"), "cpu", aoti=compiled.extra["aoti"])
    assert loaded == [("owner/wan22-aoti", "fp8da"), ("owner/wan22-aoti", "fp8da")]  # both experts
    assert notes == ["AOTI blocks from owner/wan22-aoti (fp8da)"]
    assert attach_runtime(pipe, dc.replace(with_blocks.plan, quantization="none", attention="native"), "cpu",
                          aoti=compiled.extra["aoti"]) == ["AOTI skipped: no compiled graphs for this checkpoint"]
    # a repo serving its bf16 blocks names them ("none": its plain blocks, or a variant)
    both = dc.replace(record, extra={"aoti": {"repo": "owner/wan22-aoti", "variants": {"none": None,
                                                                                        "fp8-dynamic": "fp8da"}}})
    assert [p.compile for p in ladder(space, both)] == ["aoti", "aoti"]
    # a Space with blocks compiled at start for bf16 weights only: the FP8 rung stays uncompiled
    local = dc.replace(record, extra={"aoti": {"local": {"none": {"folder": "/x", "seconds": 60.0}}}})
    assert [p.compile for p in ladder(space, local)] == ["aoti", "none"]


def test_cost_line_names_checkpoint_frames_time_memory_and_plan():
    from wan_studio.memory.choose import cost_line
    from wan_studio.requests import T2VRequest

    request = T2VRequest(model="wan2.1-t2v-14b", prompt="a fox", width=1280, height=720, frames=81).prepare()
    line = cost_line(request, MACHINES["rtx4080-16gb"], attention="native")
    assert line.startswith("Wan 2.1 T2V 14B · 81 frames (5.1 s) at 1280x720 · about ")
    # the plan's name with one line on what it does, for someone who has never met the word
    assert re.search(r"peak [0-9.]+ GiB · Low VRAM plan \(8-bit weights brought to the GPU a block at a time\)$", line)
    assert cost_line(request, MACHINES["rtx4080-16gb"], attention="sage").endswith(
        "Low VRAM plan (8-bit weights brought to the GPU a block at a time) · SageAttention")
    too_big = cost_line(dataclasses.replace(request, frames=121).prepare(), MACHINES["8gb"])
    assert "does not fit" in too_big and "What would fit" in too_big


def test_s2v_time_and_zerogpu_reservation_grow_with_the_audio():
    from wan_studio.memory.estimate import zerogpu_duration

    record = catalog.get("wan2.2-s2v-14b")
    machine = MACHINES["zerogpu-large"]
    plan = ladder(machine, record)[0]
    one_clip = estimate(record, shape(record, passes=1), plan, machine)
    four_clips = estimate(record, shape(record, passes=4), plan, machine)  # ~20 s of speech
    assert four_clips.seconds > 3 * one_clip.seconds - 60
    assert zerogpu_duration(four_clips) > zerogpu_duration(one_clip)
    assert four_clips.peak_gb == one_clip.peak_gb  # clips run one after another: memory does not grow
