"""One GPU owner per queue folder: the CLI's `generate` runs through the queue, in whichever
process serves it, and two of them never run pipelines at the same time."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

from tests.conftest import ROOT, read_video, run_cli_here
from wan_studio.queue.serving import ServingLock
from wan_studio.queue.store import JobStore
from wan_studio.runtime.studio import Studio


def served_elsewhere(lock: ServingLock) -> bool:
    """Another process (or lock object) holds the folder's lock now, not `lock`."""
    if lock.held:
        return False
    if not lock.acquire():
        return True
    lock.release()
    return False


def generate_cli(env, *extra, prompt="a paper boat") -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "wan_studio", "generate", "--model", "tiny-t2v", "--prompt", prompt, "--seed", "4",
         "--frames", "9", "--size", "64x64", "--steps", "3", *extra],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def test_one_process_holds_a_queue_folder(tmp_path):
    first, second = ServingLock(tmp_path), ServingLock(tmp_path)
    assert first.acquire() and first.held
    assert not second.acquire() and served_elsewhere(second)
    first.release()
    assert second.acquire() and served_elsewhere(first)
    second.release()


def test_the_lock_goes_with_a_killed_process(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom wan_studio.queue.serving import ServingLock\n"
         f"lock = ServingLock({str(tmp_path)!r}); assert lock.acquire(); print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        assert served_elsewhere(ServingLock(tmp_path))
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    assert ServingLock(tmp_path).acquire()


def test_generate_runs_in_the_studio_that_serves_the_queue_and_shows_its_steps(settings, cli_env):
    studio = Studio(settings)
    ran_here, lines, step_shown = [], [], threading.Event()

    def listen(job, event):
        if event.kind == "started":
            ran_here.append(job.prompt)
        if event.kind == "progress" and event.progress.state == "running" and event.progress.step == 1:
            step_shown.wait(60)  # the studio's job waits until the CLI, another process, has printed its step

    studio.worker.add_listener(listen)
    studio.start()
    try:
        proc = generate_cli(cli_env, prompt="a boat from the command line")

        def read_stderr():
            for line in proc.stderr:
                lines.append(line)
                if "Step 1/3" in line:
                    step_shown.set()

        reader = threading.Thread(target=read_stderr, daemon=True)
        reader.start()
        out = proc.stdout.read()
        proc.wait(timeout=300)
        reader.join(30)
    finally:
        studio.stop()
    err = "".join(lines)
    assert proc.returncode == 0, err
    assert "another process serves this queue" in err
    assert step_shown.is_set(), err  # the step of a job run elsewhere reaches the waiting CLI
    assert ran_here == ["a boat from the command line"]  # the studio's worker ran it, not the CLI
    video = read_video(Path(out.strip()))
    assert (video["count"], video["width"], video["height"]) == (9, 64, 64)


def test_generate_alone_serves_its_own_job_and_leaves_the_rest(settings, capsys):
    store = JobStore(settings.output_dir / "queue.db", settings.output_dir / ".queue" / "inputs")
    from wan_studio.requests import T2VRequest

    waiting = store.add(T2VRequest(model="tiny-t2v", prompt="queued earlier", frames=9, width=64, height=64, steps=2))
    run = run_cli_here(capsys, "generate", "--model", "tiny-t2v", "--prompt", "a paper boat", "--seed", "4",
                       "--frames", "9", "--size", "64x64", "--steps", "3", "--quiet")
    assert run.returncode == 0, run.stderr
    assert Path(run.stdout.strip()).suffix == ".mp4"
    assert store.get(waiting.id).state == "queued"  # not the CLI's job: it stays for a studio or `queue run`


def test_two_generates_started_together_run_one_after_the_other(settings, cli_env):
    procs = [generate_cli(cli_env, prompt=f"boat {i}") for i in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    for proc, (out, err) in zip(procs, results):
        assert proc.returncode == 0, err
        assert Path(out.strip()).is_file()
    store = JobStore(settings.output_dir / "queue.db", settings.output_dir / ".queue" / "inputs")
    jobs = sorted(store.list(states=["done"]), key=lambda job: job.started)
    assert len(jobs) == 2
    assert jobs[0].finished <= jobs[1].started  # never two pipelines at once


def test_queue_run_leaves_a_served_queue_to_its_server(settings, cli_env):
    lock = ServingLock(settings.output_dir)
    assert lock.acquire()
    try:
        store = JobStore(settings.output_dir / "queue.db", settings.output_dir / ".queue" / "inputs")
        from wan_studio.requests import T2VRequest

        job = store.add(T2VRequest(model="tiny-t2v", prompt="waits", frames=9, width=64, height=64, steps=2))
        proc = subprocess.run([sys.executable, "-m", "wan_studio", "queue", "run"], cwd=ROOT, env=cli_env,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert "Another process" in proc.stderr and "serving this queue" in proc.stderr
        assert store.get(job.id).state == "queued"
    finally:
        lock.release()
    assert ServingLock(settings.output_dir).acquire()
