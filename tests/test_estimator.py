"""The time model against what is published: each published run predicted by a fit that never saw it,
one name per attention backend from the fit to the plan, and the authors' speed-ups where nothing is
measured yet."""

from __future__ import annotations

import dataclasses
import statistics

import pytest

from wan_studio import catalog
from wan_studio.memory import fit
from wan_studio.memory.estimate import calibration, estimate, shape_for, utilisation
from wan_studio.memory.plans import Plan

RUNS = calibration()["published_runs"]


def test_each_published_run_is_predicted_by_a_fit_that_left_it_out():
    ratios = []
    for index, run in enumerate(RUNS):
        others = RUNS[:index] + RUNS[index + 1:]
        ratios.append(fit.predicted_seconds(run, fit.fit(others)) / run["seconds"])
    assert len(ratios) == 15
    assert all(0.75 <= ratio <= 1.25 for ratio in ratios), [round(r, 3) for r in ratios]
    assert statistics.median(abs(ratio - 1) for ratio in ratios) <= 0.10, [round(r, 3) for r in ratios]


def test_a_plan_with_flashattention_3_on_an_h100_gets_the_fitted_factor():
    """Wan 2.2's README: T2V A14B, 832x480, 81 frames, 40 steps on one H100 with FlashAttention 3: 326.9 s."""
    record = catalog.get("wan2.2-t2v-a14b")
    machine = fit.machine_of("H100")
    shape = shape_for(record, "t2v", "832x480", 81, 40)
    seconds = {attention: estimate(record, shape, Plan("published", "bfloat16", offload="model", attention=attention),
                                   machine, loaded=True).seconds
               for attention in ("native", "_flash_3", "_flash_3_hub")}
    assert seconds["_flash_3"] == pytest.approx(326.9, rel=0.05)
    assert seconds["_flash_3_hub"] == seconds["_flash_3"]  # the same kernel, prebuilt
    assert seconds["native"] > 1.15 * seconds["_flash_3"]
    assert calibration()["utilisation"]["hopper"]["_flash_3"] > 1  # stored under the name plans use


def test_backends_not_yet_measured_use_their_authors_published_speed_up():
    cited = calibration()["attention_speed"]
    ada, blackwell = fit.machine_of("RTX 4090"), fit.machine_of("RTX 5090")
    sdpa = utilisation(ada)["attention"]
    assert utilisation(ada, "sage")["attention"] == pytest.approx(sdpa * cited["sage"]["ada"]["factor"])
    assert utilisation(ada, "sage_hub") == utilisation(ada, "sage")
    assert cited["sage"]["ada"]["factor"] == 3.0 and "2411.10958" in cited["sage"]["ada"]["source"]
    assert utilisation(blackwell, "sage_blackwell_hub")["attention"] == pytest.approx(
        5.0 * utilisation(blackwell)["attention"])
    for kernel, generations in cited.items():  # every figure says where it comes from
        if isinstance(generations, dict):
            assert all(entry["source"] for entry in generations.values()), kernel
    # the LightX2V-published run (Wan 2.1 I2V 14B 480P, 40 steps, RTX 4090, its own kernels: 630 s) is no
    # longer the same with SageAttention as with SDPA
    record = catalog.get("wan2.1-i2v-14b-480p")
    shape = shape_for(record, "i2v", "832x480", 81, 40)
    plan = Plan("balanced-quantized", "bfloat16", "fp8-dynamic", text_encoder="offload", offload="model",
                vae_tiling=True)
    with_sage = estimate(record, shape, dataclasses.replace(plan, attention="sage"), ada).seconds
    assert with_sage < 0.75 * estimate(record, shape, plan, ada).seconds


def test_compile_speeds_the_whole_transformer_forward_by_its_published_factor():
    record = catalog.get("wan2.1-t2v-14b")
    machine = fit.machine_of("RTX 4090")
    shape = shape_for(record, "t2v", "832x480", 81, 50)
    plain = estimate(record, shape, Plan("balanced", "bfloat16", offload="model"), machine)
    compiled = estimate(record, shape, Plan("balanced", "bfloat16", offload="model", compile="repeated-blocks"),
                        machine)
    assert plain.seconds_breakdown["denoise"] / compiled.seconds_breakdown["denoise"] == pytest.approx(
        calibration()["speed"]["compile"], rel=0.01)
    assert "diffusers/benchmarks" in calibration()["speed"]["source"]
