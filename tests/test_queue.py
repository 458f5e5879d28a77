"""The job queue: persisted FIFO, actions and their errors, one worker, restart after kill -9."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import ClassVar

import pytest

from tests.conftest import ROOT
from wan_studio.errors import Cancelled, RequestError, StudioError
from wan_studio.queue.batch import load_batch
from wan_studio.queue.status import JobStatus
from wan_studio.queue.store import REQUEUED_MESSAGE, JobStore, QueueError
from wan_studio.queue.worker import QueueWorker
from wan_studio.requests import T2VRequest
from wan_studio.runtime.library import OutputLibrary

SLOW = dict(steps=40, frames=33, width=192, height=192)  # a few seconds on a CPU: time to stop or kill it


def t2v(prompt: str, **fields) -> T2VRequest:
    fields.setdefault("seed", 1)
    return T2VRequest(model="tiny-t2v", prompt=prompt, **fields)


@pytest.fixture
def store(tmp_path) -> JobStore:
    store = JobStore(tmp_path / "queue" / "queue.db", tmp_path / "queue" / "inputs", busy_timeout_s=2.0)
    yield store
    store.close()


@pytest.fixture
def make_worker():
    workers = []

    def make(*args, **kwargs) -> QueueWorker:
        kwargs.setdefault("poll_interval_s", 0.2)
        worker = QueueWorker(*args, **kwargs)
        workers.append(worker)
        return worker

    yield make
    for worker in workers:
        worker.stop(timeout=30)


@dataclass
class ImageT2VRequest(T2VRequest):
    """A request with a file field, known only to these tests."""

    file_fields: ClassVar[tuple[str, ...]] = ("image",)
    image: str | None = None


class FakeEngine:
    """Records what runs and when; steps call on_progress and honour cancel like the real engine."""

    def __init__(self, tmp_path: Path, steps: int = 3, step_s: float = 0.0):
        self.calls: list[str] = []
        self.steps, self.step_s = steps, step_s
        self.on_job = {}  # prompt -> function called before the job's steps
        self.swap = SimpleNamespace(unload_all=lambda: self.calls.append("unload"),
                                    release=lambda: self.calls.append("free"))
        self.library = OutputLibrary(tmp_path / "fake-outputs")

    def run(self, request, on_progress=None, cancel=None):
        self.calls.append(f"job:{request.prompt}")
        if request.prompt in self.on_job:
            self.on_job[request.prompt]()
        for step in range(1, self.steps + 1):
            time.sleep(self.step_s)
            on_progress(JobStatus("running", step=step, total=self.steps, elapsed_s=step * self.step_s,
                                  remaining_s=0.0))
            if cancel is not None and cancel.is_set():
                raise Cancelled("Stopped by the user; nothing was saved.")
        return SimpleNamespace(id=f"fake-{request.prompt}", media=Path(f"/nowhere/{request.prompt}.mp4"))


def queue_main(argv: list[str], settings) -> int:
    """What `python -m wan_studio queue ...` does once cli.py dispatches to queue_cli."""
    from wan_studio.cli.queue import add_queue_parser, cmd_queue

    parser = argparse.ArgumentParser(prog="wan_studio")
    add_queue_parser(parser.add_subparsers(dest="command", required=True))
    try:
        return cmd_queue(parser.parse_args(["queue", *argv]), settings)
    except StudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


QUEUE_SCRIPT = (
    "import argparse, sys\n"
    "from wan_studio.cli.queue import add_queue_parser, cmd_queue\n"
    "from wan_studio.settings import load_settings\n"
    "parser = argparse.ArgumentParser()\n"
    "add_queue_parser(parser.add_subparsers(dest='command'))\n"
    "sys.exit(cmd_queue(parser.parse_args(['queue', *sys.argv[1:]]), load_settings()))\n"
)


FREEZING_QUEUE_SCRIPT = (  # the queue runner, frozen at step 2 of its first job so a kill lands mid-run
    "import sys, threading\n"
    "from pathlib import Path\n"
    "from wan_studio.queue.worker import QueueWorker\n"
    "marker = Path(sys.argv.pop(1))\n"
    "def freeze_at_step_two(job, event):\n"
    "    if event.kind == 'progress' and event.progress.stage == 'denoising' and event.progress.step == 2:\n"
    "        marker.touch()\n"
    "        threading.Event().wait()\n"
    "plain_init = QueueWorker.__init__\n"
    "def init_and_freeze(self, *args, **kwargs):\n"
    "    plain_init(self, *args, **kwargs)\n"
    "    self.add_listener(freeze_at_step_two)\n"
    "QueueWorker.__init__ = init_and_freeze\n"
    + QUEUE_SCRIPT
)


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


# -- order, results, listeners ----------------------------------------------------------------
def test_jobs_run_in_fifo_order_and_record_their_results(store, engine, make_worker):
    jobs = store.add_many([t2v("first"), t2v("second"), t2v("third")])
    worker = make_worker(store, engine)
    heard: list[tuple[str, str]] = []
    worker.add_listener(lambda job, event: heard.append((job.id, event.kind)))
    worker.add_listener(lambda job, event: 1 / 0)  # a broken listener is logged, never fatal
    worker.run_until_empty()

    started = [job_id for job_id, kind in heard if kind == "started"]
    assert started == [job.id for job in jobs]
    assert [job_id for job_id, kind in heard if kind == "finished"] == started
    assert sum(kind == "progress" for _, kind in heard) >= 3 * 4
    for job in jobs:
        done = store.get(job.id)
        assert done.state == "done" and done.started <= done.finished
        assert Path(done.result_path).is_file() and done.result_id in done.result_path
        assert done.request == job.request  # the full typed request, seed included
    assert store.next_queued() is None


def test_stop_running_job_within_one_step_and_cancel_queued(store, engine, settings, make_worker):
    slow, skipped, after = store.add_many([t2v("slow", **SLOW), t2v("skipped"), t2v("after")])
    worker = make_worker(store, engine)
    steps: list[int] = []
    at_step_two, stop_sent = threading.Event(), threading.Event()

    def hold_at_step_two(job, event):
        """The slow job waits at step 2 until the stop is sent: however fast the CPU, it is mid-run."""
        if event.kind == "progress" and job.id == slow.id and event.progress.stage == "denoising":
            steps.append(event.progress.step)
            if event.progress.step == 2:
                at_step_two.set()
                stop_sent.wait(120)

    worker.add_listener(hold_at_step_two)
    worker.start()
    worker.start()  # idempotent
    try:
        assert at_step_two.wait(120), "the slow job did not reach step 2 in 120 s"
        status = worker.status(slow.id)
        assert status.state == "running" and (status.step, status.total) == (2, SLOW["steps"])
        assert status.job_id == slow.id and status.elapsed_s > 0 and status.remaining_s is not None
        assert worker.stop_job(skipped.id).state == "cancelled"  # a queued job: cancelled at once
        assert worker.stop_job(slow.id).state == "running"  # running here: stopped at its next step
    finally:
        stop_sent.set()

    stopped = worker.wait(slow.id, timeout=60)
    assert stopped.state == "cancelled" and stopped.result_path is None
    assert max(steps) <= 3 < SLOW["steps"]  # stopped within one step of the request
    assert worker.wait(after.id, timeout=60).state == "done"
    assert store.get(skipped.id).started is None  # never ran
    # nothing of the stopped job in the output folder: only the one finished result
    names = sorted(p.name for p in settings.output_dir.iterdir())
    result_id = store.get(after.id).result_id
    assert names == sorted(f"{result_id}{ext}" for ext in (".mp4", ".jpg", ".json"))
    assert worker.status(slow.id) is None


# -- actions and their errors -----------------------------------------------------------------
def test_move_edit_remove_cancel_and_their_errors(store):
    a, b, c, d = store.add_many([t2v(name) for name in "abcd"])
    order = lambda: [job.request["prompt"] for job in store.list(states=["queued"])]  # noqa: E731

    store.move(c.id, "up")
    assert order() == ["a", "c", "b", "d"]
    store.move(a.id, "down")
    assert order() == ["c", "a", "b", "d"]
    store.move(d.id, "top")
    assert order() == ["d", "c", "a", "b"]
    store.move(d.id, "up")  # already first: stays
    assert order() == ["d", "c", "a", "b"] and store.queue_position(b.id) == 4
    with pytest.raises(QueueError, match="direction"):
        store.move(a.id, "sideways")

    edited = store.edit(a.id, t2v("a, edited", steps=2, seed=7))
    assert edited.request["prompt"] == "a, edited" and edited.request["steps"] == 2 and edited.request["seed"] == 7
    assert order() == ["d", "c", "a, edited", "b"]
    with pytest.raises(TypeError):
        store.edit(a.id, {"prompt": "not a typed request"})
    with pytest.raises(RequestError, match="4k\\+1"):
        store.edit(a.id, t2v("bad", frames=10))  # invalid requests cannot even be built

    store.cancel(b.id)
    assert store.get(b.id).state == "cancelled" and store.queue_position(b.id) is None
    for action in (lambda: store.cancel(b.id), lambda: store.move(b.id, "up"), lambda: store.edit(b.id, t2v("x"))):
        with pytest.raises(QueueError, match=f"Job {b.id} is cancelled"):
            action()

    running = store.claim()
    assert running.id == d.id and running.state == "running"
    with pytest.raises(QueueError, match=f"Job {d.id} is running; stop it instead of removing it."):
        store.remove(d.id)
    with pytest.raises(QueueError, match="stop it instead of cancelling"):
        store.cancel(d.id)
    with pytest.raises(QueueError, match="only failed, interrupted or cancelled"):
        store.retry(d.id)
    with pytest.raises(QueueError, match="only failed, interrupted or cancelled"):
        store.retry(c.id)  # queued
    store.mark_done(d.id, SimpleNamespace(id="r1", media=Path("/out/r1.mp4")))
    with pytest.raises(QueueError, match="only failed, interrupted or cancelled"):
        store.retry(d.id)
    with pytest.raises(QueueError, match="not running"):
        store.mark_done(d.id, SimpleNamespace(id="r1", media=Path("/out/r1.mp4")))

    store.remove(c.id)
    store.remove(d.id)  # finished jobs can be removed too
    assert [job.id for job in store.list()] == [a.id, b.id]
    with pytest.raises(QueueError, match=f"no job {c.id}"):
        store.remove(c.id)
    assert store.get(c.id) is None

    # a retried cancelled job goes to the tail with the same request
    store.add(t2v("e"))
    retried = store.retry(b.id)
    assert retried.state == "queued" and retried.attempts == 2 and order() == ["a, edited", "e", "b"]
    assert retried.request == b.request


def test_list_orders_running_queued_then_history_newest_first_and_filters_owner(store):
    jobs = store.add_many([t2v(f"p{i}") for i in range(5)], owner="alice")
    other = store.add(t2v("bob's"), owner="bob")
    for job in jobs[:3]:
        store.claim()
        store.mark_done(job.id, SimpleNamespace(id=job.id, media=Path(f"/out/{job.id}.mp4")))
        time.sleep(0.01)
    store.claim()
    listed = [job.id for job in store.list()]
    assert listed == [jobs[3].id, jobs[4].id, other.id, jobs[2].id, jobs[1].id, jobs[0].id]
    assert [job.id for job in store.list(history_limit=1)][-1] == jobs[2].id and len(store.list(history_limit=1)) == 4
    assert [job.id for job in store.list(owner="bob")] == [other.id]
    assert [job.id for job in store.list(states=["done"])] == [jobs[2].id, jobs[1].id, jobs[0].id]
    with pytest.raises(QueueError, match="Unknown job state"):
        store.list(states=["finished"])


def test_input_files_are_copied_into_the_queue_and_follow_the_job(store, tmp_path):
    original = tmp_path / "photo.PNG"
    original.write_bytes(b"\x89PNG fake image bytes")
    job = store.add(ImageT2VRequest(model="tiny-t2v", prompt="animate this", seed=3, image=str(original)))
    copy = Path(job.request["image"])
    assert copy == store.inputs_dir / job.id / "image.png" and copy.read_bytes() == original.read_bytes()
    original.unlink()  # the user deletes the original: the job still has its copy
    assert Path(store.get(job.id).request["image"]).is_file()

    # editing with the job's own copy keeps it; with a new file replaces it
    kept = store.edit(job.id, ImageT2VRequest(model="tiny-t2v", prompt="again", seed=3, image=str(copy)))
    assert kept.request["image"] == str(copy.resolve()) and copy.is_file()
    other = tmp_path / "other.jpg"
    other.write_bytes(b"jpeg")
    replaced = store.edit(job.id, ImageT2VRequest(model="tiny-t2v", prompt="again", seed=3, image=str(other)))
    assert Path(replaced.request["image"]).read_bytes() == b"jpeg"
    assert [p.name for p in (store.inputs_dir / job.id).iterdir()] == ["image.jpg"]

    # all or nothing: a missing file in the second request queues neither
    fine = tmp_path / "fine.png"
    fine.write_bytes(b"ok")
    with pytest.raises(RequestError, match="missing.png"):
        store.add_many([ImageT2VRequest(model="tiny-t2v", prompt="ok", image=str(fine)),
                        ImageT2VRequest(model="tiny-t2v", prompt="bad", image=str(tmp_path / "missing.png"))])
    assert [j.id for j in store.list()] == [job.id]
    assert [p.name for p in store.inputs_dir.iterdir()] == [job.id]

    store.remove(job.id)
    assert not (store.inputs_dir / job.id).exists()


# -- failures and retry -------------------------------------------------------------------------
def test_failed_job_is_recorded_structurally_and_the_next_runs_then_retry_works(store, engine, make_worker,
                                                                                 monkeypatch):
    real_generate = engine.generate
    broken = {"on": True}

    def generate(request, on_progress=None, cancel=None):
        if request.prompt == "boom" and broken["on"]:
            raise RuntimeError("the pipeline exploded")
        return real_generate(request, on_progress, cancel)

    monkeypatch.setattr(engine, "generate", generate)
    boom, fine = store.add_many([t2v("boom", seed=42), t2v("fine")])
    worker = make_worker(store, engine)
    worker.run_until_empty()

    failed = store.get(boom.id)
    assert failed.state == "failed" and failed.error_type == "RuntimeError"
    assert failed.error_message == "the pipeline exploded"
    assert "Traceback" in failed.traceback and "in generate" in failed.traceback
    assert store.get(fine.id).state == "done"

    broken["on"] = False
    retried = store.retry(boom.id)
    assert retried.state == "queued" and retried.attempts == 2 and retried.error_type is None
    assert retried.request == boom.request and "RuntimeError: the pipeline exploded" in retried.messages[-1]
    assert store.queue_position(boom.id) == 1
    worker.run_until_empty()
    assert store.get(boom.id).state == "done"


# -- restart recovery ---------------------------------------------------------------------------
def test_restart_after_kill_9_requeues_the_running_job_at_the_head(settings, cli_env, engine, make_worker):
    db_path, inputs = settings.output_dir / "queue.db", settings.output_dir / ".queue" / "inputs"
    store = JobStore(db_path, inputs)
    jobs = store.add_many([t2v("killed mid-run", **SLOW), t2v("second", steps=2), t2v("third", steps=2)])
    store.close()

    frozen = settings.output_dir.parent / "frozen-at-step-2"
    proc = subprocess.Popen([sys.executable, "-c", FREEZING_QUEUE_SCRIPT, str(frozen), "run"], cwd=ROOT,
                            env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        watcher = JobStore(db_path, inputs)
        wait_for(lambda: frozen.exists() or proc.poll() is not None, 120, "the first job's second step")
        assert proc.poll() is None, proc.communicate()
        assert watcher.get(jobs[0].id).state == "running"  # killed in the denoising loop
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        watcher.close()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    (settings.output_dir / ".20250101-crashed-t2v-abc.partial.mp4").write_bytes(b"half an mp4")

    reopened = JobStore(db_path, inputs)
    queued = reopened.list(states=["queued"])
    assert [job.id for job in queued] == [job.id for job in jobs]  # nothing lost, order kept
    head = queued[0]
    assert head.requeued_after_interrupt and head.attempts == 2 and REQUEUED_MESSAGE in head.messages

    make_worker(reopened, engine).run_until_empty()
    done = [reopened.get(job.id) for job in jobs]
    assert [job.state for job in done] == ["done"] * 3
    results = {f"{job.result_id}{ext}" for job in done for ext in (".mp4", ".jpg", ".json")}
    assert all(Path(job.result_path).is_file() for job in done)
    names = {p.name for p in settings.output_dir.iterdir()}
    assert results <= names
    # no .partial, no strays
    assert names - results <= {"queue.db", "queue.db-wal", "queue.db-shm", "queue.serving", ".queue"}


def _die_while_running(db_path: Path, inputs: Path, cli_env: dict) -> None:
    """A process that takes the head job and dies without a word (no cleanup, like kill -9)."""
    script = ("import os, sys\nfrom wan_studio.queue.store import JobStore\n"
              "JobStore(sys.argv[1], sys.argv[2]).claim()\nos._exit(9)\n")
    proc = subprocess.run([sys.executable, "-c", script, str(db_path), str(inputs)], cwd=ROOT, env=cli_env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 9, proc.stderr


def test_a_job_interrupted_twice_stays_interrupted_until_retried(tmp_path, cli_env):
    db_path, inputs = tmp_path / "queue.db", tmp_path / "inputs"
    store = JobStore(db_path, inputs)
    crashy, other = store.add_many([t2v("crashes its process"), t2v("other")])
    live = store.claim(other.id)  # running in this (alive) process: recovery must leave it alone
    store.close()

    _die_while_running(db_path, inputs, cli_env)
    store = JobStore(db_path, inputs)
    first = store.get(crashy.id)
    assert first.state == "queued" and first.requeued_after_interrupt and store.queue_position(crashy.id) == 1
    assert store.get(live.id).state == "running"
    store.close()

    _die_while_running(db_path, inputs, cli_env)
    store = JobStore(db_path, inputs)
    second = store.get(crashy.id)
    assert second.state == "interrupted" and second.finished is not None
    assert "Retry it by hand" in second.messages[-1]
    retried = store.retry(crashy.id)
    assert retried.state == "queued" and not retried.requeued_after_interrupt and retried.attempts == 3
    store.close()


# -- a damaged or locked database ----------------------------------------------------------------
def test_corrupted_database_is_kept_aside_and_a_fresh_one_starts(tmp_path):
    db_path = tmp_path / "queue.db"
    garbage = os.urandom(8192)
    db_path.write_bytes(garbage)
    (tmp_path / "queue.db-wal").write_bytes(b"stale wal")

    store = JobStore(db_path, tmp_path / "inputs")
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("queue.db.corrupt-") and not p.name.endswith("-wal")]
    assert len(kept) == 1 and kept[0].read_bytes() == garbage
    assert Path(str(kept[0]) + "-wal").read_bytes() == b"stale wal"
    assert store.warning and "damaged" in store.warning and kept[0].name in store.warning
    assert store.db_path == db_path
    job = store.add(t2v("after the crash"))
    assert store.list()[0].id == job.id


def test_database_with_a_damaged_page_is_kept_aside(tmp_path):
    db_path = tmp_path / "queue.db"
    store = JobStore(db_path, tmp_path / "inputs")
    store.add_many([t2v("x" * 200) for _ in range(40)])
    store.close()
    data = bytearray(db_path.read_bytes())
    page = 4096
    data[page:page * 3] = os.urandom(page * 2)  # the table's pages, header intact
    db_path.write_bytes(bytes(data))

    store = JobStore(db_path, tmp_path / "inputs")
    assert store.warning and "damaged" in store.warning
    assert store.list() == []
    assert any(p.name.startswith("queue.db.corrupt-") for p in tmp_path.iterdir())


def test_locked_database_falls_back_to_a_separate_one_without_touching_it(tmp_path):
    db_path = tmp_path / "queue.db"
    first = JobStore(db_path, tmp_path / "inputs")
    kept = first.add(t2v("queued before"))
    first.close()

    holder = sqlite3.connect(db_path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        store = JobStore(db_path, tmp_path / "inputs", busy_timeout_s=0.3)
        assert store.db_path == tmp_path / f"queue-{os.getpid()}.db"
        assert "locked by another process" in store.warning and str(store.db_path) in store.warning
        job = store.add(t2v("in the fallback"))
        assert [j.id for j in store.list()] == [job.id]
        with pytest.raises(QueueError, match="locked by another process"):
            JobStore(db_path, tmp_path / "inputs", busy_timeout_s=0.2, fallback_on_lock=False)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    again = JobStore(db_path, tmp_path / "inputs")
    assert again.warning is None and [j.id for j in again.list()] == [kept.id]


def test_a_new_queue_opens_while_another_process_writes_its_first_rows(tmp_path):
    # Two CLIs started together: one is still writing the new file (not yet WAL) when the other opens it.
    # SQLite then answers "locked" at once rather than waiting, so the store has to wait by itself.
    db_path = tmp_path / "queue.db"
    other = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    other.execute("CREATE TABLE notes (text TEXT)")
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO notes VALUES ('first')")
    commit = threading.Timer(0.5, lambda: other.execute("COMMIT"))
    commit.start()
    try:
        store = JobStore(db_path, tmp_path / "inputs", fallback_on_lock=False)
    finally:
        commit.join()
        other.close()
    assert store.warning is None and store.db_path == db_path
    job = store.add(t2v("after the other process"))
    assert [j.id for j in store.list()] == [job.id]
    assert sqlite3.connect(db_path).execute("SELECT text FROM notes").fetchall() == [("first",)]


# -- batch files -------------------------------------------------------------------------------
def test_batch_json_and_csv_enqueue_in_order(tmp_path, settings, capsys):
    as_list = tmp_path / "batch.json"
    as_list.write_text(json.dumps([
        {"mode": "t2v", "model": "tiny-t2v", "prompt": "one", "seed": 1},
        {"model": "tiny-t2v", "prompt": "two", "frames": 13, "steps": 2},
    ]))
    as_object = tmp_path / "jobs.json"
    as_object.write_text(json.dumps({"jobs": [{"model": "tiny-t2v", "prompt": "three"}]}))
    table = tmp_path / "batch.csv"
    table.write_text(
        "mode,model,prompt,width,height,frames,steps,guidance,flow_shift,seed,negative_prompt\n"
        't2v,tiny-t2v,"four, with a comma",96,64,13,3,4.5,,11,\n'
        "t2v,tiny-t2v,five,,,,,,,,blurry\n"
    )
    requests = load_batch(table)
    assert (requests[0].width, requests[0].height, requests[0].frames, requests[0].steps) == (96, 64, 13, 3)
    assert requests[0].guidance == 4.5 and requests[0].seed == 11 and requests[0].prompt == "four, with a comma"
    assert requests[1].negative_prompt == "blurry" and requests[1].width == 64  # empty cells: defaults

    for path in (as_list, as_object, table):
        assert queue_main(["add", str(path)], settings) == 0
    store = JobStore(settings.output_dir / "queue.db", settings.output_dir / ".queue" / "inputs")
    assert [job.prompt for job in store.list()] == ["one", "two", "three", "four, with a comma", "five"]
    assert store.list()[1].request["frames"] == 13
    out = capsys.readouterr().out
    assert out.count("queued") == 5

    assert queue_main(["list"], settings) == 0
    listing = capsys.readouterr().out
    assert listing.index("one") < listing.index("five")


@pytest.mark.parametrize("name, text, row", [
    ("bad.json", json.dumps([{"model": "tiny-t2v", "prompt": "ok"},
                             {"model": "tiny-t2v", "prompt": "x", "frames": 10}]), 2),
    ("bad.csv", 'model,prompt,frames\ntiny-t2v,"a prompt\nover two lines",9\ntiny-t2v,bad,10\n', 4),
    ("bad-number.csv", "model,prompt,width\ntiny-t2v,ok,64\ntiny-t2v,bad,wide\n", 3),
    ("unknown.json", json.dumps({"jobs": [{"model": "tiny-t2v", "prompt": "p", "colour": "red"}]}), 1),
])
def test_a_bad_row_rejects_the_whole_batch(tmp_path, settings, capsys, name, text, row):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(RequestError) as caught:
        load_batch(path)
    assert str(caught.value).startswith(f"row {row}:")
    assert queue_main(["add", str(path)], settings) == 2
    assert f"error: row {row}:" in capsys.readouterr().err
    store = JobStore(settings.output_dir / "queue.db", settings.output_dir / ".queue" / "inputs")
    assert store.list() == []


# -- the CLI -----------------------------------------------------------------------------------
def test_cli_cancel_retry_remove_and_run(settings, capsys):
    store = JobStore(settings.output_dir / "queue.db", settings.output_dir / ".queue" / "inputs")
    a, b, c = store.add_many([t2v("a"), t2v("b"), t2v("c")])

    assert queue_main(["cancel", b.id], settings) == 0
    assert queue_main(["cancel", b.id], settings) == 2
    assert f"Job {b.id} is cancelled" in capsys.readouterr().err
    assert queue_main(["remove", c.id], settings) == 0
    assert queue_main(["retry", a.id], settings) == 2
    assert queue_main(["retry", b.id], settings) == 0
    capsys.readouterr()

    assert queue_main(["run", "--quiet"], settings) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[:2] for line in lines] == [[a.id, "done"], [b.id, "done"]]
    for line in lines:
        assert Path(line.split()[2]).is_file()
    assert store.get(c.id) is None


# -- memory commands, other processes, ZeroGPU ----------------------------------------------------
def test_memory_commands_run_between_jobs(store, tmp_path, make_worker):
    engine = FakeEngine(tmp_path)
    worker = make_worker(store, engine)
    commands = []
    engine.on_job["first"] = lambda: commands.extend([worker.request_unload(), worker.request_free_memory()])
    store.add_many([t2v("first"), t2v("second")])
    worker.run_until_empty()
    assert engine.calls == ["job:first", "unload", "free", "job:second"]
    assert all(command.done.is_set() and command.error is None for command in commands)

    worker.start()  # idle thread: a command runs promptly
    assert worker.request_unload().wait(60)
    assert engine.calls[-1] == "unload" and worker.memory_log == ["unload", "free", "unload"]


def test_worker_sees_jobs_and_stop_requests_from_another_process(store, tmp_path, make_worker):
    engine = FakeEngine(tmp_path, steps=100_000, step_s=0.01)  # 1000 s: only the stop can end it
    worker = make_worker(store, engine)
    worker.start()
    other = JobStore(store.db_path, store.inputs_dir)  # as the CLI would: no notify()
    job = other.add(t2v("from the CLI"))
    # a stop asked once the job is denoising (one asked between the claim and the engine's start
    # cancels the job before it runs, which would leave nothing to see here)
    wait_for(lambda: engine.calls, 120, "the worker to start the job")
    other.request_stop(job.id)
    stopped = worker.wait(job.id, timeout=120)
    assert stopped.state == "cancelled"
    assert engine.calls == ["job:from the CLI"]
    other.close()


def test_run_job_now_runs_one_chosen_job_in_the_calling_thread(store, tmp_path, make_worker):
    engine = FakeEngine(tmp_path)
    worker = make_worker(store, engine)
    first, chosen = store.add_many([t2v("first"), t2v("chosen")])
    seen_threads = []
    worker.add_listener(lambda job, event: seen_threads.append(threading.current_thread()))
    done = worker.run_job_now(chosen.id)
    assert done.state == "done" and done.result_id == "fake-chosen"
    assert set(seen_threads) == {threading.current_thread()}
    assert store.get(first.id).state == "queued"
    with pytest.raises(QueueError, match="only a queued job can be started"):
        worker.run_job_now(chosen.id)
    with pytest.raises(TimeoutError, match="still queued"):
        worker.wait(first.id, timeout=0.3)


def test_stopping_the_worker_puts_the_running_job_back_first(store, tmp_path, make_worker):
    engine = FakeEngine(tmp_path, steps=100_000, step_s=0.01)  # 1000 s: only the shutdown can end it
    worker = make_worker(store, engine)
    running, waiting = store.add_many([t2v("long"), t2v("waiting")])
    worker.start()
    wait_for(lambda: worker.status(running.id), 120, "the job to start")
    assert worker.stop(timeout=120)
    back = store.get(running.id)
    assert back.state == "queued" and store.queue_position(running.id) == 1 and "shut down" in back.messages[-1]
    assert store.get(waiting.id).state == "queued"
