"""Input files are read once per version: rebuilding a request (each slider move on the page) and
running it in the queue read no file again; a file changed in place is read again."""

from __future__ import annotations

import os

from tests.media_fixtures import make_image, make_video
from wan_studio.media import facts
from wan_studio.requests import I2VRequest, V2VRequest
from wan_studio.runtime.studio import Studio


def test_rebuilding_a_request_reads_no_file(settings, tmp_path):
    image = make_image(tmp_path / "cat.png", (200, 100))
    first = I2VRequest(model="tiny-i2v", prompt="the cat yawns", image=str(image), frames=9, seed=1)
    reads = facts.reads
    for frames in (13, 17, 21):  # the page rebuilds the request on every slider move
        again = I2VRequest(model="tiny-i2v", prompt="the cat yawns", image=str(image), frames=frames, seed=1)
        assert (again.width, again.height) == (first.width, first.height)
    assert facts.reads == reads


def test_a_file_changed_in_place_is_read_again(settings, tmp_path):
    image = make_image(tmp_path / "cat.png", (200, 100))
    wide = I2VRequest(model="tiny-i2v", prompt="x", image=str(image), frames=9, seed=1)
    make_image(image, (100, 200))
    stat = image.stat()
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # a new version even within one tick
    tall = I2VRequest(model="tiny-i2v", prompt="x", image=str(image), frames=9, seed=1)
    assert wide.width > wide.height and tall.width < tall.height


def test_the_queue_runs_a_job_without_probing_its_inputs_again(settings, tmp_path):
    video = make_video(tmp_path / "clip.mp4", (96, 64), fps=16, seconds=1.0)
    request = V2VRequest(model="tiny-t2v", prompt="as a watercolour", video=str(video), steps=2, seed=3)
    reads = facts.reads
    studio = Studio(settings)
    studio.start()
    try:
        result = studio.run(request)
    finally:
        studio.stop()
    assert result.media.is_file()
    assert facts.reads == reads  # the queue's and the library's copies carry the original's facts
