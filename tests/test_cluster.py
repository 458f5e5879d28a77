"""A cluster through Ray: the head's queue hands its jobs to Ray workers and keeps every result.
Run here on a local Ray instance with two CPUs, two workers of one CPU each."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from tests.conftest import read_video, wait_for
from tests.media_fixtures import make_image
from wan_studio.errors import StudioError
from wan_studio.requests import I2VRequest, T2VRequest

LOOPBACK_ONLY = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # "0": Ray's processes use 127.0.0.1, as on a laptop


@pytest.fixture
def ray_cluster(settings, monkeypatch):
    import ray
    import ray._private.ray_constants as ray_constants

    # nothing of the test's cluster listens on, or is reached at, the machine's network address
    monkeypatch.setenv(LOOPBACK_ONLY, "0")
    monkeypatch.setattr(ray_constants, "ENABLE_RAY_CLUSTER", False)
    env = {key: os.environ[key] for key in ("WAN_STUDIO_MODELS_DIR", "WAN_STUDIO_TINY_MODELS_DIR", "HF_HUB_OFFLINE",
                                            LOOPBACK_ONLY)}
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env})
    try:
        yield
    finally:
        ray.shutdown()


def test_two_ray_workers_run_the_heads_jobs_each_once_and_a_killed_worker_is_replaced(settings, tmp_path,
                                                                                      ray_cluster):
    import ray

    from wan_studio.queue.store import JobStore
    from wan_studio.runtime.cluster import WORKER_DIED, ClusterDispatcher
    from wan_studio.runtime.library import OutputLibrary

    store = JobStore(settings.output_dir / "queue.db", settings.output_dir / ".queue" / "inputs")
    library = OutputLibrary(settings.output_dir)
    image = make_image(tmp_path / "start.png", (64, 64))
    # the first job is long (200 steps at the Tiny model's largest size and length, each step several
    # times a short job's): the worker is killed in its first three quarters, well before it can end
    # by itself (progress is read about twice a second)
    long = {"steps": 200, "frames": 33, "width": 96}
    jobs = [store.add(T2VRequest(model="tiny-t2v", prompt=f"shot {k}", height=64,
                                 **(long if k == 0 else {"steps": 12, "frames": 9, "width": 64}), seed=k))
            for k in range(5)]
    jobs.append(store.add(I2VRequest(model="tiny-i2v", prompt="from a picture", image=str(image), frames=9, seed=1)))
    image.unlink()  # the worker gets the job's own copy, as bytes
    dispatcher = ClusterDispatcher(store, library, workers=2, poll_s=0.1)
    dispatcher.start()
    victim = {}
    try:
        def long_job_denoising():
            for index, busy in list(dispatcher.busy.items()):
                step = (store.get(busy.job_id).progress or {}).get("step", 0)
                if busy.job_id == jobs[0].id and 1 <= step < 150:
                    victim.update(job=busy.job_id)
                    ray.kill(dispatcher.runners[index])
                    return True
            return False

        wait_for(long_job_denoising, "the long job to start denoising on a worker")
        wait_for(lambda: all(store.get(job.id).is_final for job in jobs), "the six jobs")
        assert dispatcher.replaced == 1 and len(dispatcher.runners) == 2
        # a worker that dies idle is found when it is next asked about a job, and replaced
        ray.kill(dispatcher.runners[0])
        ray.kill(dispatcher.runners[1])
        late = store.add(T2VRequest(model="tiny-t2v", prompt="after", frames=9, width=64, height=64, steps=2, seed=9))
        wait_for(lambda: store.get(late.id).is_final, "a job after both workers died idle")
        assert store.get(late.id).state == "done" and dispatcher.replaced == 3
    finally:
        dispatcher.stop()
    done = [store.get(job.id) for job in jobs]
    assert [job.state for job in done] == ["done"] * 6
    killed = store.get(victim["job"])
    assert WORKER_DIED in killed.messages  # put back once, then made by a worker again
    assert all(WORKER_DIED not in job.messages for job in done if job.id != victim["job"])  # the others: once
    for job in done:  # every result is in the head's library, whole
        result = library.get(job.result_id)
        assert result is not None and result.recipe["id"] == job.result_id
        assert read_video(result.media)["count"] == job.request["frames"] and result.thumbnail.is_file()
    i2v = library.get(done[-1].result_id)
    copied = settings.output_dir / i2v.recipe["request"]["image"]
    assert copied.is_file()  # its input copy came back with it


@pytest.fixture
def three_nodes(settings, tmp_path, monkeypatch):
    """Three Ray nodes on this machine, each with the settings of its own machine: one with 1 GiB
    to give, one with 3 GiB and the Tiny models built, one with 4 GiB and no model yet."""
    import ray
    import ray._private.ray_constants as ray_constants
    from ray.cluster_utils import Cluster

    from wan_studio import catalog, models

    monkeypatch.setenv(LOOPBACK_ONLY, "0")
    monkeypatch.setattr(ray_constants, "ENABLE_RAY_CLUSTER", False)
    models.resolve(catalog.get("tiny-t2v"), settings)  # built in this test's Tiny folder
    common = {key: os.environ[key] for key in ("WAN_STUDIO_MODELS_DIR", "HF_HUB_OFFLINE", LOOPBACK_ONLY)}
    cluster = Cluster()
    for limit, tiny in (("1", settings.tiny_models_dir), ("3", settings.tiny_models_dir), ("4", tmp_path / "bare")):
        cluster.add_node(num_cpus=1, env_vars={**common, "WAN_STUDIO_MEMORY_LIMIT_GB": limit,
                                               "WAN_STUDIO_TINY_MODELS_DIR": str(tiny)})
    ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()
        cluster.shutdown()


def test_each_job_goes_to_a_node_it_fits_one_with_its_model_first(settings, three_nodes):
    from wan_studio.queue.store import JobStore
    from wan_studio.runtime.cluster import ClusterDispatcher
    from wan_studio.runtime.library import OutputLibrary

    store = JobStore(settings.output_dir / "queue.db", settings.output_dir / ".queue" / "inputs")
    library = OutputLibrary(settings.output_dir)
    jobs = [store.add(T2VRequest(model="tiny-t2v", prompt=f"shot {k}", frames=9, width=64, height=64, steps=4,
                                 seed=k)) for k in range(3)]
    too_big = store.add(T2VRequest(model="wan2.1-t2v-14b", prompt="a city at night", frames=81, width=1280,
                                   height=720, seed=1))
    split = store.add(T2VRequest(model="tiny-t2v", prompt="split", frames=9, width=64, height=64, seed=1, parallel=2))
    dispatcher = ClusterDispatcher(store, library, poll_s=0.1)
    dispatcher.start()
    try:
        wait_for(lambda: all(store.get(job.id).is_final for job in [*jobs, too_big, split]), "the five jobs")
    finally:
        dispatcher.stop()
    assert len(dispatcher.runners) == 3  # one worker a node
    done = [store.get(job.id) for job in jobs]
    assert [job.state for job in done] == ["done"] * 3, [job.error_message for job in done]
    ran_on = [library.get(job.result_id).recipe["memory"]["machine"] for job in done]
    assert ran_on[0] == "CPU (3 GiB RAM)"  # the node with the model, though the one without was free too
    assert "CPU (1 GiB RAM)" not in ran_on  # never on the node the job does not fit
    refused = store.get(too_big.id)
    assert refused.state == "failed" and refused.error_message.startswith("No worker of the cluster can run this job.")
    for node in ("CPU (1 GiB RAM)) offers 0.0 GiB", "CPU (3 GiB RAM)) offers 0.8 GiB", "CPU (4 GiB RAM)) offers"):
        assert node.split(")) ")[0] in refused.error_message
    assert "Wan 2.1 T2V 14B at 1280x720, 81 frames needs about 36.5 GiB even with the Minimum plan" in \
        refused.error_message
    refused = store.get(split.id)
    assert refused.state == "failed" and ("a cluster worker has one GPU, and this job is split over 2: run it in a "
                                          "studio on one machine (--gpus)") in refused.error_message


def test_a_cluster_address_that_does_not_answer_is_named(settings):
    from wan_studio.runtime.cluster import connect

    with pytest.raises(StudioError, match="No Ray cluster answers at 127.0.0.1:9. Start one with"):
        connect("127.0.0.1:9")


def test_cluster_status_names_the_machines_and_their_gpus(settings, ray_cluster, capsys):
    from wan_studio.cli import main as cli_main

    assert cli_main(["cluster", "status"]) == 0  # the cluster this process is in
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "1 machine(s), 0 GPU(s), 2 CPU(s)" and lines[1] == "  127.0.0.1: 0 GPU(s), 2 CPU(s)"


def test_cluster_start_and_stop_a_head_on_this_machine(settings):
    """`cluster start` runs Ray's head here (on the loopback address, for the test) and says how to join."""
    import shutil
    import socket
    import subprocess
    import sys
    import tempfile

    from tests.conftest import ROOT

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    short = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # Ray's socket paths must stay under 108 bytes
    env = {**os.environ, "RAY_TMPDIR": short, LOOPBACK_ONLY: "0"}

    def cluster(*argv):
        return subprocess.run([sys.executable, "-m", "wan_studio", "cluster", *argv], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=180)

    try:
        started = cluster("start", "--port", str(port), "--node-ip", "127.0.0.1")
        assert started.returncode == 0, started.stderr
        assert f"ray start --address 127.0.0.1:{port}" in started.stdout
        assert "python app.py --ray auto" in started.stdout
        again = cluster("start", "--port", str(port), "--node-ip", "127.0.0.1")  # one head a machine
        assert again.returncode == 2 and "Ray's head did not start" in again.stderr
    finally:
        stopped = cluster("stop")
        shutil.rmtree(short, ignore_errors=True)
    assert stopped.returncode == 0 and "Ray stopped" in stopped.stdout


def test_a_node_without_the_model_downloads_it_and_the_queue_shows_its_bytes(settings, hub_with_a_model,
                                                                            monkeypatch):
    import ray
    import ray._private.ray_constants as ray_constants

    from ui import queue_page
    from wan_studio.queue.store import JobStore
    from wan_studio.runtime.cluster import ClusterDispatcher
    from wan_studio.runtime.library import OutputLibrary

    server = hub_with_a_model
    monkeypatch.setenv(LOOPBACK_ONLY, "0")
    monkeypatch.setattr(ray_constants, "ENABLE_RAY_CLUSTER", False)
    env = {key: os.environ[key] for key in ("WAN_STUDIO_MODELS_DIR", "WAN_STUDIO_TINY_MODELS_DIR", "HF_ENDPOINT",
                                            "HF_HUB_CACHE", LOOPBACK_ONLY)}
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env})
    store = JobStore(settings.output_dir / "queue.db", settings.output_dir / ".queue" / "inputs")
    library = OutputLibrary(settings.output_dir)
    monkeypatch.setattr(queue_page, "get_studio", lambda _settings: SimpleNamespace(store=store))
    # (its plan pinned: the estimate is for the real 1.3B, which this machine's RAM need not fit)
    job = store.add(T2VRequest(model="wan2.1-t2v-1.3b", prompt="a lighthouse", frames=9, width=64, height=64, steps=2,
                               seed=3, memory_plan="max-speed"))
    dispatcher = ClusterDispatcher(store, library, poll_s=0.1)
    dispatcher.start()
    try:
        rows = []

        def shown():
            rows[:] = [row for row in queue_page.queue_rows(settings, None) if row[0] == job.id]
            return server.holding.is_set() and rows[0][4].startswith("Downloading Wan 2.1 T2V 1.3B: ")

        wait_for(shown, "the Queue page to show the node's download")
        assert rows[0][1] == "running" and " of " in rows[0][4]
        assert rows[0][3] == "127.0.0.1"  # on: the machine running it
        server.release()
        wait_for(lambda: store.get(job.id).is_final, "the job")
    finally:
        dispatcher.stop()
        ray.shutdown()
    final = store.get(job.id)
    assert final.state == "done", final.error_message
    assert read_video(library.get(final.result_id).media)["count"] == 9
