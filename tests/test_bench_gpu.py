"""The prepared GPU check runs its CPU smoke mode, writes the result format `plan --fit` reads,
and the fit takes measured runs on a GPU of the table and leaves out the rest with the reason."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT, run_cli_here


def test_smoke_run_writes_the_result_format(tmp_path, cli_env):
    out = tmp_path / "gpu-cpu.json"
    run = subprocess.run([sys.executable, "bench/gpu.py", "--smoke", "--out", str(out)], cwd=ROOT, env=cli_env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    result = json.loads(out.read_text())
    assert (result["gpu"], result["device"], result["smoke"]) == ("CPU", "cpu", True)
    cases = [(r["model"], r["size"], r["frames"], r["attention"], r["cache"], r["compile"]) for r in result["runs"]]
    assert cases == [
        ("tiny-t2v", "64x64", 9, "native", "off", "none"), ("tiny-t2v", "64x64", 9, "native", "balanced", "none"),
        ("tiny-t2v", "96x64", 13, "native", "off", "none"), ("tiny-t2v", "96x64", 13, "native", "balanced", "none"),
        # the compiled plan variant (the CPU compiles too); FP8 and group offloading need a GPU
        ("tiny-t2v", "64x64", 9, "native", "off", "repeated-blocks"),
        ("tiny-t2v", "96x64", 13, "native", "off", "repeated-blocks"),
        ("tiny-ti2v", "64x64", 9, "native", "off", "none"), ("tiny-ti2v", "64x64", 9, "native", "balanced", "none"),
        ("tiny-ti2v", "64x64", 9, "native", "off", "repeated-blocks"),
    ]
    for entry in result["runs"]:
        assert entry["seconds"] > 0 and entry["steps"] == 2 and entry["only"] == "denoise"
        assert (entry["quantization"], entry["offload"]) == ("none", "none")
        plain = entry["cache"] == "off" and entry["compile"] == "none"
        assert (entry["predicted_s"] is None) == (not plain)
    assert "tiny-t2v fp8-dynamic: FP8 needs an NVIDIA GPU of capability 8.9 or newer" in result["skipped"]
    assert "tiny-t2v group-offload: group offloading moves blocks between the CPU and a GPU" in result["skipped"]
    assert "tiny-t2v 96x64x13 x2 steps" in run.stdout and f"wrote {out}" in run.stdout


def test_the_fit_reads_measured_runs_and_leaves_out_what_it_cannot_use(tmp_path, capsys):
    results = tmp_path / "gpu-rtx-4090.json"
    results.write_text(json.dumps({"gpu": "NVIDIA GeForce RTX 4090", "runs": [
        {"model": "wan2.1-t2v-1.3b", "mode": "t2v", "size": "832x480", "frames": 81, "steps": 2,
         "gpu": "NVIDIA GeForce RTX 4090", "attention": "native", "cache": "off", "offload": "none",
         "only": "denoise", "seconds": 7.5},
        {"model": "wan2.1-t2v-1.3b", "mode": "t2v", "size": "832x480", "frames": 81, "steps": 2,
         "gpu": "NVIDIA GeForce RTX 4090", "attention": "native", "cache": "balanced", "offload": "none",
         "only": "denoise", "seconds": 5.0},
        {"model": "tiny-t2v", "mode": "t2v", "size": "64x64", "frames": 9, "steps": 2, "gpu": "CPU",
         "attention": "native", "cache": "off", "offload": "none", "only": "denoise", "seconds": 0.02},
    ]}))
    run = run_cli_here(capsys, "plan", "--fit", str(results))
    assert run.returncode == 0, run.stderr
    assert f"left out: {results}: tiny-t2v on CPU (not a GPU of the table)" in run.stdout
    rows = [line for line in run.stdout.splitlines() if line.startswith("wan2.1-t2v-1.3b 832x480x81")]
    assert len(rows) == 2  # the published 50-step run and the measured 2-step one (the cached one is left out)
    assert any(" 2 steps, NVIDIA GeForce RTX 4090" in row and "7.5" in row for row in rows)
    found = json.loads(run.stdout.strip().splitlines()[-1])
    assert set(found) == {"vae", "default", "hopper"} and found["default"]["linear"] > 0


def test_the_fit_prints_each_plan_variants_speed_up_over_its_plain_twin(tmp_path, capsys):
    gpu = "NVIDIA GeForce RTX 4090"
    case = {"model": "wan2.1-t2v-1.3b", "mode": "t2v", "frames": 81, "steps": 2, "gpu": gpu, "attention": "native",
            "cache": "off", "only": "denoise", "compile": "none", "quantization": "none", "offload": "none"}
    results = tmp_path / "gpu-rtx-4090.json"
    results.write_text(json.dumps({"gpu": gpu, "runs": [
        {**case, "size": "832x480", "seconds": 7.5},
        {**case, "size": "832x480", "compile": "repeated-blocks", "seconds": 6.25},
        {**case, "size": "1280x720", "seconds": 32.0},
        {**case, "size": "1280x720", "compile": "repeated-blocks", "seconds": 20.0},
        {**case, "size": "1280x720", "offload": "group", "seconds": 40.0},
        {**case, "size": "640x480", "compile": "repeated-blocks", "seconds": 3.0},  # no plain twin: not counted
    ]}))
    run = run_cli_here(capsys, "plan", "--fit", str(results))
    assert run.returncode == 0, run.stderr
    assert (f"measured speed-up, compile repeated-blocks on {gpu}: x1.40 (median of 2: 1.20, 1.60)"
            in run.stdout)
    assert f"measured speed-up, offload group on {gpu}: x0.80 (median of 1: 0.80)" in run.stdout
    # the variants are not fitted as plain runs: two measured rows, the plain ones
    assert sum(" 2 steps, NVIDIA GeForce RTX 4090" in line for line in run.stdout.splitlines()) == 2
