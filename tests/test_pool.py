"""Several GPUs in one box (`--gpus`): one worker process per device, all pulling from the one
queue. Run here on two CPU "devices" (`--gpus cpu,cpu`), worker processes like the GPU ones."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, read_video, wait_for
from wan_studio.errors import StudioError
from wan_studio.queue.pool import check_gpus, parse_gpus
from wan_studio.queue.runners import Runner
from wan_studio.queue.store import REQUEUED_MESSAGE, JobStore, Seat
from wan_studio.requests import T2VRequest

SHIMS = ROOT / "tests" / "shims"


def _pool(monkeypatch):
    import dataclasses

    from wan_studio.runtime.studio import Studio
    from wan_studio.settings import load_settings

    monkeypatch.setenv("WAN_STUDIO_GPUS", "cpu,cpu")
    # a limit given as a flag (not in the environment) reaches the workers too; 64 GiB changes no plan
    studio = Studio(dataclasses.replace(load_settings(), memory_limit_gb=64.0))
    studio.start(stats_interval_s=0.5)
    try:
        wait_for(studio.pool.ready, "both workers to load their libraries")
        yield studio
    finally:
        studio.stop()


@pytest.fixture
def pooled_studio(settings, monkeypatch):
    yield from _pool(monkeypatch)


@pytest.fixture
def pool_that_splits(settings, monkeypatch):
    """The pool, its workers (and so their ranks) able to run two CPU ranks (tests/test_parallel.py)."""
    paths = [str(SHIMS), str(ROOT), os.environ.get("PYTHONPATH")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, paths)))
    monkeypatch.setenv("GLOO_SOCKET_IFNAME", "lo")
    yield from _pool(monkeypatch)


def _shot(k: int, steps: int = 6, parallel: int = 1) -> T2VRequest:
    return T2VRequest(model="tiny-t2v", prompt=f"shot {k}", frames=9, width=64, height=64, steps=steps, seed=k,
                      parallel=parallel)


def test_two_workers_run_ten_jobs_each_once_two_at_a_time(pooled_studio):
    from ui import queue_page

    studio = pooled_studio
    assert not studio.worker.alive  # the worker processes run the jobs, not the studio's thread
    import psutil

    assert {psutil.Process(w.process.pid).environ()["WAN_STUDIO_MEMORY_LIMIT_GB"] for w in studio.pool.workers} == \
        {"64.0"}
    jobs = [studio.submit(_shot(k)) for k in range(10)]
    seen_on = set()

    def all_final():
        for row in queue_page_rows(studio, queue_page):
            if row[1] == "running":
                seen_on.add(row[3])  # the page names the device of each running job
        return all(studio.store.get(job.id).is_final for job in jobs)

    wait_for(all_final, "ten jobs")
    done = [studio.store.get(job.id) for job in jobs]
    assert [job.state for job in done] == ["done"] * 10 and {job.attempts for job in done} == {1}  # each once
    assert len({job.result_id for job in done}) == 10
    assert all(read_video(job.result_path)["count"] == 9 for job in done)
    assert len({job.runner_pid for job in done}) == 2  # both workers ran jobs
    events = sorted([(job.started, 1) for job in done] + [(job.finished, -1) for job in done])
    running, most = 0, 0
    for _, change in events:
        running += change
        most = max(most, running)
    assert most == 2  # two at a time, never more
    assert seen_on <= {"CPU"} and seen_on
    # Unload (Settings): the models live in the worker processes, so idle ones start afresh
    before = {worker.process.pid for worker in studio.pool.workers}
    assert studio.unload_models() == "Models unloaded: 2 idle worker(s) started afresh, their memory freed."
    assert not before & {worker.process.pid for worker in studio.pool.workers}
    assert [worker.starts for worker in studio.pool.workers] == [1, 1] and not any(w.log for w in studio.pool.workers)
    wait_for(studio.pool.ready, "the fresh workers")
    after = studio.store.get(studio.submit(_shot(10)).id)
    wait_for(lambda: studio.store.get(after.id).is_final, "a job on the fresh workers")
    assert studio.store.get(after.id).state == "done"


def queue_page_rows(studio, queue_page):
    original = queue_page.get_studio
    queue_page.get_studio = lambda settings: studio
    try:
        return queue_page.queue_rows(studio.settings, None)
    finally:
        queue_page.get_studio = original


def test_a_worker_killed_mid_job_puts_its_job_back_once_and_it_finishes(pooled_studio):
    studio = pooled_studio
    # the first job is long (200 steps): its worker is killed well before it can end by itself
    jobs = [studio.submit(_shot(k, steps=200 if k == 0 else 6)) for k in range(4)]
    victim = {}

    def long_job_denoising():
        job = studio.store.get(jobs[0].id)
        if job.state == "running" and 1 <= (job.progress or {}).get("step", 0) < 100:
            victim.update(id=job.id, pid=job.runner_pid)
            return True
        return False

    wait_for(long_job_denoising, "the long job to start denoising")
    os.kill(victim["pid"], signal.SIGKILL)
    wait_for(lambda: all(studio.store.get(job.id).is_final for job in jobs), "the four jobs")
    killed = studio.store.get(victim["id"])
    assert killed.state == "done" and killed.attempts == 2 and killed.requeued_after_interrupt
    assert REQUEUED_MESSAGE in killed.messages and killed.runner_pid != victim["pid"]
    assert [studio.store.get(job.id).attempts for job in jobs if job.id != victim["id"]] == [1, 1, 1]
    restarted = [worker for worker in studio.pool.workers if worker.starts == 2]
    assert len(restarted) == 1 and "stopped (exit code -9); it was started again" in restarted[0].log[0]


def test_wrong_gpu_settings_get_clear_messages(settings):
    assert parse_gpus("") == () and parse_gpus("0, 1") == ("0", "1") and parse_gpus(["cpu", "cpu"]) == ("cpu", "cpu")
    with pytest.raises(StudioError, match="--gpus takes GPU indices \\(0,1,2\\), all, or cpu; got 'x'"):
        parse_gpus("0,x")
    with pytest.raises(StudioError, match="--gpus names GPU 7, but this machine has no NVIDIA GPU"):
        check_gpus(("7",))  # this machine (and CI) has none
    with pytest.raises(StudioError, match="--gpus all: this machine has no NVIDIA GPU"):
        parse_gpus("all")
    started = subprocess.run([sys.executable, "app.py", "--gpus", "3", "--port", "0"], cwd=ROOT, capture_output=True,
                             text=True, timeout=120)
    assert started.returncode != 0 and "error: --gpus names GPU 3, but this machine has no NVIDIA GPU" in started.stderr


def test_a_split_job_waits_for_a_group_of_seats_and_holds_them_while_it_runs(settings, tmp_path):
    store = JobStore(tmp_path / "q.db", tmp_path / "inputs")
    first, second, split, after = (store.add(_shot(1)), store.add(_shot(2)), store.add(_shot(3, parallel=2)),
                                   store.add(_shot(4)))
    a, b, c = (Seat(device, ("0", "1", "2")) for device in ("0", "1", "2"))
    runner_a, runner_b, runner_c = Runner("here", 1, None), Runner("here", 2, None), Runner("here", 3, None)
    assert store.claim(runner=runner_a, seat=a).id == first.id
    assert store.claim(runner=runner_b, seat=b).id == second.id
    # GPU 2 reaches the split job: it is given GPU 2 (idle) and GPU 0, busy, so GPU 2 waits, and takes
    # nothing behind it
    assert store.claim(runner=runner_c, seat=c) is None
    assert store.get(split.id).devices == ("0", "2") and store.get(split.id).state == "queued"
    store.mark_cancelled(second.id)
    # GPUs 1 and 2 are free now: the split job runs there rather than wait for GPU 0
    taken = store.claim(runner=runner_b, seat=b)
    assert (taken.id, taken.devices) == (split.id, ("1", "2"))
    assert store.claim(runner=runner_c, seat=c) is None  # GPU 2 runs a share of the split job
    store.mark_cancelled(first.id)
    assert store.claim(runner=runner_a, seat=a).id == after.id  # GPU 0, outside the group, goes on behind it
    later = store.add(_shot(5))
    store.mark_cancelled(split.id)
    assert store.claim(runner=runner_c, seat=c).id == later.id


def test_a_split_job_goes_to_idle_seats_first(settings, tmp_path):
    store = JobStore(tmp_path / "q.db", tmp_path / "inputs")
    first, split = store.add(_shot(1)), store.add(_shot(2, parallel=2))
    pool = ("0", "1", "2")
    assert store.claim(runner=Runner("here", 1, None), seat=Seat("0", pool)).id == first.id
    taken = store.claim(runner=Runner("here", 2, None), seat=Seat("2", pool))
    assert (taken.id, taken.devices) == (split.id, ("1", "2"))


def test_a_later_split_job_never_takes_seats_held_for_an_earlier_one(settings, tmp_path):
    store = JobStore(tmp_path / "q.db", tmp_path / "inputs")
    pool = ("0", "1", "2")
    first, second = store.add(_shot(1)), store.add(_shot(2))
    split, later_split = store.add(_shot(3, parallel=2)), store.add(_shot(4, parallel=2))
    store.claim(runner=Runner("here", 1, None), seat=Seat("0", pool))
    store.claim(runner=Runner("here", 2, None), seat=Seat("1", pool))
    assert store.claim(runner=Runner("here", 3, None), seat=Seat("2", pool)) is None
    assert store.get(split.id).devices == ("0", "2")  # seat 2 (idle) and 0, held for it
    store.mark_cancelled(second.id)
    # seats 1 and 2 are free: the earlier split job takes them, never the later one
    taken = store.claim(runner=Runner("here", 2, None), seat=Seat("1", pool))
    assert (taken.id, taken.devices) == (split.id, ("1", "2"))
    assert store.get(later_split.id).state == "queued"
    store.mark_cancelled(first.id)
    assert store.claim(runner=Runner("here", 1, None), seat=Seat("0", pool)) is None  # 0 alone cannot take it


def test_a_split_job_runs_on_the_seats_that_free_first(settings, tmp_path):
    store = JobStore(tmp_path / "q.db", tmp_path / "inputs")
    pool = ("0", "1", "2", "3")
    singles = [store.add(_shot(k)) for k in range(4)]
    split, after = store.add(_shot(9, parallel=2)), store.add(_shot(10))
    for k, job in enumerate(singles):
        assert store.claim(runner=Runner("here", k + 1, None), seat=Seat(str(k), pool)).id == job.id
    store.mark_cancelled(singles[1].id)
    assert store.claim(runner=Runner("here", 2, None), seat=Seat("1", pool)) is None  # given (0, 1); 0 is busy
    store.mark_cancelled(singles[2].id)
    taken = store.claim(runner=Runner("here", 3, None), seat=Seat("2", pool))  # 1 and 2 are free now: it runs
    assert (taken.id, taken.devices) == (split.id, ("1", "2"))
    assert store.get(after.id).state == "queued"


def test_a_split_job_waiting_behind_another_holds_no_seat(settings, tmp_path):
    store = JobStore(tmp_path / "q.db", tmp_path / "inputs")
    pool = ("0", "1", "2")
    store.add(_shot(1))
    store.add(_shot(2))
    earlier, later = store.add(_shot(3, parallel=2)), store.add(_shot(4, parallel=2))
    store.claim(runner=Runner("here", 1, None), seat=Seat("0", pool))
    store.claim(runner=Runner("here", 2, None), seat=Seat("1", pool))
    with store._write() as conn:  # a group the later job was given before the queue changed (moved, requeued)
        conn.execute("UPDATE jobs SET devices = '0,1' WHERE id = ?", (later.id,))
    assert store.claim(runner=Runner("here", 3, None), seat=Seat("2", pool)) is None
    assert store.get(earlier.id).devices == ("0", "2")
    assert store.get(later.id).devices == ()  # one seat left for it: it holds none until the earlier one runs
    assert store.seat_is_held(Seat("2", pool)) and not store.seat_is_held(Seat("1", pool))


def test_a_worker_whose_gpu_is_held_for_a_split_job_lets_go_of_its_models(settings, tmp_path):
    from types import SimpleNamespace

    from wan_studio.queue.worker import QueueWorker

    store = JobStore(tmp_path / "q.db", tmp_path / "inputs")
    pool = ("0", "1")
    store.add(_shot(1))
    store.add(_shot(2, parallel=2))
    store.claim(runner=Runner("here", 1, None), seat=Seat("0", pool))  # seat 0 busy: the split job waits

    class Swap:
        active_pipeline = "a pipeline from the last job"

        def unload_all(self):
            self.active_pipeline = None

    engine = SimpleNamespace(swap=Swap(), library=None)
    worker = QueueWorker(store, engine, seat=Seat("1", pool))
    worker.run_until_empty()  # nothing it may take: seat 1 is held for the split job
    assert engine.swap.active_pipeline is None
    assert worker.memory_log == ["unload: a split job holds this GPU"]


def test_a_split_job_bigger_than_the_pool_fails_with_the_reason(settings, tmp_path):
    store = JobStore(tmp_path / "q.db", tmp_path / "inputs")
    too_big, next_one = store.add(_shot(1, parallel=2)), store.add(_shot(2))
    assert store.claim(seat=Seat("cpu:0", ("cpu:0",))).id == next_one.id
    failed = store.get(too_big.id)
    assert failed.state == "failed" and failed.error_message == (
        "This job is split over 2 GPUs (GPUs for this job: 2), but the studio runs 1 worker(s) (--gpus). "
        "Retry it with 1 or fewer.")


def test_a_split_job_in_a_pool_runs_its_ranks_on_a_group_of_workers(pool_that_splits):
    from ui import queue_page

    studio = pool_that_splits
    jobs = [studio.submit(_shot(1)), studio.submit(_shot(2, steps=12, parallel=2)), studio.submit(_shot(3)),
            studio.submit(_shot(4))]
    seen_on = set()

    def all_final():
        for row in queue_page_rows(studio, queue_page):
            if row[1] == "running" and row[0] == jobs[1].id:
                seen_on.add(row[3])
        return all(studio.store.get(job.id).is_final for job in jobs)

    wait_for(all_final, "the four jobs")
    done = [studio.store.get(job.id) for job in jobs]
    assert [job.state for job in done] == ["done"] * 4, [job.error_message for job in done]
    split = done[1]
    assert split.devices == ("cpu:0", "cpu:1") and seen_on == {"CPU x2"}
    import json

    recipe = json.loads(Path(split.result_path).with_suffix(".json").read_text())
    assert (recipe["parallel"]["ranks"], recipe["parallel"]["backend"]) == (2, "gloo")
    assert read_video(split.result_path)["count"] == 9
    for single in (done[0], done[2], done[3]):  # no job ran beside it: both workers were its ranks' group
        assert single.finished <= split.started or single.started >= split.finished
