"""Downloads from the Settings page: bytes, speed and time left while they run, a Stop that keeps
the files already finished, and a Download again that fetches only the rest. Run against a small
stand-in for the Hub on 127.0.0.1 (tests/hub_fixtures.py): the real download code, real HTTP,
real cache files."""

from __future__ import annotations

import pytest

from tests.conftest import read_video, wait_for
from tests.hub_fixtures import MiniHub
from wan_studio import catalog

WAIT_S = 120  # the browser's bound for a broken download, not a timing


@pytest.fixture
def hub(settings, tmp_path, monkeypatch):
    import huggingface_hub.constants as constants

    # 24 MiB that a truncated or doubled copy cannot match: the client writes what it receives in
    # chunks of 10 MiB (huggingface_hub's DOWNLOAD_CHUNK_SIZE), so half of it reaches the disk
    weights = bytes(range(256)) * (24 * 4096)
    files = {"model_index.json": b'{"_class_name": "WanPipeline"}',
             "transformer/diffusion_pytorch_model.safetensors": weights}
    server = MiniHub(files, hold_after=len(weights) // 2)  # the small file comes whole, the weights stop halfway
    cache = tmp_path / "hf-cache"
    for name, value in (("HF_ENDPOINT", server.url), ("HF_HUB_CACHE", str(cache))):
        monkeypatch.setenv(name, value)  # for the download's own process
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "ENDPOINT", server.url)  # for this process's listing and cache reads
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    try:
        yield server, files
    finally:
        server.close()


def test_a_download_shows_its_bytes_stops_at_once_and_fetches_only_the_rest_again(hub):
    from wan_studio.models.downloads import Downloads, bytes_in_cache, repo_cache_folder

    server, files = hub
    record = catalog.get("wan2.1-t2v-1.3b")
    weights = "transformer/diffusion_pytorch_model.safetensors"
    downloads = Downloads(poll_s=0.05)
    running = downloads.start(record)
    assert running.total_bytes == sum(len(data) for data in files.values())  # what the model needs, as listed
    chunk = 10 * 2**20
    wait_for(lambda: server.holding.is_set() and running.done_bytes >= chunk, "the first 10 MiB of the weights")
    assert running.state == "running"
    assert running.describe().startswith("Downloading Wan 2.1 T2V 1.3B: 10.5 MB of 25.2 MB")
    stopped = downloads.stop(record.id)  # in the middle of the weights
    assert stopped.state == "stopped"
    assert stopped.describe() == ("Stopped Wan 2.1 T2V 1.3B at 30 B of 25.2 MB; "
                                  "Download again keeps the files already finished.")
    assert bytes_in_cache(record.repo_id) == len(files["model_index.json"])  # no half file left behind
    server.release()
    again = downloads.start(record)
    wait_for(lambda: again.state != "running", "the second download")
    assert again.state == "done", again.message
    assert again.describe() == "Downloaded Wan 2.1 T2V 1.3B (25.2 MB)."
    # the finished file was not fetched again; the weights twice (files download side by side: no order)
    assert (server.fetched.count("model_index.json"), server.fetched.count(weights)) == (1, 2)
    snapshot = next((repo_cache_folder(record.repo_id) / "snapshots").iterdir())
    for name, data in files.items():
        assert (snapshot / name).read_bytes() == data


def test_a_download_that_cannot_reach_the_hub_says_so(settings, monkeypatch):
    import huggingface_hub.constants as constants

    from wan_studio.errors import ModelNotAvailable
    from wan_studio.models.downloads import Downloads

    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing answers there
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    with pytest.raises(ModelNotAvailable,
                       match="Could not list Wan-AI/Wan2.1-T2V-1.3B-Diffusers on the Hugging Face Hub"):
        Downloads().start(catalog.get("wan2.1-t2v-1.3b"))


def test_a_refused_hub_is_said_at_once_and_a_proxy_is_left_to_decide(monkeypatch):
    """A machine with no network gets its answer from one try, not from the library's five retries;
    behind a proxy the direct address says nothing, so no verdict is given there."""
    import huggingface_hub.constants as constants

    from wan_studio.models.hub import unreachable_reason

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert "127.0.0.1:9 cannot be reached (ConnectionRefusedError" in unreachable_reason()
    monkeypatch.setattr(constants, "ENDPOINT", "https://no-such-host.invalid")
    assert "no-such-host.invalid:443 cannot be reached (gaierror" in unreachable_reason()
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    assert unreachable_reason() is None


def test_a_job_for_a_model_not_here_downloads_it_first_and_shows_its_bytes(hub_with_a_model, settings):
    """A queued job whose model this machine lacks (a studio's first run of it, a cluster node
    without it): the queue shows the download's bytes, then the job runs on the downloaded files."""
    from ui import queue_page
    from wan_studio.requests import T2VRequest
    from wan_studio.runtime.studio import Studio

    server = hub_with_a_model
    studio = Studio(settings)
    studio.start(stats_interval_s=0.5)
    try:
        # (its plan pinned: the estimate is for the real 1.3B, which this machine's RAM need not fit)
        job = studio.submit(T2VRequest(model="wan2.1-t2v-1.3b", prompt="a lighthouse", frames=9, width=64, height=64,
                                       steps=2, seed=3, memory_plan="max-speed"))
        rows = []

        def downloading():
            original = queue_page.get_studio
            queue_page.get_studio = lambda _settings: studio
            try:
                rows[:] = [row for row in queue_page.queue_rows(settings, None) if row[0] == job.id]
            finally:
                queue_page.get_studio = original
            return server.holding.is_set() and rows and rows[0][4].startswith("Downloading Wan 2.1 T2V 1.3B: ")

        wait_for(downloading, "the queue to show the download")
        assert rows[0][1] == "running" and " of " in rows[0][4]  # bytes so far, of the model's bytes
        server.release()
        final = studio.worker.wait(job.id, timeout=600)
        assert final.state == "done", final.error_message
        assert read_video(final.result_path)["count"] == 9
    finally:
        studio.stop()


def test_the_settings_page_downloads_shows_progress_and_stops(hub, tmp_path, tiny_dir):
    """As a person would: Settings, pick a checkpoint, Download: the line under it counts the bytes;
    Stop ends it; Download again finishes it, and the table says the checkpoint is here."""
    import os

    from playwright.sync_api import expect, sync_playwright

    from tests.test_app import launch

    server, files = hub
    env = dict(os.environ, WAN_STUDIO_OUTPUT_DIR=str(tmp_path / "outputs"),
               WAN_STUDIO_MODELS_DIR=str(tmp_path / "models"), WAN_STUDIO_TINY_MODELS_DIR=str(tiny_dir),
               WAN_STUDIO_DEFAULT_GENERATION="tiny",
               WAN_STUDIO_CONFIG=str(tmp_path / "config.json"))
    proc, url = launch(env)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            page = browser.new_page()
            page.set_default_timeout(WAIT_S * 1000)
            expect.set_options(timeout=WAIT_S * 1000)
            page.goto(url)
            page.wait_for_function("() => document.querySelector('#t2v-cost')?.innerText.includes('frames')")
            page.click("#nav-settings")
            page.click("#settings-download-model input")
            page.get_by_role("option", name="Wan 2.1 T2V 1.3B", exact=True).click()
            page.click("#settings-download")
            status = page.locator("#settings-download-status")
            expect(status).to_contain_text("10.5 MB of 25.2 MB")  # held halfway through the weights
            page.click("#settings-download-stop")
            expect(status).to_contain_text("Stopped Wan 2.1 T2V 1.3B at 30 B of 25.2 MB")
            server.release()
            page.click("#settings-download")
            expect(status).to_contain_text("Downloaded Wan 2.1 T2V 1.3B (25.2 MB).")
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
