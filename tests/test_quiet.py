"""Quiet tools: with --quiet the CLI prints its result on stdout and nothing else, and our own errors
still reach stderr; library log lines a user can do nothing about (torchao's kernel libraries that do
not load on this build, torch's deprecation notice aimed at torchao) never reach it."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, read_video
from wan_studio.backend import LIBRARY_NOISE, quiet_library_noise


def run_cli(env, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wan_studio", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


def test_a_quiet_generate_prints_only_its_result(cli_env):
    # the first model load imports torchao (through transformers), whose lines came at import
    proc = run_cli(cli_env, "generate", "--model", "tiny-t2v", "--prompt", "a paper boat", "--seed", "3",
                   "--frames", "5", "--size", "64x64", "--steps", "2", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    lines = proc.stdout.splitlines()
    assert len(lines) == 1 and lines[0].endswith(".mp4"), proc.stdout
    assert read_video(Path(lines[0]))["count"] == 5


def test_a_quiet_command_still_says_what_went_wrong(cli_env):
    proc = run_cli(cli_env, "generate", "--model", "tiny-t2v", "--prompt", "x", "--frames", "12", "--quiet")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("error: Frames must be of the form 4k+1") and proc.stderr.count("\n") == 1


def test_only_the_named_library_lines_are_dropped():
    quiet_library_noise()
    filters = {name: list(logging.getLogger(name).filters) for name, _ in LIBRARY_NOISE}
    quiet_library_noise()  # again, as import_ml does after the CLI: nothing is added twice
    assert {name: list(logging.getLogger(name).filters) for name, _ in LIBRARY_NOISE} == filters
    for name, text in LIBRARY_NOISE:
        logger, seen = logging.getLogger(name), []
        handler = logging.Handler(logging.DEBUG)
        handler.emit = lambda record: seen.append(record.getMessage())
        logger.addHandler(handler)
        try:
            logger.warning("before %s after", text)
            logger.warning("another warning from the same library")
            logger.error("an error from the same library")
        finally:
            logger.removeHandler(handler)
        assert seen == ["another warning from the same library", "an error from the same library"], name
