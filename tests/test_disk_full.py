"""A full disk in the studio's words: the output folder on a small filesystem that fills up.

Where this machine lets the test mount one (root: a 4 MB tmpfs), the disk is really full; elsewhere
a stand-in reports no free space to the CLI's process. Both say the same thing and keep the same
promises: one clear message (the folder, the space needed), a non-zero exit and no traceback;
earlier results and the queue kept, no half-written file; the job runs once space is freed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli_here

FILLER = "filler.bin"
# the stand-in: the disk of the output folder has no room while the filler is there
STAND_IN = """
import os, shutil
_usage = shutil.disk_usage
def _full(path, _usage=_usage):
    usage = _usage(path)
    return usage._replace(free=0) if os.path.exists(os.environ["TEST_FILLER"]) else usage
shutil.disk_usage = _full
"""


class SmallDisk:
    """A 4 MB filesystem (or its stand-in) holding the output folder."""

    def __init__(self, root: Path, mounted: bool):
        self.root, self.mounted = root, mounted
        self.filler = root / FILLER

    def fill(self) -> None:
        if not self.mounted:
            self.filler.write_bytes(b"")
            return
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT)
        try:
            while True:
                os.write(fd, b"\0" * 65536)
        except OSError:
            pass
        finally:
            os.close(fd)
        for n in range(64):  # the last few blocks too
            try:
                (self.root / f"crumb-{n}").write_bytes(b"\0" * 1024)
            except OSError:
                break

    def free_up(self) -> None:
        for path in [self.filler, *self.root.glob("crumb-*")]:
            path.unlink(missing_ok=True)

    def cli(self, env: dict, *args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "wan_studio", *args]
        if not self.mounted:
            command = [sys.executable, "-c",
                       STAND_IN + "\nimport runpy\nrunpy.run_module('wan_studio', run_name='__main__')", *args]
        return subprocess.run(command, cwd=ROOT, env=dict(env, TEST_FILLER=str(self.filler)), capture_output=True,
                              text=True, timeout=300)


@pytest.fixture
def small_disk(tmp_path, monkeypatch):
    """The small disk; where it is the stand-in, this process's commands (tests/conftest.py's
    run_cli_here) see it too."""
    import shutil

    root = tmp_path / "small"
    root.mkdir()
    mounted = os.geteuid() == 0 and subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(root)],
                                                   capture_output=True).returncode == 0
    if not mounted:
        usage = shutil.disk_usage

        def full_while_filled(path):
            found = usage(path)
            return found._replace(free=0) if (root / FILLER).exists() else found

        monkeypatch.setattr(shutil, "disk_usage", full_while_filled)
    try:
        yield SmallDisk(root, mounted)
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(root)], check=False)


def test_generate_on_a_full_disk_says_so_keeps_everything_and_runs_once_space_is_freed(small_disk, cli_env, tmp_path,
                                                                                      capsys, monkeypatch):
    """The full disk met by a `generate` process of its own; the steps around it run the same commands
    in this process (run_cli_here)."""
    out = small_disk.root / "outputs"
    env = dict(cli_env, WAN_STUDIO_OUTPUT_DIR=str(out))
    monkeypatch.setenv("WAN_STUDIO_OUTPUT_DIR", str(out))
    first = run_cli_here(capsys, "generate", "--model", "tiny-t2v", "--prompt", "a lighthouse", "--frames", "9",
                         "--size", "64x64", "--seed", "1", "--quiet")
    assert first.returncode == 0, first.stderr
    earlier = {path.name: path.read_bytes() for path in out.iterdir()  # (not the queue's database and journal)
               if path.is_file() and not path.name.startswith("queue.db")}
    batch = tmp_path / "later.json"  # a job queued before the disk filled, waiting for a server
    batch.write_text(json.dumps([{"model": "tiny-t2v", "prompt": "a queued boat", "frames": 9, "size": "64x64",
                                  "seed": 2}]))
    assert run_cli_here(capsys, "queue", "add", str(batch)).returncode == 0

    small_disk.fill()
    full = small_disk.cli(env, "generate", "--model", "tiny-t2v", "--prompt", "a second lighthouse", "--frames", "9",
                          "--size", "64x64", "--seed", "3", "--quiet")
    assert full.returncode == 2 and full.stdout == ""
    assert "Traceback" not in full.stderr, full.stderr
    message = full.stderr.strip()
    assert message.startswith(f"error: The disk holding {out} is full: "), message
    assert "this needs about " in message and "earlier results and the queue are kept" in message, message
    # the queue's own server finds the same full disk and says so, the waiting job untouched
    served = run_cli_here(capsys, "queue", "run", "--quiet")
    assert served.returncode == 2 and "Traceback" not in served.stderr, served.stderr
    assert f"The disk holding {out} is full: " in served.stderr
    assert not list(out.rglob("*.partial*")) and not list(out.rglob(".*partial*"))
    for name, data in earlier.items():
        assert (out / name).read_bytes() == data, name

    small_disk.free_up()
    assert queue_states(out) == {"a lighthouse": "done", "a queued boat": "queued"}
    again = run_cli_here(capsys, "generate", "--model", "tiny-t2v", "--prompt", "a second lighthouse", "--frames",
                         "9", "--size", "64x64", "--seed", "3", "--quiet")
    assert again.returncode == 0, again.stderr
    assert Path(again.stdout.strip()).is_file()
    ran = run_cli_here(capsys, "queue", "run", "--quiet")
    assert ran.returncode == 0, ran.stderr
    assert queue_states(out) == {"a lighthouse": "done", "a queued boat": "done", "a second lighthouse": "done"}


def queue_states(out: Path) -> dict[str, str]:
    from wan_studio.queue.store import JobStore

    store = JobStore(out / "queue.db", out / ".queue" / "inputs")
    try:
        return {job.prompt: job.state for job in store.list()}
    finally:
        store.close()


def test_sqlite_and_os_errors_of_a_full_disk_are_recognised(tmp_path, monkeypatch):
    import errno
    import sqlite3

    from wan_studio import disk

    assert disk.is_disk_full(OSError(errno.ENOSPC, "No space left on device"), tmp_path)
    assert disk.is_disk_full(sqlite3.OperationalError("database or disk is full"), tmp_path)
    assert not disk.is_disk_full(sqlite3.OperationalError("disk I/O error"), tmp_path)  # room enough: not the disk
    monkeypatch.setattr(disk, "free_space", lambda folder: 1000)
    assert disk.is_disk_full(sqlite3.OperationalError("disk I/O error"), tmp_path)
    assert not disk.is_disk_full(ValueError("bad"), tmp_path)


def test_a_job_that_fills_the_disk_goes_back_to_the_head_of_the_queue(engine, settings, monkeypatch):
    """The disk fills while the video is written: nothing is kept, the job waits first in line, and
    the worker runs it once the room is back."""
    import errno

    from wan_studio import disk
    from wan_studio.disk import DiskFull
    from wan_studio.queue import worker as worker_module
    from wan_studio.queue.store import JobStore
    from wan_studio.queue.worker import QueueWorker
    from wan_studio.requests import T2VRequest
    from wan_studio.runtime import library

    store = JobStore(settings.output_dir / "queue.db", settings.output_dir / ".queue" / "inputs")
    worker = QueueWorker(store, engine)
    job = worker.add(T2VRequest(model="tiny-t2v", prompt="waves", frames=9, width=64, height=64, seed=1))
    real_write = library.write_mp4

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(library, "write_mp4", full_disk)
    with pytest.raises(DiskFull, match=f"The disk holding {settings.output_dir} is full: .* Job {job.id} stays queued"):
        worker.run_until_empty()
    assert store.get(job.id).state == "queued" and "The disk filled while it ran" in store.get(job.id).messages[-1]
    assert not engine.library.list()
    monkeypatch.setattr(library, "write_mp4", real_write)
    monkeypatch.setattr(worker_module, "free_space", lambda folder: 0)  # still full: the job is not even started
    with pytest.raises(DiskFull, match=f"Job {job.id} stays queued"):
        worker.run_until_empty()
    assert store.get(job.id).state == "queued"
    monkeypatch.setattr(worker_module, "free_space", disk.free_space)
    worker.run_until_empty()
    assert store.get(job.id).state == "done"
