"""A long job stopped after some of its windows says how many it kept and can be resumed: from the
studio, the command line and the API, the run goes on from the next window and its recipe counts
the windows it reused (wan_studio/runtime/windows.py keeps them, queue/store.py `resume`)."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest

from tests.conftest import read_video, wait_for
from wan_studio.errors import Cancelled
from wan_studio.requests import T2VRequest

# 53 frames of the Tiny T2V checkpoint (17 frames a pass, 5 overlapping): windows of 17 + 12 + 12 + 12
LONG = dict(model="tiny-t2v", prompt="a long shot", frames=53, seed=7)


def stop_once_at_window(worker, window: int, fired: threading.Event):
    """A worker listener that stops the job the first time it denoises `window` (1-based): every window
    before it is saved by then. Once only, so a resumed run goes through."""

    def listener(job, event):
        if event.kind == "progress" and event.progress.clip == window and not fired.is_set():
            fired.set()
            worker.stop_job(job.id)

    return listener


def spy_windows(monkeypatch) -> list[int]:
    """The seed of each window the T2V pipeline makes (window i of a job seeded s: s + i - 1)."""
    import pipelines.t2v

    made, run = [], pipelines.t2v.run
    monkeypatch.setattr(pipelines.t2v, "run", lambda *args: made.append(args[1].seed) or run(*args))
    return made


def test_a_long_job_stopped_after_its_first_window_says_so_and_resume_goes_on_from_the_second(settings,
                                                                                               monkeypatch):
    from ui import queue_page
    from wan_studio.runtime.studio import Studio

    made = spy_windows(monkeypatch)
    studio = Studio(settings)
    studio.start()
    monkeypatch.setattr(queue_page, "get_studio", lambda _settings: studio)
    try:
        studio.worker.add_listener(stop_once_at_window(studio.worker, 2, threading.Event()))
        job = studio.submit(T2VRequest(**LONG))
        stopped = studio.worker.wait(job.id, timeout=300)
        assert stopped.state == "cancelled" and made == [7, 8]  # window 1 made, window 2 begun
        said = "Stopped after window 1 of 4; the window made is kept, and Resume goes on from window 2."
        assert stopped.messages[-1] == said
        status = studio.status(job.id)
        assert status.resumable and (status.kept_windows, status.clips) == (1, 4)
        assert said in status.describe()
        with pytest.raises(Cancelled, match=re.escape(said)):  # what the page shows for the stopped job
            studio.result_of(stopped)
        assert [row[-1] for row in queue_page.queue_rows(settings, None) if row[0] == job.id] == [said]

        made.clear()
        assert studio.resume(job.id).state == "queued"
        result = studio.wait_for_result(studio.store.get(job.id), timeout_s=300)
        assert made == [8, 9, 10]  # windows 2 to 4 only
        assert read_video(result.media)["count"] == 53
        assert result.recipe["windows"]["resumed_windows"] == 1
        done = studio.store.get(job.id)
        assert done.state == "done" and "Resumed: window 1 of 4 is kept; it goes on from window 2." in done.messages
        assert not studio.status(job.id).resumable
    finally:
        studio.stop()


def test_a_job_stopped_with_nothing_kept_says_so_and_cannot_be_resumed(settings, engine):
    from wan_studio.queue.store import JobStore, QueueError
    from wan_studio.queue.worker import QueueWorker

    store = JobStore(settings.output_dir / "queue.db", settings.output_dir / ".queue" / "inputs")
    worker = QueueWorker(store, engine)
    worker.add_listener(stop_once_at_window(worker, 1, threading.Event()))  # in the first window
    job = store.add(T2VRequest(**LONG))
    stopped = worker.run_job_now(job.id)
    assert stopped.state == "cancelled" and stopped.messages[-1] == "Stopped by the user; nothing was saved."
    assert not stopped.resumable
    with pytest.raises(QueueError, match=f"Job {job.id} is cancelled and kept no finished windows"):
        store.resume(job.id)
    store.close()


def test_the_command_line_says_how_to_resume_and_queue_resume_goes_on_from_the_third_window(settings, monkeypatch,
                                                                                            capsys):
    from tests.test_queue import queue_main
    from wan_studio.cli.jobs import run_through_queue
    from wan_studio.queue.worker import QueueWorker
    from wan_studio.runtime.library import OutputLibrary

    made = spy_windows(monkeypatch)
    fired, plain_init = threading.Event(), QueueWorker.__init__

    def init_and_stop_at_window_3(self, *args, **kwargs):  # the worker `generate` starts for its own job
        plain_init(self, *args, **kwargs)
        self.add_listener(stop_once_at_window(self, 3, fired))

    monkeypatch.setattr(QueueWorker, "__init__", init_and_stop_at_window_3)
    with pytest.raises(Cancelled) as stopped:
        run_through_queue(T2VRequest(**LONG), settings, quiet=True)
    job_id = str(stopped.value).rsplit(" ", 1)[-1]
    assert str(stopped.value) == ("Stopped after window 2 of 4; the 2 windows made are kept, and Resume goes on from "
                                  f"window 3. Resume it: python -m wan_studio queue resume {job_id}")
    assert queue_main(["list"], settings) == 0
    assert "the 2 windows made are kept" in capsys.readouterr().out

    made.clear()
    assert queue_main(["resume", job_id], settings) == 0
    assert capsys.readouterr().out.strip() == (f"{job_id} queued (attempt 2, place 1): Resumed: windows 1-2 of 4 are "
                                               "kept; it goes on from window 3.")
    assert queue_main(["resume", job_id], settings) == 2  # queued now: nothing to resume
    assert f"Job {job_id} is queued and kept no finished windows" in capsys.readouterr().err
    assert queue_main(["run", "--quiet"], settings) == 0
    line = capsys.readouterr().out.split()
    assert line[:2] == [job_id, "done"] and made == [9, 10]  # windows 3 and 4
    assert read_video(Path(line[2]))["count"] == 53
    result = OutputLibrary(settings.output_dir).get(Path(line[2]).stem)
    assert result.recipe["windows"]["resumed_windows"] == 2


def test_the_api_marks_a_stopped_long_job_resumable_and_resume_finishes_it(settings, engine, cli_env):
    from gradio_client import Client

    from tests.test_app import launch
    from wan_studio.queue.store import JobStore
    from wan_studio.queue.worker import QueueWorker

    store = JobStore(settings.output_dir / "queue.db", settings.output_dir / ".queue" / "inputs")
    worker = QueueWorker(store, engine)
    worker.add_listener(stop_once_at_window(worker, 2, threading.Event()))
    job = store.add(T2VRequest(**LONG))
    assert worker.run_job_now(job.id).state == "cancelled"  # stopped here before the app serves the queue
    store.close()

    proc, url = launch(cli_env)
    try:
        client = Client(url, verbose=False)
        (row,) = [row for row in client.predict(api_name="/queue") if row["id"] == job.id]
        assert (row["state"], row["resumable"], row["kept_windows"], row["clips"]) == ("cancelled", True, 1, 4)
        assert client.predict(job.id, api_name="/resume") == "queued"

        def finished():
            (now,) = [row for row in client.predict(api_name="/queue") if row["id"] == job.id]
            return now if now["state"] in ("done", "failed", "cancelled") else None

        wait_for(finished, "the resumed job to end")
        done = finished()
        assert done["state"] == "done" and not done["resumable"], done
        assert read_video(Path(done["result"]))["count"] == 53
        result = engine.library.get(Path(done["result"]).stem)
        assert result.recipe["windows"]["resumed_windows"] == 1
    finally:
        proc.terminate()
        proc.wait(timeout=30)
