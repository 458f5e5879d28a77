"""The first page: launched for real, driven through the Gradio API like a client would."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.conftest import ROOT, read_video


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(env, *flags, prelude: str | None = None):
    """Start app.py for real; its output goes to a log file (a pipe nobody reads could fill and block it).
    `prelude`: Python run in the app's process before app.py (a test's hooks on the worker)."""
    import tempfile

    port = free_port()
    log = tempfile.NamedTemporaryFile("w+", prefix="wan-app-", suffix=".log", delete=False)
    start = ["app.py"] if prelude is None else [
        "-c", f"{prelude}\nimport runpy, sys\nsys.argv[0] = 'app.py'\nrunpy.run_path('app.py', run_name='__main__')\n"]
    proc = subprocess.Popen([sys.executable, *start, "--port", str(port), *flags], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(url, timeout=2).status == 200:
                break
        except OSError:
            if proc.poll() is not None:
                raise AssertionError(open(log.name).read())
            time.sleep(0.3)
    else:
        proc.kill()
        raise AssertionError("app did not answer in 120 s")
    proc.log_path = log.name  # what the app printed, for tests that read it
    return proc, url


@pytest.fixture
def shared_app(cli_env):
    proc, url = launch(dict(cli_env, WAN_STUDIO_MULTI_USER="1"))
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def test_page_generates_t2v_and_reports_bad_input(running_app):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    page = urllib.request.urlopen(running_app.url).read().decode()
    assert "Wan Studio" in page
    client = Client(running_app.url, verbose=False)
    options = {"width": 96, "height": 64, "frames": 13, "steps": 3, "seed": 21}
    video, recipe = client.predict("tiny-t2v", "a glass of water", options, api_name="/t2v")
    got = read_video(video)
    assert (got["count"], got["width"], got["height"], got["fps"]) == (13, 96, 64, 16.0)
    assert recipe["request"]["seed"] == 21
    assert (running_app.outputs / recipe["output"]["file"]).is_file()

    with pytest.raises(AppError, match="The prompt is empty"):
        client.predict("tiny-t2v", "  ", options, api_name="/t2v")
    with pytest.raises(AppError, match="Frames must be of the form 4k\\+1"):
        client.predict("tiny-t2v", "water", {**options, "frames": 14}, api_name="/t2v")
    with pytest.raises(AppError, match="Unknown option for /t2v: 'cfg'"):
        client.predict("tiny-t2v", "water", {**options, "cfg": 2}, api_name="/t2v")
    # the server is still up and serves the next job
    video, _ = client.predict("tiny-t2v", "water", {**options, "seed": 22}, api_name="/t2v")
    assert read_video(video)["count"] == 13


def test_three_clients_five_jobs_each_run_exactly_once(running_app):
    import json
    import sqlite3
    from concurrent.futures import ThreadPoolExecutor

    from gradio_client import Client

    def client_jobs(n):
        client = Client(running_app.url, verbose=False)
        pending = [client.submit("tiny-t2v", f"client {n} job {k}", {"seed": 100 * n + k, "steps": 2},
                                 api_name="/t2v") for k in range(5)]
        return [job.result(timeout=300) for job in pending]

    with ThreadPoolExecutor(3) as pool:
        results = [r for batch in pool.map(client_jobs, range(3)) for r in batch]
    seeds = sorted(recipe["request"]["seed"] for _, recipe in results)
    assert seeds == sorted(100 * n + k for n in range(3) for k in range(5))
    files = {recipe["output"]["file"] for _, recipe in results}
    assert len(files) == 15 and all((running_app.outputs / f).is_file() for f in files)
    with sqlite3.connect(running_app.outputs / "queue.db") as db:  # (other tests' jobs on the app aside)
        rows = [row for row in db.execute("SELECT state, attempts, request FROM jobs").fetchall()
                if json.loads(row[2]).get("prompt", "").startswith("client ")]
    assert len(rows) == 15
    assert all(state == "done" and attempts == 1 for state, attempts, _ in rows)
    assert sorted(json.loads(r)["seed"] for _, _, r in rows) == seeds


def test_api_inputs_uploads_stats_queue_and_traversal(running_app, tmp_path):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError
    from PIL import Image

    client = Client(running_app.url, verbose=False)
    earlier = {job["id"] for job in client.predict(api_name="/queue")}  # other tests' jobs
    small = tmp_path / "small.png"
    Image.new("RGB", (120, 90), (200, 40, 40)).save(small)
    video, recipe = client.predict("tiny-i2v", "it moves", handle_file(str(small)), {"seed": 4}, api_name="/i2v")
    assert read_video(video)["count"] == 9 and recipe["request"]["image"].endswith("image.png")

    big = tmp_path / "big.bmp"
    Image.effect_noise((400, 400), 64).convert("RGB").save(big)  # ~480 KB, over the 200 KB limit
    with pytest.raises(ValueError, match="exceeds the maximum file size of 200000 bytes"):  # the client reads the limit
        client.predict("tiny-i2v", "it moves", handle_file(str(big)), {}, api_name="/i2v")
    import httpx

    with big.open("rb") as data:  # and the server refuses it from a client that does not check
        refused = httpx.post(client.upload_url, files=[("files", ("big.bmp", data))])
    assert refused.status_code == 413 and "maximum allowed size of 200000 bytes" in refused.text

    with pytest.raises(AppError, match="'image' is a parameter of its own"):
        client.predict("tiny-i2v", "x", handle_file(str(small)), {"image": "../../etc/passwd"}, api_name="/i2v")
    with pytest.raises(AppError, match="Unknown option for /t2v: 'image'"):
        client.predict("tiny-t2v", "x", {"image": "/etc/passwd"}, api_name="/t2v")
    with pytest.raises(AppError, match="'continue_from' is a file, not an option"):
        client.predict("tiny-t2v", "x", {"continue_from": "/etc/passwd", "frames": 9}, api_name="/t2v")
    for sneaky in ("../../etc/passwd", "/etc/passwd", "..", "sub/../../x"):
        with pytest.raises(AppError, match="Refused|no result"):
            client.predict(sneaky, api_name="/rerun")
    again, again_recipe = client.predict(recipe["id"], api_name="/rerun")
    assert again_recipe["request"]["seed"] == 4 and again_recipe["id"] != recipe["id"]
    # /extend: the I2V result, 1 s longer, as a new one
    longer, longer_recipe = client.predict(recipe["id"], 1, {"prompt": "and on"}, api_name="/extend")
    assert read_video(longer)["count"] == recipe["output"]["frames"] + 16 and longer_recipe["parent"] == recipe["id"]
    with pytest.raises(AppError, match="Unknown option for /extend: 'steps'"):
        client.predict(recipe["id"], 1, {"steps": 3}, api_name="/extend")
    # /interpolate: the I2V result at twice its frame rate, as a new one
    smooth, smooth_recipe = client.predict(recipe["id"], 2, {}, api_name="/interpolate")
    assert read_video(smooth)["count"] == 2 * recipe["output"]["frames"] - 1 and smooth_recipe["parent"] == recipe["id"]
    with pytest.raises(AppError, match="The factor is 2 or 4"):
        client.predict(recipe["id"], 3, {}, api_name="/interpolate")
    # /upscale: the I2V result twice as large, as a new one
    larger, larger_recipe = client.predict(recipe["id"], 2, {"tile": 32}, api_name="/upscale")
    made = read_video(larger)
    assert (made["width"], made["height"]) == (2 * recipe["output"]["width"], 2 * recipe["output"]["height"])
    assert larger_recipe["parent"] == recipe["id"] and larger_recipe["finishing"]["tile"] == 32
    with pytest.raises(AppError, match="The scale is 2 or 4"):
        client.predict(recipe["id"], 3, {}, api_name="/upscale")
    with pytest.raises(AppError, match="Over the API the model is an id .* or a Hub file"):
        client.predict(recipe["id"], 2, {"model": "/etc/passwd.pth"}, api_name="/upscale")
    with pytest.raises(AppError, match="Unknown option for /upscale: 'factor'"):
        client.predict(recipe["id"], 2, {"factor": 2}, api_name="/upscale")

    stats = client.predict(api_name="/stats")
    assert stats["text"]["GPU"] == "n/a" and stats["sample"]["ram_total_gb"] > 0
    jobs = [job for job in client.predict(api_name="/queue") if job["id"] not in earlier]
    # the I2V video, its re-run, its extension, its smoothed and its upscaled versions
    assert [j["state"] for j in jobs] == ["done"] * 5
    with pytest.raises(AppError, match="no job nope"):
        client.predict("nope", api_name="/stop")


def test_every_mode_endpoint_returns_its_file(running_app, tmp_path):
    from gradio_client import Client, handle_file

    from tests.media_fixtures import make_image, make_mask_video, make_video, speech_like, write_wav

    image = handle_file(str(make_image(tmp_path / "a.png", (96, 64))))
    clip = handle_file(str(make_video(tmp_path / "clip.mp4", (96, 64), fps=16, seconds=1.0)))
    pose = handle_file(str(make_video(tmp_path / "pose.mp4", (64, 64), fps=30, seconds=0.5)))
    face = handle_file(str(make_video(tmp_path / "face.mp4", (64, 64), fps=30, seconds=0.5, source="testsrc")))
    mask = handle_file(str(make_mask_video(tmp_path / "mask.mp4", (96, 64), fps=16, seconds=1.0)))
    speech = handle_file(str(write_wav(tmp_path / "speech.wav", speech_like(1.0, 48000, channels=2), 48000)))
    client = Client(running_app.url, verbose=False)
    calls = {
        "t2v": ("tiny-t2v", None), "preview": ("tiny-t2v", None),
        "i2v": ("tiny-i2v", [image]), "ti2v": ("tiny-ti2v", [image]),
        "flf2v": ("tiny-flf2v", [image, image]), "v2v": ("tiny-t2v", [clip]),
        "vace": ("tiny-vace", [clip, mask, None, None, None]),
        "animate": ("tiny-animate", [image, pose, face, None, None]),  # driving_video: after options
        "s2v": ("tiny-s2v", [image, speech, None]),
    }
    options = {"vace": {"vace_mode": "inpaint", "frames": 9}, "v2v": {"frames": 9}}
    for mode, (model, files) in calls.items():
        out, recipe = client.predict(model, f"{mode} test", *(files or []), {"seed": 1, **options.get(mode, {})},
                                     api_name=f"/{mode}")
        assert recipe["mode"] == mode
        if mode == "preview":
            assert out.endswith(".png")
        else:
            got = read_video(out)
            assert got["count"] == recipe["output"]["frames"] and got["fps"] == recipe["output"]["fps"]
        if mode == "s2v":  # 1 s of 48 kHz stereo speech: 16 frames, with the sound muxed in
            from wan_studio.media import probe_video

            assert recipe["output"]["frames"] == 16 and probe_video(out).has_audio
    # VACE on the Wan 2.2 MoE twin, its depth control made by the studio from the plain clip
    out, recipe = client.predict("tiny-vace-moe", "a dancer", clip, None, None, None, None,
                                 {"seed": 1, "vace_mode": "depth", "frames": 9}, api_name="/vace")
    assert read_video(out)["count"] == 9 and recipe["request"]["guidance_2"] == 5.0 and "video" in recipe["extracted"]
    # Animate from a plain driving video: the studio makes the pose and face videos itself
    driving = handle_file(str(make_video(tmp_path / "dance.mp4", (96, 64), fps=30, seconds=0.3)))
    out, recipe = client.predict("tiny-animate", "a dancer", image, None, None, None, None, {"seed": 1},
                                 driving_video=driving, api_name="/animate")
    assert read_video(out)["count"] == 9 and set(recipe["extracted"]) == {"pose_video", "face_video"}
    # Animate-2 reads the plain driving video itself: 0.3 s at 24 fps, nothing extracted
    out, recipe = client.predict("tiny-animate-2", "a dancer", image, None, None, None, None, {"seed": 1},
                                 driving_video=driving, api_name="/animate")
    assert read_video(out)["count"] == recipe["output"]["frames"] == 7 and "extracted" not in recipe
    # /extract: a control video on its own, as long as the input, at its fps
    made, info = client.predict("depth", clip, {"annotator": "tiny-depth"}, api_name="/extract")
    assert info == {"kind": "depth", "frames": 16, "fps": 16.0} and read_video(made)["count"] == 16
    from gradio_client.exceptions import AppError

    for kind, options, message in (("sketch", {}, "No annotator makes 'sketch' controls"),
                                   ("depth", {"annotator": "tiny-pose"}, "makes pose controls, not depth"),
                                   ("depth", {"colour": 1}, "Unknown option for /extract: 'colour'"),
                                   ("mask", {"annotator": "tiny-segmenter", "box": "1,2,3"},
                                    "A box is four whole numbers"),
                                   ("mask", {"annotator": "tiny-segmenter", "box": [0, 0, 99, 9]},
                                    "not a box inside the"),
                                   ("depth", {"mask_shape": "box"}, "for mask and background videos, not depth")):
        with pytest.raises(AppError, match=message):
            client.predict(kind, clip, options, api_name="/extract")


def test_shared_deployment_keeps_each_sessions_queue_apart(shared_app):
    from gradio_client import Client

    alice, bob = Client(shared_app, verbose=False), Client(shared_app, verbose=False)
    alice.predict("tiny-t2v", "alice's shot", {"seed": 1, "steps": 2}, api_name="/t2v")
    bob.predict("tiny-t2v", "bob's shot", {"seed": 2, "steps": 2}, api_name="/t2v")
    alice_jobs, bob_jobs = alice.predict(api_name="/queue"), bob.predict(api_name="/queue")
    assert len(alice_jobs) == 1 and len(bob_jobs) == 1 and alice_jobs[0]["id"] != bob_jobs[0]["id"]
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="no job"):
        bob.predict(alice_jobs[0]["id"], api_name="/stop")


def test_the_start_up_lines_name_the_apps_own_flags(running_app, tmp_path):
    """Not gradio's "set share=True in launch()": the app has --share; and no library complains, at
    start or in an I2V run (transformers' note that it has no torchvision is our choice). The worker's
    app: its log holds its start and every call this module's tests (and any module before) made."""
    from gradio_client import Client, handle_file

    from tests.media_fixtures import make_image

    url = running_app.url
    image = handle_file(str(make_image(tmp_path / "a.png", (96, 64))))
    Client(url, verbose=False).predict("tiny-i2v", "a boat", image, {"seed": 1}, api_name="/i2v")
    printed = open(running_app.log_path).read()
    assert f"Wan Studio is running at {url}" in printed
    assert "start it with --share" in printed and "share=True" not in printed and "launch()" not in printed
    assert "torchvision" not in printed and "Traceback" not in printed, printed
