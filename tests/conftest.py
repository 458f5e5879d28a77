"""Shared fixtures: tiny models built once per session, a fresh output folder per test."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
# The suite never needs the Hub; a test that wants the network to fail sets it up itself.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Under pytest-xdist (`make test` runs one worker per core) each worker, and every CLI or app
# process it starts, keeps to one CPU thread: two workers with two threads each would fight
# over two cores.
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER")
if XDIST_WORKER:
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")


# The files that take longest, by worker-seconds of a 2-core run. pytest-xdist hands out whole files in
# this order only with --no-loadscope-reorder (by default it orders them by their number of tests); the
# Makefile does not pass it (see docs/development.md#tests), so today the order is a record, not in force
LONGEST_FIRST = ("browser/test_browser_library", "browser/test_browser_create", "test_parallel",
                 "browser/test_browser_pages", "test_compile", "test_cluster", "test_app", "test_pool", "test_modes",
                 "test_models", "test_cli", "test_long_video")


def pytest_collection_modifyitems(items):
    def rank(item):
        path = item.nodeid.split("::")[0]
        return next((k for k, name in enumerate(LONGEST_FIRST) if path == f"tests/{name}.py"), len(LONGEST_FIRST))

    items.sort(key=rank)  # (stable: the order within a file and among the rest stays)


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory) -> Path:
    """The Tiny models, built once per run: the xdist workers share one folder (the builder
    takes a file lock per model, so two workers never build the same one)."""
    if XDIST_WORKER:
        shared = tmp_path_factory.getbasetemp().parent / "tiny-models"
        shared.mkdir(exist_ok=True)
        return shared
    return tmp_path_factory.mktemp("tiny-models")


@pytest.fixture(scope="session")
def running_app(tmp_path_factory, tiny_dir):
    """One app (uploads up to 200 KB, a LoRA folder of its own) per pytest worker, for the API tests of
    every module; each test checks only the jobs it made. An app start costs ~10 CPU-seconds."""
    from tests.test_app import launch  # (test_app imports this module)

    base = tmp_path_factory.mktemp("app")
    env = dict(os.environ, WAN_STUDIO_OUTPUT_DIR=str(base / "outputs"), WAN_STUDIO_MODELS_DIR=str(base / "models"),
               WAN_STUDIO_TINY_MODELS_DIR=str(tiny_dir), WAN_STUDIO_LORAS_DIR=str(base / "loras"))
    proc, url = launch(env, "--max-upload", "200KB")
    yield SimpleNamespace(url=url, outputs=base / "outputs", loras=base / "loras", log_path=proc.log_path)
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture
def settings(tmp_path, tiny_dir, monkeypatch):
    from wan_studio.settings import load_settings

    monkeypatch.setenv("WAN_STUDIO_OUTPUT_DIR", str(tmp_path / "outputs"))
    monkeypatch.setenv("WAN_STUDIO_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("WAN_STUDIO_TINY_MODELS_DIR", str(tiny_dir))
    return load_settings()


@pytest.fixture
def engine(settings):
    from wan_studio.runtime.engine import Engine

    return Engine(settings)


@pytest.fixture
def cli_env(settings) -> dict:
    """Environment for a CLI subprocess that uses this test's folders."""
    return dict(os.environ)


def run_cli_here(capsys, *args: str) -> subprocess.CompletedProcess:
    """The command line's own main in this process, with the exit code, stdout and stderr a run of it
    shows: for checks of what a command does, where a fresh process is not the point."""
    from wan_studio.cli import main

    capsys.readouterr()  # (what the test printed before)
    code = main(list(args))
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(list(args), code, out, err)


def read_video(path: Path) -> dict:
    """What a player sees: codec, pixel format, size, fps, frame count and decoded frames."""
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    width, height = meta["size"]
    frames = [np.frombuffer(buf, np.uint8).reshape(height, width, 3) for buf in reader]
    return {"codec": meta["codec"], "pix_fmt": meta["pix_fmt"], "width": width, "height": height,
            "fps": meta["fps"], "frames": np.stack(frames), "count": len(frames)}


def wait_for(condition, what: str, bound_s: float = 300) -> None:
    """Poll `condition` until it holds; fail naming `what` after `bound_s` (a bound for something
    broken, never a timing a test depends on)."""
    import time

    deadline = time.monotonic() + bound_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting for {what} after {bound_s:g} s")
        time.sleep(0.05)


@pytest.fixture
def hub_with_a_model(settings, tmp_path, monkeypatch):
    """The stand-in Hub serving a real (Tiny) pipeline as Wan 2.1 T2V 1.3B, its largest file held
    halfway until the test releases it."""
    import huggingface_hub.constants as constants

    from tests.hub_fixtures import MiniHub
    from wan_studio import catalog, models

    folder = models.resolve(catalog.get("tiny-t2v"), settings)
    files = {str(path.relative_to(folder)): path.read_bytes() for path in folder.rglob("*") if path.is_file()}
    server = MiniHub(files, hold_after=max(len(data) for data in files.values()) // 2)
    cache = tmp_path / "hf-cache"
    for name, value in (("HF_ENDPOINT", server.url), ("HF_HUB_CACHE", str(cache))):
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "ENDPOINT", server.url)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    try:
        yield server
    finally:
        server.release()
        server.close()
