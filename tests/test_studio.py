"""The studio runtime: every generation through the queue; ZeroGPU runs the job in the caller."""

from __future__ import annotations

import json
import threading

import pytest

from tests.conftest import read_video
from wan_studio.cli import main as cli_main
from wan_studio.errors import Cancelled
from wan_studio.requests import T2VRequest
from wan_studio.runtime.studio import JobFailed, Studio


def test_run_goes_through_the_queue_and_reports_position_and_progress(settings):
    studio = Studio(settings)
    studio.start(stats_interval_s=0.2)
    try:
        seen_queued, seen_step_two = threading.Event(), threading.Event()

        def hold(job, event):  # the worker waits until the waiter has seen what this test checks
            if event.kind == "progress" and event.progress.state == "running" and event.progress.step == 1:
                (seen_queued if job.prompt == "one" else seen_step_two).wait(60)

        def on_update(status):
            updates.append(status)
            if status.state == "queued" and status.position == 1:  # the first job runs, this one is next
                seen_queued.set()
            if status.state == "running" and status.step == 1:
                seen_step_two.set()

        studio.worker.add_listener(hold)
        first = studio.submit(T2VRequest(model="tiny-t2v", prompt="one", steps=8, seed=1))
        second = studio.submit(T2VRequest(model="tiny-t2v", prompt="two", steps=3, seed=2))
        updates = []
        result = studio.wait_for_result(second, on_update=on_update)
        assert read_video(result.media)["count"] == 9
        assert studio.store.get(first.id).state == "done"  # FIFO: the first finished before the second
        places = [u.position for u in updates if u.state == "queued"]
        assert updates[0].state == "queued" and places[-1] == 1 and places == sorted(places, reverse=True)
        # its own steps, as the worker reported them ("running" with no step yet: claimed, not yet loading)
        running = [u for u in updates if u.state == "running" and u.total]
        assert running and running[0].step == 1
        assert all(u.job_id == second.id and u.total == 3 for u in running)
        assert [u.step for u in running] == sorted(u.step for u in running)
        assert studio.sampler.latest().ram_total_gb > 0  # the studio started its stats sampler
    finally:
        studio.stop()


def test_failures_and_stops_come_back_as_errors(settings, monkeypatch):
    studio = Studio(settings)
    studio.start()
    try:
        monkeypatch.setattr("pipelines.t2v.run", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("pipeline broke")))
        with pytest.raises(JobFailed, match="pipeline broke"):
            studio.run(T2VRequest(model="tiny-t2v", prompt="boom", seed=1))
        monkeypatch.undo()

        stopped_at = []  # (job id, step): the only job left to run is the long one

        def stop_on_first_step(running, event):
            """Stop the job from its first denoising step: no timer that a fast CPU could outrun."""
            if event.kind == "progress" and event.progress.stage == "denoising" and not stopped_at:
                stopped_at.append((running.id, event.progress.step))
                studio.worker.stop_job(running.id)

        studio.worker.add_listener(stop_on_first_step)
        job = studio.submit(T2VRequest(model="tiny-t2v", prompt="long", steps=200, seed=1))
        with pytest.raises(Cancelled):
            studio.wait_for_result(job)
        assert stopped_at and stopped_at[0][0] == job.id and stopped_at[0][1] < 200  # stopped mid-denoising
        assert studio.store.get(job.id).state == "cancelled"
        assert not list(settings.output_dir.glob("*.mp4"))
    finally:
        studio.stop()


def test_zerogpu_runs_the_job_inside_the_callers_request(settings):
    calls = []

    class FakeGpu:
        """Stands in for spaces.GPU: records that the job ran in the calling thread."""

        def __init__(self, worker):
            self.worker = worker

        def __call__(self, job_id):
            calls.append((job_id, threading.current_thread().name))
            return self.worker.run_job_now(job_id)

    studio = Studio(settings, gpu_call=None)
    studio.gpu_call = FakeGpu(studio.worker)
    studio.start()
    assert not studio.worker.alive  # no worker thread on ZeroGPU
    result = studio.run(T2VRequest(model="tiny-t2v", prompt="on zero", seed=5))
    assert calls and calls[0][1] == threading.current_thread().name
    job = studio.store.get(calls[0][0])
    assert job.state == "done" and job.result_id == result.id  # the queue still records it


def test_queue_cli_adds_a_batch_and_runs_it_headless(settings, tmp_path, capsys):
    batch = tmp_path / "batch.json"
    batch.write_text(json.dumps([{"mode": "t2v", "model": "tiny-t2v", "prompt": f"shot {k}", "seed": k}
                                 for k in range(3)]))
    assert cli_main(["queue", "add", str(batch)]) == 0
    capsys.readouterr()
    assert cli_main(["queue", "list"]) == 0
    listing = capsys.readouterr().out
    assert listing.count("queued") == 3 and listing.index("shot 0") < listing.index("shot 2")
    assert cli_main(["queue", "run", "--quiet"]) == 0
    assert len(list(settings.output_dir.glob("*.mp4"))) == 3
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"model": "tiny-t2v", "prompt": "ok"},
                               {"model": "tiny-t2v", "prompt": "x", "frames": 10}]))
    assert cli_main(["queue", "add", str(bad)]) == 2
    assert "row 2:" in capsys.readouterr().err


def test_the_queue_page_names_results_without_the_servers_folders(settings, monkeypatch):
    from ui import queue_page

    studio = Studio(settings)
    studio.start(stats_interval_s=0.5)
    monkeypatch.setattr(queue_page, "get_studio", lambda _settings: studio)
    try:
        result = studio.run(T2VRequest(model="tiny-t2v", prompt="a kite", steps=2, seed=1))
        rows = queue_page.queue_rows(settings, None)
        assert rows[0][-1] == result.media.name
        assert str(settings.output_dir) not in repr(rows) and "/" not in rows[0][-1]
    finally:
        studio.stop()


def test_unload_frees_the_model_the_studios_worker_holds(settings):
    studio = Studio(settings)
    studio.start(stats_interval_s=0.5)
    try:
        studio.run(T2VRequest(model="tiny-t2v", prompt="a kite", steps=2, seed=1))
        assert studio.engine.swap.active_pipeline is not None
        assert studio.unload_models() == "Models unloaded; memory freed."
        assert studio.engine.swap.active_pipeline is None
    finally:
        studio.stop()
