"""The first page: launched for real, driven through the Gradio API like a client would."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.conftest import ROOT, read_video


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def running_app(cli_env):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=ROOT, env=cli_env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(url, timeout=2).status == 200:
                break
        except OSError:
            if proc.poll() is not None:
                raise AssertionError(proc.stdout.read())
            time.sleep(0.3)
    else:
        proc.kill()
        raise AssertionError("app did not answer in 120 s")
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def test_page_generates_t2v_and_reports_bad_input(running_app, settings):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    page = urllib.request.urlopen(running_app).read().decode()
    assert "Wan Studio" in page
    client = Client(running_app, verbose=False)
    options = {"width": 96, "height": 64, "frames": 13, "steps": 3, "seed": 21}
    video, recipe = client.predict("tiny-t2v", "a glass of water", options, api_name="/t2v")
    got = read_video(video)
    assert (got["count"], got["width"], got["height"], got["fps"]) == (13, 96, 64, 16.0)
    assert recipe["request"]["seed"] == 21
    assert (settings.output_dir / recipe["output"]["file"]).is_file()

    with pytest.raises(AppError, match="The prompt is empty"):
        client.predict("tiny-t2v", "  ", options, api_name="/t2v")
    with pytest.raises(AppError, match="Frames must be of the form 4k\\+1"):
        client.predict("tiny-t2v", "water", {**options, "frames": 14}, api_name="/t2v")
    with pytest.raises(AppError, match="Unknown option for t2v"):
        client.predict("tiny-t2v", "water", {**options, "cfg": 2}, api_name="/t2v")
    # the server is still up and serves the next job
    video, _ = client.predict("tiny-t2v", "water", {**options, "seed": 22}, api_name="/t2v")
    assert read_video(video)["count"] == 13
