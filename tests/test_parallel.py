"""One job split over several GPUs (`--parallel N`, diffusers' context parallelism over
torch.distributed). Run here as two CPU ranks over gloo: tests/shims/sitecustomize.py (test-only,
on the ranks' PYTHONPATH) lets diffusers place ranks on a machine without an accelerator."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import psutil
import pytest

from tests.conftest import ROOT, read_video
from tests.media_fixtures import make_image, make_video
from wan_studio.cli import main as cli_main
from wan_studio.errors import RequestError
from wan_studio.requests import S2VRequest, T2VRequest

SHIMS = ROOT / "tests" / "shims"


@pytest.fixture
def cpu_ranks(monkeypatch):
    monkeypatch.setenv("PYTHONPATH",
                       os.pathsep.join(filter(None, [str(SHIMS), str(ROOT), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("GLOO_SOCKET_IFNAME", "lo")  # the ranks talk over the loopback interface only


def _generate(capsys, argv) -> Path:
    assert cli_main(["generate", *argv, "--quiet"]) == 0
    return Path(capsys.readouterr().out.strip())


@pytest.mark.parametrize("mode", ["t2v", "i2v", "vace"])
def test_parallel_2_gives_the_frames_one_gpu_gives(settings, tmp_path, capsys, cpu_ranks, mode):
    image = make_image(tmp_path / "start.png", (64, 64))
    source = make_video(tmp_path / "source.mp4", (64, 64), fps=16, seconds=1.0)
    # VACE on the Wan 2.2 mixture of experts: both experts split, each with the VACE plan
    own = {"t2v": ["--model", "tiny-t2v"], "i2v": ["--model", "tiny-i2v", "--image", str(image)],
           "vace": ["--model", "tiny-vace-moe", "--vace-mode", "grayscale", "--video", str(source)]}[mode]
    argv = ["--mode", mode, *own, "--prompt", "a boat at dawn", "--frames", "9", "--size", "64x64", "--steps", "3",
            "--seed", "7"]
    one, two = _generate(capsys, argv), _generate(capsys, [*argv, "--parallel", "2"])
    difference = np.abs(read_video(one)["frames"].astype(int) - read_video(two)["frames"].astype(int)).max()
    assert difference <= 2  # 2/255
    import json

    split = json.loads(two.with_suffix(".json").read_text())["parallel"]
    assert (split["ranks"], split["split"], split["backend"]) == (2, "ulysses", "gloo")
    assert json.loads(two.with_suffix(".json").read_text())["request"]["parallel"] == 2


@pytest.mark.parametrize("mode, method", [("t2v", "magcache"), ("vace", "taylorseer")])
def test_a_split_job_keeps_its_step_cache_and_its_frames(settings, tmp_path, capsys, cpu_ranks, mode, method):
    import json

    source = make_video(tmp_path / "source.mp4", (64, 64), fps=16, seconds=1.0)
    own = {"t2v": ["--model", "tiny-t2v"], "vace": ["--model", "tiny-vace", "--vace-mode", "grayscale",
                                                    "--video", str(source)]}[mode]
    argv = ["--mode", mode, *own, "--prompt", "a boat at dawn", "--frames", "9", "--size", "64x64", "--steps", "12",
            "--seed", "7", "--cache", "balanced"]
    one, two = _generate(capsys, argv), _generate(capsys, [*argv, "--parallel", "2"])
    difference = np.abs(read_video(one)["frames"].astype(int) - read_video(two)["frames"].astype(int)).max()
    assert difference <= 2
    cached = [json.loads(path.with_suffix(".json").read_text())["cache"] for path in (one, two)]
    assert cached[0]["method"] == method and cached[0]["skipped"] > 0
    assert cached[1] == cached[0]  # the same work skipped, split or not


def test_a_split_job_runs_without_a_cache_whose_choice_depends_on_each_gpus_tokens(settings, tmp_path, capsys,
                                                                                   cpu_ranks):
    import json

    image = make_image(tmp_path / "start.png", (64, 64))
    made = _generate(capsys, ["--mode", "i2v", "--model", "tiny-i2v", "--image", str(image), "--prompt", "x",
                              "--frames", "9", "--steps", "4", "--seed", "7", "--cache", "balanced", "--parallel", "2"])
    cache = json.loads(made.with_suffix(".json").read_text())["cache"]
    assert cache["method"] is None and cache["message"].startswith(
        "Ran without a step cache: FirstBlockCache (this model's) decides on each GPU's share of the tokens")


def _ranks() -> list:
    return [p for p in psutil.Process().children(recursive=True) if "wan_studio.runtime.rank" in " ".join(p.cmdline())]


def test_split_jobs_one_after_another_run_on_the_same_ranks_until_a_one_gpu_job(engine, cpu_ranks, monkeypatch):
    """A batch of split jobs starts its ranks once: the second job finds them waiting, forms its
    group again on them, and makes what one GPU makes. A one-GPU job on a GPU ends them first."""
    import dataclasses

    from wan_studio.backend import Backend

    request = T2VRequest(model="tiny-t2v", prompt="a kite over a beach", frames=9, width=64, height=64, steps=3,
                         seed=1, parallel=2)
    engine.generate(request)
    first_ranks = sorted(p.pid for p in _ranks())
    assert len(first_ranks) == 2  # they wait for the next split job
    second = dataclasses.replace(request, prompt="a kite over a lake", seed=2)
    split = engine.generate(second)
    assert sorted(p.pid for p in _ranks()) == first_ranks
    # (this CPU as a GPU for the engine's one check: the ranks' CUDA contexts would hold the job's memory)
    monkeypatch.setattr(Backend, "has_gpu", property(lambda self: True))
    alone = engine.generate(dataclasses.replace(second, parallel=1))
    assert not _ranks()
    difference = np.abs(read_video(split.media)["frames"].astype(int)
                        - read_video(alone.media)["frames"].astype(int)).max()
    assert difference <= 2 and split.recipe["parallel"]["ranks"] == 2


def test_a_rank_that_dies_fails_the_job_with_its_name_and_ends_the_others(engine, cpu_ranks):
    from wan_studio.runtime.parallel import RankFailed

    killed = []

    def kill_rank_1(status):
        if status.state == "running" and status.step >= 1 and not killed:
            victim = next(p for p in _ranks() if p.environ().get("RANK") == "1")
            victim.kill()
            killed.append(victim.pid)

    request = T2VRequest(model="tiny-t2v", prompt="x", frames=9, width=64, height=64, steps=200, seed=1, parallel=2)
    with pytest.raises(RankFailed,
                       match="Rank 1 of 2 stopped \\(killed by signal 9\\); the job was ended on every GPU"):
        engine.generate(request, on_progress=kill_rank_1)
    assert killed and not _ranks()  # rank 0 was ended too
    assert not list(engine.library.root.glob("*.mp4"))  # nothing saved


def test_without_a_gpu_per_rank_the_job_says_so(engine, monkeypatch):
    from wan_studio.runtime.parallel import RankFailed

    monkeypatch.delenv("PYTHONPATH", raising=False)  # the product as it is: no shim
    request = T2VRequest(model="tiny-t2v", prompt="x", frames=9, width=64, height=64, steps=2, seed=1, parallel=2)
    with pytest.raises(RankFailed, match="--parallel 2 needs a GPU per rank; this machine has none"):
        engine.generate(request)


def test_one_job_across_two_machines_with_torchrun_one_command_each(settings, tmp_path, capsys, cpu_ranks):
    """torchrun on each machine (here two, both on 127.0.0.1, each with its own output folder), each
    running `generate`: the job is split over both, and the first machine keeps the result."""
    import subprocess
    import sys

    from wan_studio.runtime.parallel import free_port

    argv = ["--mode", "t2v", "--model", "tiny-t2v", "--prompt", "a boat at dawn", "--frames", "9", "--size", "64x64",
            "--steps", "3", "--seed", "7"]
    from wan_studio import catalog, models

    models.resolve(catalog.get("tiny-t2v"), settings)  # as each machine would have it
    port = free_port()
    machines = []
    for node in (0, 1):
        env = {**os.environ, "WAN_STUDIO_OUTPUT_DIR": str(tmp_path / f"machine-{node}")}
        machines.append(subprocess.Popen(
            [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1", "--node-rank",
             str(node), "--master-addr", "127.0.0.1", "--master-port", str(port), "-m", "wan_studio", "generate",
             *argv, "--parallel", "2", "--quiet"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True))
    try:
        outputs = [machine.communicate(timeout=600) for machine in machines]
    finally:  # a hung rendezvous leaves nothing running behind the test
        for machine in machines:
            machine.kill()
            machine.wait()
    assert [machine.returncode for machine in machines] == [0, 0], [err[-2000:] for _, err in outputs]
    kept = Path(outputs[0][0].strip())
    assert kept.parent == tmp_path / "machine-0" and outputs[1][0].strip() == ""  # rank 0's machine keeps it
    assert not (tmp_path / "machine-1").exists() or not list((tmp_path / "machine-1").glob("*.mp4"))
    one = _generate(capsys, argv)
    difference = np.abs(read_video(one)["frames"].astype(int) - read_video(kept)["frames"].astype(int)).max()
    assert difference <= 2
    import json

    assert json.loads(kept.with_suffix(".json").read_text())["parallel"]["ranks"] == 2


def test_under_torchrun_the_ranks_and_the_seed_must_agree(settings, monkeypatch, capsys):
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "none")
    for name, value in (("RANK", "0"), ("WORLD_SIZE", "2"), ("LOCAL_RANK", "0")):
        monkeypatch.setenv(name, value)
    argv = ["generate", "--mode", "t2v", "--model", "tiny-t2v", "--prompt", "x", "--frames", "9", "--size", "64x64"]
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert cli_main([*argv, "--seed", "1", "--parallel", "2"]) == 2
    assert ("error: Under torchrun, --parallel must be the number of ranks it starts (4: --nnodes x "
            "--nproc-per-node); got --parallel 2.") in capsys.readouterr().err
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert cli_main([*argv, "--parallel", "2"]) == 2
    assert "error: Under torchrun, give --seed: every machine must start from the same noise." in \
        capsys.readouterr().err


@pytest.mark.parametrize("build, message", [
    (lambda m: T2VRequest(model="tiny-t2v", prompt="x", frames=9, width=64, height=64, parallel=3),
     "Tiny T2V (random weights) has 2 attention heads, which do not split over 3 GPUs"),
    (lambda m: T2VRequest(model="tiny-t2v", prompt="x", frames=9, width=64, height=64, parallel=0),
     "GPUs for this job must be a whole number from 1 to 16; got 0"),
    (lambda m: T2VRequest(model="tiny-t2v", prompt="x", frames=61, width=64, height=64, parallel=2),
     "runs its windows on one GPU for now"),
    (lambda m: S2VRequest(model="tiny-s2v", prompt="x", image=str(m["image"]), audio=str(m["audio"]), parallel=2),
     "S2V runs on one GPU"),
])
def test_wrong_parallel_settings_are_named(tmp_path, build, message):
    from tests.media_fixtures import speech_like, write_wav

    media = {"image": make_image(tmp_path / "face.png", (64, 64)),
             "audio": write_wav(tmp_path / "voice.wav", speech_like(1.0), 16000)}
    with pytest.raises(RequestError, match=re.escape(message)) as caught:
        build(media).prepare()
    assert caught.value.field == "parallel"


def test_the_cost_line_predicts_a_split_and_offers_one_on_a_machine_with_gpus_to_spare():
    import dataclasses

    from wan_studio.memory.choose import choose, cost_line
    from wan_studio.memory.estimate import parallel_seconds
    from wan_studio.memory.plans import simulated_machine

    machine = simulated_machine("cuda", 24, (8, 9))  # a 24 GB Ada card
    request = T2VRequest(model="wan2.1-t2v-14b", prompt="x", seed=1).prepare()  # 81 frames at 1280x720
    assert "--parallel" not in cost_line(request, machine, attention="native", gpus=1)
    offered = cost_line(request, machine, attention="native", gpus=4)
    assert offered.endswith("(--parallel 4)") and " · on 4 GPUs about " in offered  # 40 heads: 4 divides them
    assert cost_line(request, machine, attention="native", gpus=3).endswith("(--parallel 2)")  # 3 does not divide 40
    split = dataclasses.replace(request, parallel=4).prepare()
    assert " · split over 4 GPUs" in cost_line(split, machine, attention="native", gpus=4)
    # the model: the transformer's work divides by the ranks; the link's traffic is added on top
    choice = choose(request.checkpoint, request, machine, attention="native")
    est = choice.estimate
    denoise = est.seconds_breakdown["denoise"]
    free_link = parallel_seconds(est, request.checkpoint, request, choice.plan, machine, 2, link_gb_s=1e12)
    assert free_link == pytest.approx(est.seconds - denoise / 2, rel=1e-3)
    pcie = parallel_seconds(est, request.checkpoint, request, choice.plan, machine, 2)
    assert free_link < pcie < est.seconds
    assert parallel_seconds(est, request.checkpoint, request, choice.plan, machine, 4) < pcie


def _nvml_with_links(active: int, speed_mbps: int):
    """NVML as it answers on a machine whose GPU 0 has `active` NVLink links (a stand-in: no GPU here)."""
    from types import SimpleNamespace

    class NVMLError(Exception):
        pass

    def link_state(handle, link):
        if link >= 18:
            raise NVMLError("invalid link")
        return 1 if link < active else 0

    field = SimpleNamespace(nvmlReturn=0, value=SimpleNamespace(uiVal=speed_mbps))
    return SimpleNamespace(NVMLError=NVMLError, NVML_NVLINK_MAX_LINKS=18, NVML_FEATURE_ENABLED=1,
                           NVML_FI_DEV_NVLINK_SPEED_MBPS_COMMON=90, nvmlInit=lambda: None, nvmlShutdown=lambda: None,
                           nvmlDeviceGetCount=lambda: 4, nvmlDeviceGetHandleByIndex=lambda index: index,
                           nvmlDeviceGetNvLinkState=link_state, nvmlDeviceGetFieldValues=lambda handle, ids: [field])


def test_nvlink_between_the_gpus_shortens_the_predicted_split(monkeypatch):
    import sys

    from wan_studio import backend
    from wan_studio.memory.choose import cost_line
    from wan_studio.memory.plans import simulated_machine

    machine = simulated_machine("cuda", 80, (9, 0), name="H100")
    request = T2VRequest(model="wan2.1-t2v-14b", prompt="x", seed=1).prepare()  # 81 frames at 1280x720

    def offered_minutes(nvml) -> float:
        monkeypatch.setitem(sys.modules, "pynvml", nvml)
        backend.gpu_link_gb_s.cache_clear()
        line = cost_line(request, machine, attention="native", gpus=4)
        found = re.search(r" · on 4 GPUs about (\d+) min \(--parallel 4\)$", line)
        assert found, line
        return int(found.group(1))

    try:
        over_pcie = offered_minutes(_nvml_with_links(0, 0))
        assert backend.gpu_link_gb_s() is None  # no active link: the GPUs talk over PCIe
        over_nvlink = offered_minutes(_nvml_with_links(18, 25000))
        assert backend.gpu_link_gb_s() == 450.0  # an H100's 18 links at 25 GB/s each way
    finally:
        backend.gpu_link_gb_s.cache_clear()
    assert over_nvlink < over_pcie
