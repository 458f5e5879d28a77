"""The attention backend: the fastest that is present and correct, checked once per device and
package versions, with a pin that falls back to SDPA when it cannot run."""

from __future__ import annotations

import json

import pytest

from wan_studio.errors import RequestError
from wan_studio.memory import attention
from wan_studio.requests import T2VRequest

ADA = ("cuda", (8, 9))


def fake_checker(results: dict):
    calls = []

    def check(name, device):
        calls.append(name)
        return results.get(name)

    return check, calls


def test_the_fastest_backend_that_passes_is_used_and_the_failures_are_said_once(tmp_path, monkeypatch):
    monkeypatch.setattr(attention, "installed", lambda name: name in ("sage", "flash", "_native_cudnn", "native"))
    check, calls = fake_checker({"sage": "its result differs from SDPA's by 0.300 (more than 0.06)",
                                 "sage_hub": "kernels is not installed", "flash": "RuntimeError: no kernel image",
                                 "flash_hub": "kernels is not installed"})
    choice = attention.settle("cuda", "NVIDIA GeForce RTX 4080", *ADA, store=tmp_path / "attention.json", checker=check)
    assert choice.name == "_native_cudnn" and choice.label == "cuDNN SDPA"
    assert calls == ["sage", "sage_hub", "flash", "flash_hub", "_native_cudnn"]
    # the installed ones that failed are named with their reason; absent packages are not listed
    assert choice.messages == ["Attention: cuDNN SDPA; not used: SageAttention (its result differs from SDPA's by "
                               "0.300 (more than 0.06)); FlashAttention 2 (RuntimeError: no kernel image)."]


def test_the_answer_is_remembered_per_device_and_package_versions(tmp_path, monkeypatch):
    store = tmp_path / "attention.json"
    check, calls = fake_checker({})  # everything passes: the first candidate wins
    first = attention.settle("cuda", "NVIDIA H100 80GB HBM3", "cuda", (9, 0), store=store, checker=check)
    assert first.name == "sage" and calls == ["sage"]
    again = attention.settle("cuda", "NVIDIA H100 80GB HBM3", "cuda", (9, 0), store=store, checker=check)
    assert again.name == "sage" and calls == ["sage"]  # not checked again
    assert list(json.loads(store.read_text())) == [attention.device_key("NVIDIA H100 80GB HBM3")]
    monkeypatch.setattr(attention, "package_versions", lambda: {"torch": "9.9", "sageattention": "3.0"})
    attention.settle("cuda", "NVIDIA H100 80GB HBM3", "cuda", (9, 0), store=store, checker=check)
    assert calls == ["sage", "sage"]  # new versions: checked again


def test_the_order_follows_the_gpu_generation():
    assert attention.candidates("cuda", (12, 0))[0] == "sage_blackwell_hub"
    hopper = attention.candidates("cuda", (9, 0))
    assert hopper.index("_flash_3") < hopper.index("flash") < hopper.index("_native_cudnn") < hopper.index("native")
    assert "_flash_3" not in attention.candidates("cuda", (8, 9))
    assert attention.candidates("mps", None) == attention.candidates("cpu", None) == ("native",)
    assert attention.candidates("cuda", (7, 5)) == ("native",)  # Turing: SDPA


def test_a_pinned_backend_that_cannot_run_falls_back_to_sdpa_with_the_reason():
    check, _ = fake_checker({"flash": "flash_attn is not installed"})
    choice = attention.settle("cuda", "RTX 4080", *ADA, pinned="flash", checker=check)
    assert choice.name == "native"
    assert choice.messages == ["The pinned attention backend FlashAttention 2 cannot be used (flash_attn is not "
                               "installed); using PyTorch SDPA."]
    assert attention.settle("cuda", "RTX 4080", *ADA, pinned="flash", checker=fake_checker({})[0]).name == "flash"
    on_cpu = attention.settle("cpu", "CPU", "cpu", None, pinned="sage", checker=check)
    assert on_cpu.name == "native" and "it needs a CUDA GPU" in on_cpu.messages[0]


def test_the_real_check_on_this_machine():
    assert attention.check("native", "cpu") is None
    missing = attention.check("sage", "cpu")  # SageAttention is not a dependency: not installed in CI
    assert missing == "sageattention is not installed"


def test_a_job_can_pin_a_backend_and_a_bad_name_is_refused(engine):
    with pytest.raises(RequestError) as info:
        T2VRequest(model="tiny-t2v", prompt="x", attention="fastest")
    assert info.value.field == "attention" and "choose one of: auto, native, _native_cudnn, flash" in str(info.value)
    result = engine.generate(T2VRequest(model="tiny-t2v", prompt="x", width=64, height=64, frames=5, steps=2, seed=1,
                                        attention="native"))
    assert result.recipe["memory"]["attention"] == "native"  # the CPU runs SDPA
