"""The command line, end to end in subprocesses, as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from tests.conftest import ROOT, read_video, run_cli_here


def run_cli(env, *args, timeout=300):
    return subprocess.run([sys.executable, "-m", "wan_studio", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_generate_prints_the_path_and_recipe_rerun_reproduces(cli_env, settings, capsys):
    proc = run_cli(cli_env, "generate", "--mode", "t2v", "--model", "tiny-t2v-moe", "--prompt", "a paper boat",
                   "--seed", "5", "--frames", "13", "--size", "96x64")
    assert proc.returncode == 0, proc.stderr
    path = Path(proc.stdout.strip())
    assert path.parent == settings.output_dir and path.suffix == ".mp4"
    video = read_video(path)
    assert (video["count"], video["width"], video["height"], video["fps"]) == (13, 96, 64, 16.0)

    # --recipe with the JSON, and with the mp4 itself (its recipe is embedded); the second in this
    # process (the command's own main), as a fresh start is checked by the first
    for recipe in (path.with_suffix(".json"), path):
        if recipe.suffix == ".json":
            again = run_cli(cli_env, "generate", "--recipe", str(recipe), "--quiet")
        else:
            again = run_cli_here(capsys, "generate", "--recipe", str(recipe), "--quiet")
        assert again.returncode == 0, again.stderr
        assert "it/s]" not in again.stderr, again.stderr  # --quiet: no library progress bars either
        rerun = Path(again.stdout.strip())
        assert rerun != path
        assert np.array_equal(read_video(rerun)["frames"], video["frames"])
        assert json.loads(rerun.with_suffix(".json").read_text())["request"]["seed"] == 5


def test_generate_reports_bad_input_without_traceback(cli_env, settings):
    proc = run_cli(cli_env, "generate", "--model", "tiny-t2v", "--prompt", "x", "--frames", "12")
    assert proc.returncode == 2
    assert "error: Frames must be of the form 4k+1" in proc.stderr and "Traceback" not in proc.stderr
    bad_recipe = settings.output_dir.parent / "bad.json"
    bad_recipe.write_text("{not json")
    proc = run_cli(cli_env, "generate", "--recipe", str(bad_recipe))
    assert proc.returncode == 2 and "is not a valid recipe JSON file" in proc.stderr
    proc = run_cli(cli_env, "generate", "--model", "nope", "--prompt", "x")
    assert proc.returncode == 2 and "Unknown model 'nope'" in proc.stderr
    assert not settings.output_dir.exists() or not any(settings.output_dir.iterdir())


def test_models_lists_catalog_with_download_state(cli_env):
    proc = run_cli(cli_env, "models")
    assert proc.returncode == 0
    lines = proc.stdout.splitlines()
    assert any(line.startswith("wan2.2-t2v-a14b") and "not downloaded (about 69.0 GB)" in line for line in lines)
    assert any(line.startswith("tiny-t2v ") and "built-in" in line for line in lines)
    assert any("(Wan 2.7)" in line and "API-only" in line for line in lines)
    listed = json.loads(run_cli(cli_env, "models", "--json").stdout)
    assert {row["id"] for row in listed} >= {"wan2.1-t2v-1.3b", "wan2.2-animate-14b", "tiny-animate"}


def test_download_without_hub_explains(cli_env):
    proc = run_cli(cli_env, "download", "wan2.2-ti2v-5b")
    assert proc.returncode == 2
    assert "about 24.1 GB" in proc.stderr and "python -m wan_studio download wan2.2-ti2v-5b" in proc.stderr


def test_engine_runs_a_job_without_importing_gradio(cli_env):
    code = (
        "import sys\n"
        "from wan_studio.runtime.engine import Engine\n"
        "from wan_studio.requests import T2VRequest\n"
        "r = Engine().generate(T2VRequest(model='tiny-t2v', prompt='a kite', seed=2))\n"
        "assert r.media.is_file()\n"
        "print('gradio' in sys.modules, r.media)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=cli_env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("False ")


def test_a_mistyped_path_is_named_as_typed_with_its_flag(settings, capsys):
    from wan_studio.cli import main as cli_main

    missing = settings.output_dir.parent / "photos" / "missing.png"
    assert cli_main(["generate", "--mode", "i2v", "--model", "tiny-i2v", "--prompt", "x", "--image", str(missing)]) == 2
    err = capsys.readouterr().err
    assert f"--image {missing}: no such file." in err and "upload" not in err
