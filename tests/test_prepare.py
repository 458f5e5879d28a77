"""Requests are values; preparing them is the one step that reads files.

Constructing a request reads nothing. Preparing it at submit reads each input once per file
version (the page's cost line, rebuilt on every slider move, reads no file again), and what it
found is stored with the job: the worker, in this process or another, reads no input, counts no
token and hashes no LoRA again.
"""

from __future__ import annotations

import json
import os
import sqlite3

import pytest

from tests.lora_fixtures import tiny_dims, write_lora_file
from tests.media_fixtures import make_image, make_video
from wan_studio.errors import RequestError
from wan_studio.media import facts
from wan_studio.requests import I2VRequest, T2VRequest, V2VRequest
from wan_studio.runtime.studio import Studio


def test_constructing_a_request_reads_no_file(settings, tmp_path):
    reads = facts.reads
    request = I2VRequest(model="tiny-i2v", prompt="the cat yawns", image=str(tmp_path / "not-yet.png"), frames=9)
    assert facts.reads == reads and (request.width, request.height, request.seed) == (None, None, None)
    with pytest.raises(RequestError) as info:  # the file's problems come out when it is prepared
        request.prepare()
    assert info.value.field == "image" and "not-yet.png" in str(info.value)


def test_preparing_again_reads_no_file(settings, tmp_path):
    image = make_image(tmp_path / "cat.png", (200, 100))
    first = I2VRequest(model="tiny-i2v", prompt="the cat yawns", image=str(image), frames=9, seed=1).prepare()
    assert (first.width, first.height) == (80, 32)
    reads = facts.reads
    for frames in (13, 17, 21):  # the page prepares the request again on every slider move
        again = I2VRequest(model="tiny-i2v", prompt="the cat yawns", image=str(image), frames=frames, seed=1).prepare()
        assert (again.width, again.height, again.frames) == (80, 32, frames)
    assert facts.reads == reads


def test_a_file_changed_in_place_is_read_again(settings, tmp_path):
    image = make_image(tmp_path / "cat.png", (200, 100))
    wide = I2VRequest(model="tiny-i2v", prompt="x", image=str(image), frames=9, seed=1).prepare()
    make_image(image, (100, 200))
    stat = image.stat()
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # a new version even within one tick
    tall = I2VRequest(model="tiny-i2v", prompt="x", image=str(image), frames=9, seed=1).prepare()
    assert (wide.width, wide.height) == (80, 32) and (tall.width, tall.height) == (32, 80)


def test_the_job_keeps_what_preparing_found_and_the_worker_reads_nothing(settings, tmp_path, monkeypatch):
    video = make_video(tmp_path / "clip.mp4", (96, 64), fps=16, seconds=1.0)
    lora = write_lora_file(settings.loras_dir / "style.safetensors", "diffusers", tiny_dims("tiny-t2v", settings),
                           rank=4, seed=5)
    request = V2VRequest(model="tiny-t2v", prompt="as a watercolour", video=str(video), steps=2, seed=3,
                         loras=[f"{lora}:0.5"])
    studio = Studio(settings)
    job = studio.submit(request)  # prepared here, at submit
    stored = studio.store.get(job.id).prepared
    assert stored["facts"]["video-info:video:0"] == {"width": 96, "height": 64, "fps": 16.0, "frames": 16,
                                                     "duration_s": 1.0, "has_audio": False}
    assert [(entry["path"], entry["weight"], entry["layout"], entry["rank"]) for entry in stored["loras"]] == \
        [(str(lora), 0.5, "diffusers", 4)]

    def must_not_run(*args, **kwargs):
        raise AssertionError("the worker read again what the job keeps")

    monkeypatch.setattr(facts, "video_info", must_not_run)
    monkeypatch.setattr(facts, "image_size", must_not_run)
    monkeypatch.setattr("wan_studio.loras.sha256_of", must_not_run)
    monkeypatch.setattr("wan_studio.loras.locate", must_not_run)
    monkeypatch.setattr("wan_studio.requests.base.count_prompt_tokens", must_not_run)
    studio.start()
    try:
        result = studio.wait_for_result(studio.store.get(job.id))
    finally:
        studio.stop()
    assert result.recipe["output"]["frames"] == 13 and result.recipe["preset"]["loras"][0]["weight"] == 0.5


def test_a_queue_from_before_the_prepared_column_still_runs(settings, tmp_path):
    """An older queue database (schema 1) gains the column; its jobs are prepared when they run."""
    db = settings.output_dir / "queue.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    old = sqlite3.connect(db)
    old.executescript("""
        CREATE TABLE jobs (id TEXT PRIMARY KEY, state TEXT NOT NULL, position INTEGER NOT NULL, mode TEXT NOT NULL,
            request TEXT NOT NULL, owner TEXT, created REAL NOT NULL, started REAL, finished REAL, result_id TEXT,
            result_path TEXT, error_type TEXT, error_message TEXT, traceback TEXT, messages TEXT NOT NULL DEFAULT '[]',
            attempts INTEGER NOT NULL DEFAULT 1, requeued_after_interrupt INTEGER NOT NULL DEFAULT 0,
            stop_requested INTEGER NOT NULL DEFAULT 0, runner_host TEXT, runner_pid INTEGER, runner_started REAL);
        PRAGMA user_version = 1;
    """)
    saved = {"mode": "t2v", "model": "tiny-t2v", "prompt": "an old job", "width": 64, "height": 64, "frames": 5,
             "steps": 2, "seed": 4}
    old.execute("INSERT INTO jobs (id, state, position, mode, request, created) "
                "VALUES ('abc123', 'queued', 1, 't2v', ?, 0)", (json.dumps(saved),))
    old.commit()
    old.close()
    studio = Studio(settings)
    assert studio.store.get("abc123").prepared is None
    studio.start()
    try:
        result = studio.wait_for_result(studio.store.get("abc123"))
    finally:
        studio.stop()
    assert result.recipe["request"]["seed"] == 4 and result.recipe["output"]["frames"] == 5
    assert T2VRequest(model="tiny-t2v", prompt="new").prepare().is_prepared
