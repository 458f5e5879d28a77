"""Stats: host figures, NVML through a fake module, torch figures only when torch is loaded, sampler."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from wan_studio.runtime import stats
from wan_studio.runtime.stats import GpuSample, Sample, StatsSampler, format_sample, take_sample

ROOT = Path(__file__).resolve().parent.parent
GIB = 2**30


class FakeNVMLError(Exception):
    pass


def fake_nvml(gpus: list[dict] | None = None, fail: bool = False, fail_power: bool = False):
    """A module-like object with pynvml's function names, backed by `gpus` records."""
    gpus = gpus or []
    calls = {"init": 0}

    def guard(fn):
        def wrapped(*args):
            if fail:
                raise FakeNVMLError("NVML Shared Library Not Found")
            return fn(*args)
        wrapped.__name__ = fn.__name__
        return wrapped

    def init():
        calls["init"] += 1

    def power(handle):
        if fail_power:
            raise FakeNVMLError("Not Supported")
        return gpus[handle]["power_mw"]

    return SimpleNamespace(
        calls=calls,
        NVMLError=FakeNVMLError,
        NVML_TEMPERATURE_GPU=0,
        nvmlInit=guard(init),
        nvmlDeviceGetCount=guard(lambda: len(gpus)),
        nvmlDeviceGetHandleByIndex=guard(lambda i: i),
        nvmlDeviceGetName=guard(lambda h: gpus[h]["name"]),
        nvmlDeviceGetUtilizationRates=guard(lambda h: SimpleNamespace(gpu=gpus[h]["util"], memory=0)),
        nvmlDeviceGetMemoryInfo=guard(
            lambda h: SimpleNamespace(used=gpus[h]["used"], total=gpus[h]["total"], free=0)
        ),
        nvmlDeviceGetTemperature=guard(lambda h, sensor: gpus[h]["temp"]),
        nvmlDeviceGetPowerUsage=guard(power),
    )


TWO_GPUS = [
    {"name": b"NVIDIA GeForce RTX 4080", "util": 87, "used": int(10.2 * GIB),
     "total": 16 * GIB, "temp": 64, "power_mw": 250_000},
    {"name": "NVIDIA H100 80GB HBM3", "util": 3, "used": 512 * 2**20,
     "total": 80 * GIB, "temp": 41, "power_mw": 71_500},
]


def test_sample_without_gpu_reads_na():
    sample = take_sample(nvml=fake_nvml([]))
    assert sample.gpus == []
    assert sample.ram_total_gb > 0 and 0 < sample.ram_used_gb <= sample.ram_total_gb
    assert sample.process_rss_gb > 0
    assert 0 <= sample.cpu_percent <= 100 * 64
    text = format_sample(sample)
    assert text["GPU"] == "n/a"
    assert not any(key.startswith(("GPU 0", "VRAM", "Temp", "Power")) for key in text)
    assert text["RAM"].endswith(" GB") and " / " in text["RAM"]
    assert text["CPU"].endswith("%")
    assert sample.as_dict()["gpus"] == []


def test_format_never_raises_on_missing_figures():
    empty = format_sample(Sample(time=0.0, gpus=[GpuSample(index=0)]))
    assert empty["CPU"] == empty["RAM"] == empty["Process"] == "n/a"
    assert empty["GPU"] == empty["GPU 0 util"] == empty["VRAM 0"] == "n/a"
    assert empty["Temp 0"] == empty["Power 0"] == empty["Torch allocated"] == "n/a"
    assert set(format_sample(None).values()) == {"n/a"}
    partial = format_sample(Sample(time=0.0, gpus=[GpuSample(index=0, memory_used_gb=2.0)]))
    assert partial["VRAM 0"] == "2.0 GB"


def test_fake_nvml_two_gpus():
    nvml = fake_nvml(TWO_GPUS)
    sample = take_sample(nvml=nvml)
    first, second = sample.gpus
    assert (first.index, first.name, second.name) == (0, "NVIDIA GeForce RTX 4080", "NVIDIA H100 80GB HBM3")
    assert first.util_percent == 87
    assert first.memory_used_gb == pytest.approx(10.2)
    assert first.memory_total_gb == 16
    assert second.memory_used_gb == pytest.approx(0.5)
    assert (first.temperature_c, first.power_w, second.power_w) == (64, 250, 71.5)

    text = format_sample(sample)
    assert text["GPU"] == "0: NVIDIA GeForce RTX 4080, 1: NVIDIA H100 80GB HBM3"
    assert text["GPU 0 util"] == "87%"
    assert text["VRAM 0"] == "10.2 / 16.0 GB"
    assert text["Temp 0"] == "64 °C"
    assert text["Power 0"] == "250 W"
    assert text["VRAM 1"] == "0.5 / 80.0 GB"
    assert text["Power 1"] == "72 W"

    take_sample(nvml=nvml)
    assert nvml.calls["init"] == 1  # initialised once and kept


def test_one_unsupported_figure_is_none():
    sample = take_sample(nvml=fake_nvml(TWO_GPUS[:1], fail_power=True))
    assert sample.gpus[0].power_w is None
    assert sample.gpus[0].util_percent == 87
    assert format_sample(sample)["Power 0"] == "n/a"


def test_failing_nvml_gives_no_gpus():
    sample = take_sample(nvml=fake_nvml(TWO_GPUS, fail=True))
    assert sample.gpus == []
    assert format_sample(sample)["GPU"] == "n/a"


def test_nothing_at_import_and_take_sample_does_not_import_torch():
    code = (
        "import sys, threading\n"
        "from wan_studio.runtime.stats import take_sample\n"
        "assert 'pynvml' not in sys.modules and 'psutil' not in sys.modules, 'probed at import'\n"
        "assert threading.active_count() == 1, 'a thread started at import'\n"
        "s = take_sample()\n"
        "assert 'torch' not in sys.modules, 'stats imported torch'\n"
        "assert s.torch_allocated_gb is None and s.torch_reserved_gb is None\n"
        "assert s.torch_peak_allocated_gb is None and s.mps_current_gb is None\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_torch_loaded_without_cuda_init_leaves_cuda_figures_none():
    # a fresh process: in this one another test may have initialised CUDA on a GPU machine
    code = (
        "import torch\n"
        "from wan_studio.runtime.stats import take_sample\n"
        "s = take_sample()\n"
        "assert s.torch_allocated_gb is None and s.torch_reserved_gb is None, 'read CUDA figures'\n"
        "assert not torch.cuda.is_initialized(), 'take_sample initialised CUDA'\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_sampler_history_is_bounded_and_stops():
    sampler = StatsSampler(maxlen=5, nvml=fake_nvml([]))
    assert sampler.latest() is None and sampler.history() == []
    sampler.start(interval_s=0.01)
    try:
        deadline = time.time() + 120
        while len(sampler.history()) < 5 and time.time() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)
        history = sampler.history()
        assert len(history) == 5  # full, and never more
        assert [s.time for s in history] == sorted(s.time for s in history)
        assert len(sampler.history(seconds=3600)) == 5
    finally:
        sampler.stop()
    assert not sampler.running
    assert sampler.latest() is sampler.history()[-1]
    count = len(sampler.history())
    last = sampler.latest()
    time.sleep(0.05)
    assert sampler.latest() is last and len(sampler.history()) == count


def test_history_filters_by_age():
    sampler = StatsSampler(maxlen=10)
    now = time.time()
    for age in (100, 50, 5, 1):
        sampler._samples.append(Sample(time=now - age))
    assert [round(now - s.time) for s in sampler.history(seconds=10)] == [5, 1]
    assert len(sampler.history()) == 4


def test_start_twice_is_one_thread_and_restart_works():
    sampler = StatsSampler(nvml=fake_nvml([]))
    before = {t.ident for t in threading.enumerate()}
    sampler.start(interval_s=0.05)
    sampler.start(interval_s=0.05)
    try:
        new = [t for t in threading.enumerate() if t.ident not in before and t.name == "wan-studio-stats"]
        assert len(new) == 1 and new[0].daemon
    finally:
        sampler.stop()
    assert not new[0].is_alive()
    sampler.start(interval_s=0.05)
    assert sampler.running
    sampler.stop()
    assert not sampler.running


def test_get_sampler_is_shared_and_not_started():
    assert stats.get_sampler() is stats.get_sampler()
    assert stats.get_sampler().maxlen == 600


def test_bad_arguments():
    with pytest.raises(ValueError):
        StatsSampler(maxlen=0)
    with pytest.raises(ValueError):
        StatsSampler().start(interval_s=0)
