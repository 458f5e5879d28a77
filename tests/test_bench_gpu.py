"""The prepared GPU check runs its CPU smoke mode, writes the result format `plan --fit` reads,
and the fit takes measured runs on a GPU of the table and leaves out the rest with the reason."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT


def test_smoke_run_writes_the_result_format(tmp_path, cli_env):
    out = tmp_path / "gpu-cpu.json"
    run = subprocess.run([sys.executable, "bench/gpu.py", "--smoke", "--out", str(out)], cwd=ROOT, env=cli_env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    result = json.loads(out.read_text())
    assert (result["gpu"], result["device"], result["smoke"]) == ("CPU", "cpu", True)
    cases = [(r["model"], r["size"], r["frames"], r["attention"], r["cache"]) for r in result["runs"]]
    assert cases == [
        ("tiny-t2v", "64x64", 9, "native", "off"), ("tiny-t2v", "64x64", 9, "native", "balanced"),
        ("tiny-t2v", "96x64", 13, "native", "off"), ("tiny-t2v", "96x64", 13, "native", "balanced"),
        ("tiny-ti2v", "64x64", 9, "native", "off"), ("tiny-ti2v", "64x64", 9, "native", "balanced"),
    ]
    for entry in result["runs"]:
        assert entry["seconds"] > 0 and entry["steps"] == 2 and entry["only"] == "denoise"
        assert (entry["predicted_s"] is None) == (entry["cache"] != "off")
    assert "tiny-t2v 96x64x13 x2 steps" in run.stdout and f"wrote {out}" in run.stdout


def test_the_fit_reads_measured_runs_and_leaves_out_what_it_cannot_use(tmp_path, cli_env):
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
    run = subprocess.run([sys.executable, "-m", "wan_studio", "plan", "--fit", str(results)], cwd=ROOT, env=cli_env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert f"left out: {results}: tiny-t2v on CPU (not a GPU of the table)" in run.stdout
    rows = [line for line in run.stdout.splitlines() if line.startswith("wan2.1-t2v-1.3b 832x480x81")]
    assert len(rows) == 2  # the published 50-step run and the measured 2-step one (the cached one is left out)
    assert any(" 2 steps, NVIDIA GeForce RTX 4090" in row and "7.5" in row for row in rows)
    found = json.loads(run.stdout.strip().splitlines()[-1])
    assert set(found) == {"vae", "default", "hopper"} and found["default"]["linear"] > 0
