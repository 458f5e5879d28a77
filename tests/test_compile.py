"""Compiling the repeated blocks: torch.compile where the settings allow it, the compiled graphs kept
for the next start, and ZeroGPU's ahead-of-time compiled blocks made when a Space starts."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import read_video
from wan_studio import catalog
from wan_studio.memory import plans

ROOT = Path(__file__).resolve().parents[1]


def _generate(cli_env: dict, compile_setting: str, inductor_cache: Path) -> dict:
    """`generate` in a process of its own (one studio start); the recipe of what it made."""
    env = {**cli_env, "WAN_STUDIO_COMPILE": compile_setting, "TORCHINDUCTOR_CACHE_DIR": str(inductor_cache)}
    done = subprocess.run([sys.executable, "-m", "wan_studio", "generate", "--model", "tiny-t2v", "--prompt",
                           "a red fox runs through snow", "--size", "64x64", "--frames", "9", "--steps", "3",
                           "--seed", "7"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    video = Path(done.stdout.strip().splitlines()[-1])
    return {"recipe": json.loads(video.with_suffix(".json").read_text()), "video": video}


def _generate_here(settings, compile_setting: str) -> dict:
    """The same job on an engine in this process, where a fresh start is not what is checked."""
    from wan_studio.requests import T2VRequest
    from wan_studio.runtime.engine import Engine

    engine = Engine(dataclasses.replace(settings, compile=compile_setting))
    result = engine.generate(T2VRequest(model="tiny-t2v", prompt="a red fox runs through snow", width=64, height=64,
                                        frames=9, steps=3, seed=7))
    return {"recipe": result.recipe, "video": result.media}


def test_compiled_blocks_make_the_same_video_and_the_next_start_compiles_nothing(cli_env, settings, tmp_path):
    eager = _generate_here(settings, "off")
    first = _generate(cli_env, "on", tmp_path / "inductor-first")
    memory = first["recipe"]["memory"]
    assert memory["compile"] == "repeated-blocks"
    assert any(note.startswith("compiling took") and "1 graph compiled" in note for note in memory["notes"]), memory
    assert memory["compile_s"] > 0
    assert eager["recipe"]["memory"]["compile"] == "none" and "compile_s" not in eager["recipe"]["memory"]
    # the compiled blocks compute what the eager ones do
    compiled_frames = read_video(first["video"])["frames"].astype(int)
    eager_frames = read_video(eager["video"])["frames"].astype(int)
    assert compiled_frames.shape == eager_frames.shape == (9, 64, 64, 3)
    assert np.abs(compiled_frames - eager_frames).mean() < 1.0
    kept = list((settings.models_dir / "compiled").glob("torch-*.bin"))
    assert len(kept) == 1 and kept[0].stat().st_size > 0
    first_file = kept[0]
    # a second start whose inductor cache holds no graph, as a fresh container's: every graph comes from the
    # kept file. The first start's C++ kernels are copied in (torch keeps no C++ in the kept file, so a fresh
    # container builds it again; the suite need not build it twice): what counts is the graph cache
    second_cache = tmp_path / "inductor-second"
    for built in (tmp_path / "inductor-first").iterdir():
        if len(built.name) == 2:  # inductor's folders by source hash: each kernel's .cpp and .so
            shutil.copytree(built, second_cache / built.name)
    second = _generate(cli_env, "on", second_cache)
    notes = second["recipe"]["memory"]["notes"]
    assert any("from the cache" in note and "compiled" not in note.split("(")[1] for note in notes
               if note.startswith("compiling took")), notes
    # the second start wrote its own file holding every graph of the first, which went
    kept = list((settings.models_dir / "compiled").glob("torch-*.bin"))
    assert len(kept) == 1 and kept[0] != first_file


def test_without_a_cpp_compiler_the_job_runs_uncompiled_and_says_why(settings, monkeypatch):
    monkeypatch.setenv("CXX", "no-such-compiler")
    made = _generate_here(settings, "on")
    memory = made["recipe"]["memory"]
    assert "compile skipped: torch.compile on the CPU needs a C++ compiler (no-such-compiler)" in memory["notes"]
    assert read_video(made["video"])["count"] == 9


def test_group_offloaded_blocks_compile_and_match_eager():
    """The low-VRAM plan's group offloading around compiled blocks (onload and offload break the graph)."""
    import torch

    from wan_studio.memory.compile import compile_blocks
    from wan_studio.models.tiny import make_transformer

    def run(model):
        torch.manual_seed(0)
        latents, text = torch.randn(1, 16, 3, 8, 8), torch.randn(1, 8, model.config.text_dim)
        with torch.no_grad():
            return model(latents, torch.tensor([500]), text, return_dict=False)[0]

    torch._dynamo.reset()  # graphs another test compiled for these blocks' code would be reused
    eager = run(make_transformer("dense"))
    model = make_transformer("dense")
    assert compile_blocks([model], "cpu", artifacts=None) == []
    model.enable_group_offload(onload_device=torch.device("cpu"), offload_device=torch.device("cpu"),
                               offload_type="block_level", num_blocks_per_group=1)
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    assert torch.allclose(run(model), eager, atol=1e-5)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] > graphs  # the blocks did run compiled


def test_plans_compile_where_the_setting_and_the_machine_allow(monkeypatch):
    from wan_studio.backend import Backend
    from wan_studio.memory.plans import Machine, ladder, machine_from_backend

    record = catalog.get("wan2.1-t2v-14b")
    cuda = Machine("cuda", 16.0, 64.0, "RTX 4080", (8, 9))
    assert [p.compile for p in ladder(cuda, record)] == ["repeated-blocks"] * 4 + ["none"]  # not sequential
    assert {p.compile for p in ladder(dataclasses.replace(cuda, compile="off"), record)} == {"none"}
    cpu = Machine("cpu", 64.0, 64.0, "CPU")
    assert {p.compile for p in ladder(cpu, record)} == {"none"}
    assert [p.compile for p in ladder(dataclasses.replace(cpu, compile="on"), record)][:2] == ["repeated-blocks"] * 2
    # CUDA without Triton (Windows): "auto" means no compile, so the estimate counts no speed-up
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "triton" else object())
    gpu = Backend("cuda", "cuda", "RTX 4080", total_memory_gb=16.0, bf16=True, capability=(8, 9))
    assert machine_from_backend(gpu).compile == "off"
    assert machine_from_backend(gpu, compile="on").compile == "on"


def test_a_wrong_compile_setting_is_named_at_start(monkeypatch):
    from wan_studio.errors import StudioError
    from wan_studio.settings import load_settings

    monkeypatch.setenv("WAN_STUDIO_COMPILE", "fast")
    with pytest.raises(StudioError, match="compile must be auto, on or off; got 'fast'."):
        load_settings()
    monkeypatch.delenv("WAN_STUDIO_COMPILE")
    assert load_settings(compile="off").compile == "off"


# -- ZeroGPU: blocks compiled ahead of time when the Space starts -----------------------------------
def _real_aoti_helpers(monkeypatch):
    """The real `spaces` AOTI helpers on this CPU build of torch. Their package (`spaces.zero.torch`)
    patches CUDA when imported, which a CPU build cannot do, so the helpers' own module is loaded on its
    own; export, AOTInductor compile, packaging, Hub download and loading are the real ones."""
    import spaces
    import spaces.zero

    folder = Path(spaces.zero.__file__).parent / "torch"
    package = types.ModuleType("spaces.zero.torch")
    package.__path__ = [str(folder)]
    monkeypatch.setitem(sys.modules, "spaces.zero.torch", package)
    spec = importlib.util.spec_from_file_location("spaces.zero.torch.aoti", folder / "aoti.py")
    helpers = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, helpers)
    spec.loader.exec_module(helpers)
    for name in ("aoti_capture", "aoti_compile_and_save", "aoti_load_from_package_dir", "aoti_blocks_load"):
        monkeypatch.setattr(spaces, name, getattr(helpers, name))
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    return spaces


@pytest.fixture
def spaces_aoti(monkeypatch):
    spaces = _real_aoti_helpers(monkeypatch)
    monkeypatch.setattr(plans, "_learnt_blocks", {})  # what a start compiles stays in this test
    return spaces


def _space_engine(settings):
    from wan_studio.backend import Backend
    from wan_studio.runtime.engine import Engine

    # a ZeroGPU machine whose device is the CPU (spaces emulates CUDA on a real Space)
    return Engine(settings, backend=Backend("zerogpu", "cpu", "ZeroGPU (test)", total_memory_gb=48.0, bf16=True))


def _space(settings):
    from wan_studio.runtime.studio import Studio

    engine = _space_engine(settings)
    return Studio(settings, engine=engine), engine


def test_a_space_compiles_its_blocks_at_start_once_and_a_later_start_only_loads_them(settings, spaces_aoti,
                                                                                       monkeypatch, tmp_path):
    from tests.lora_fixtures import tiny_dims, write_lora_file
    from wan_studio.backend import Backend
    from wan_studio.memory import aoti
    from wan_studio.requests import T2VRequest
    from wan_studio.runtime.engine import Engine
    from wan_studio.settings import load_settings

    monkeypatch.setenv("WAN_STUDIO_LORAS_DIR", str(tmp_path / "loras"))  # where requests look for LoRAs
    settings = dataclasses.replace(load_settings(), zerogpu_preload=("tiny-t2v-moe",))
    at_start_size = T2VRequest(model="tiny-t2v-moe", prompt="a lighthouse in a storm", width=64, height=64, frames=9,
                               steps=4, seed=11)
    other_size = dataclasses.replace(at_start_size, width=96, frames=13)  # the package's token count is free
    reservations = []
    real_gpu = spaces_aoti.GPU

    def recording_gpu(task=None, *, duration=None, size=None):
        reservations.append((duration, size))
        return real_gpu(task, duration=duration, size=size)

    monkeypatch.setattr(spaces_aoti, "GPU", recording_gpu)
    studio, engine = _space(settings)
    studio.start()
    try:
        assert studio.warning is None
        assert (aoti.COMPILE_RESERVATION_S, "large") in reservations  # the preloaded plan's machine size
        folders = list((settings.models_dir / "compiled" / "aoti" / "tiny-t2v-moe").iterdir())
        assert len(folders) == 1 and aoti.made(folders[0])["seconds"] > 0
        loads = engine.swap.loads
        assert loads == 1, "the compiled blocks went on the weights loaded at start, without a reload"
        results = [studio.wait_for_result(studio.submit(request), timeout_s=300)
                   for request in (at_start_size, other_size)]
        for result in results:
            memory = result.recipe["memory"]
            assert memory["compile"] == "aoti"
            assert any(note.startswith("AOTI blocks compiled on this Space at start in") for note in memory["notes"])
        pipe = engine.swap.active_pipeline
        for expert in (pipe.transformer, pipe.transformer_2):  # one compile serves both experts' blocks
            assert all(type(block.forward).__name__ == "LazyAOTIModelWithWeights" for block in expert.blocks)
        assert engine.swap.loads == loads
        # a job with a LoRA runs the plain blocks (the compiled ones hold the weights without it)
        lora = write_lora_file(settings.loras_dir / "style.safetensors", "kijai",
                               tiny_dims("tiny-t2v-moe", settings), rank=4, seed=5)
        with_lora = studio.wait_for_result(studio.submit(dataclasses.replace(
            at_start_size, loras=[{"source": lora.name, "weight": 1.0}])), timeout_s=300)
        assert with_lora.recipe["memory"]["compile"] == "none"
        assert "Compiled blocks off for this job: they would run without its LoRAs." in with_lora.recipe["messages"]
        assert "AOTI not used for this job; runs uncompiled" in with_lora.recipe["memory"]["notes"]
        # and the next plain job has its compiled blocks back, making what the first one made
        again = studio.wait_for_result(studio.submit(at_start_size), timeout_s=300)
        assert again.recipe["memory"]["compile"] == "aoti"
        assert "LoRA layers of an earlier job unloaded for the compiled blocks" in again.recipe["memory"]["notes"]
        assert np.array_equal(read_video(again.media)["frames"], read_video(results[0].media)["frames"])
        assert engine.swap.loads == loads
    finally:
        studio.stop()
    eager = Engine(settings, backend=Backend("cpu", "cpu", "CPU"))  # a plain CPU engine: no AOTI
    for result, request in zip(results, (at_start_size, other_size)):
        plain = eager.generate(request)
        assert plain.recipe["memory"]["compile"] == "none"
        compiled_frames, plain_frames = (read_video(r.media)["frames"].astype(int) for r in (result, plain))
        assert compiled_frames.shape == plain_frames.shape == (request.frames, request.height, request.width, 3)
        assert np.abs(compiled_frames - plain_frames).mean() < 1.0
    assert not np.array_equal(read_video(with_lora.media)["frames"], read_video(results[0].media)["frames"])

    # the next start finds the package: it compiles nothing
    def no_compiling(*args, **kwargs):
        raise AssertionError("a later start compiled again")

    monkeypatch.setattr(spaces_aoti, "aoti_compile_and_save", no_compiling)
    monkeypatch.setattr(plans, "_learnt_blocks", {})
    studio, engine = _space(settings)
    studio.start()
    try:
        assert studio.warning is None
        result = studio.wait_for_result(studio.submit(at_start_size), timeout_s=300)
        assert result.recipe["memory"]["compile"] == "aoti"
    finally:
        studio.stop()


def test_a_space_whose_blocks_will_not_compile_runs_uncompiled_says_why_and_does_not_try_again(
        settings, spaces_aoti, monkeypatch):
    from wan_studio.requests import T2VRequest

    def failing(*args, **kwargs):
        raise RuntimeError("inductor ran out of shared memory")

    monkeypatch.setattr(spaces_aoti, "aoti_compile_and_save", failing)
    settings = dataclasses.replace(settings, zerogpu_preload=("tiny-t2v",))
    studio, _ = _space(settings)
    studio.start()
    try:
        assert studio.warning == ("Could not compile Tiny T2V (random weights)'s blocks at start (inductor ran out "
                                  "of shared memory); jobs run uncompiled.")
        request = T2VRequest(model="tiny-t2v", prompt="rain on a window", width=64, height=64, frames=9, steps=2)
        result = studio.wait_for_result(studio.submit(request), timeout_s=300)
        assert result.recipe["memory"]["compile"] == "none"
        assert ("AOTI skipped: no compiled blocks for Tiny T2V (random weights) (the catalog names none and none "
                "were compiled at start); runs uncompiled") in result.recipe["memory"]["notes"]
    finally:
        studio.stop()
    # the next start remembers the failure instead of spending another reservation on it
    monkeypatch.setattr(spaces_aoti, "aoti_capture", lambda *a, **k: pytest.fail("compiled again"))
    studio, _ = _space(settings)
    studio.start()
    try:
        assert studio.warning.startswith("Compiling Tiny T2V (random weights)'s blocks failed at an earlier start "
                                         "(inductor ran out of shared memory); jobs run uncompiled. Delete ")
    finally:
        studio.stop()


# -- ZeroGPU: blocks compiled ahead of time, from the Hub repo the catalog names ---------------------
STAND_IN_REPO = "tests/tiny-aoti"  # Tiny's stand-in for zerogpu-aoti/Wan2: a variant for its bf16 weights


def test_the_catalog_names_the_design_aoti_repo_for_the_wan22_a14b_fp8_weights_only():
    from wan_studio.memory.plans import ladder, simulated_machine

    named = {record.id: (aoti["repo"], aoti["variants"]) for record in catalog.checkpoints()
             if (aoti := record.extra.get("aoti"))}
    assert named == {model_id: ("zerogpu-aoti/Wan2", {"fp8-dynamic": "fp8da"})
                     for model_id in ("wan2.2-t2v-a14b", "wan2.2-i2v-a14b")}
    space = simulated_machine("zerogpu-large")
    for model_id in named:  # the repo's blocks are FP8 (dynamic activation) blocks: the bf16 rung compiles none
        assert [(plan.quantization, plan.compile) for plan in ladder(space, catalog.get(model_id))] == [
            ("none", "none"), ("fp8-dynamic", "aoti")]


@pytest.fixture(scope="module")
def tiny_block_package(tmp_path_factory, tiny_dir) -> bytes:
    """Tiny T2V's repeated block compiled with AOTInductor the way a Space's start compiles it (the real
    export and compile: half a minute here), made once for the tests that serve it from a repo."""
    from wan_studio.memory import aoti
    from wan_studio.memory.choose import choose
    from wan_studio.memory.estimate import shape_for
    from wan_studio.settings import load_settings

    root = tmp_path_factory.mktemp("aoti-package")
    with pytest.MonkeyPatch.context() as monkeypatch:
        _real_aoti_helpers(monkeypatch)
        monkeypatch.setenv("WAN_STUDIO_OUTPUT_DIR", str(root / "outputs"))
        monkeypatch.setenv("WAN_STUDIO_MODELS_DIR", str(root / "models"))
        monkeypatch.setenv("WAN_STUDIO_TINY_MODELS_DIR", str(tiny_dir))
        engine = _space_engine(load_settings())
        record = catalog.get("tiny-t2v")
        shape = shape_for(record)
        pipe = engine.swap.activate(record, "t2v", choose(record, shape, engine.machine).plan)
        aoti.compile_at_start(pipe, shape.width, shape.height, shape.frames, str(root / "compiled"))
        engine.swap.release()
    return (root / "compiled" / "submodules" / "blocks" / "package.pt2").read_bytes()


def _name_stand_in_repo(monkeypatch) -> None:
    """The catalog names a repo of compiled blocks for Tiny T2V's bf16 weights, as it names
    zerogpu-aoti/Wan2 (fp8da) for Wan 2.2 A14B's FP8 weights."""
    checkpoints = catalog._load()[0]
    record = checkpoints["tiny-t2v"]
    monkeypatch.setitem(checkpoints, "tiny-t2v", dataclasses.replace(record, extra={
        **record.extra, "aoti": {"repo": STAND_IN_REPO, "variants": {"none": "bf16"}}}))


def test_a_space_loads_the_blocks_its_catalog_names_from_the_hub_and_compiles_nothing(
        settings, spaces_aoti, tiny_block_package, monkeypatch, tmp_path):
    from tests.hub_fixtures import MiniHub, point_hub_at
    from wan_studio.backend import Backend
    from wan_studio.requests import T2VRequest
    from wan_studio.runtime.engine import Engine

    _name_stand_in_repo(monkeypatch)
    # the repo as spaces.aoti_blocks_load reads it: a package per repeated block class, in <class>.<variant>/
    hub = MiniHub({"WanTransformerBlock.bf16/package.pt2": tiny_block_package})
    point_hub_at(monkeypatch, hub.url, tmp_path / "hf-cache")
    monkeypatch.setattr(spaces_aoti, "aoti_capture", lambda *a, **k: pytest.fail("compiled at start"))
    settings = dataclasses.replace(settings, zerogpu_preload=("tiny-t2v",))
    request = T2VRequest(model="tiny-t2v", prompt="a kite over a beach", width=64, height=64, frames=9, steps=2,
                         seed=3)
    studio, engine = _space(settings)
    try:
        studio.start()
        assert studio.warning is None
        assert hub.fetched == ["WanTransformerBlock.bf16/package.pt2"]  # once: the job found it in the Hub cache
        result = studio.wait_for_result(studio.submit(request), timeout_s=300)
        memory = result.recipe["memory"]
        assert memory["compile"] == "aoti"
        assert f"AOTI blocks from {STAND_IN_REPO} (bf16)" in memory["notes"]
        blocks = engine.swap.active_pipeline.transformer.blocks
        assert all(type(block.forward).__name__ == "LazyAOTIModelWithWeights" for block in blocks)
        assert engine.swap.loads == 1
    finally:
        studio.stop()
        hub.close()
    assert not (settings.models_dir / "compiled" / "aoti").exists()  # nothing compiled on this Space
    plain = Engine(settings, backend=Backend("cpu", "cpu", "CPU")).generate(request)
    compiled_frames, plain_frames = (read_video(r.media)["frames"].astype(int) for r in (result, plain))
    assert compiled_frames.shape == plain_frames.shape
    assert np.abs(compiled_frames - plain_frames).mean() < 1.0


def test_a_space_whose_blocks_repo_cannot_be_fetched_compiles_them_instead_and_says_why(
        settings, spaces_aoti, tiny_block_package, monkeypatch, tmp_path):
    import huggingface_hub.constants as constants

    from wan_studio.memory import aoti
    from wan_studio.requests import T2VRequest

    _name_stand_in_repo(monkeypatch)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # a Space cut off from the Hub, nothing in its cache
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    compiled = []

    def compile_in_reservation(pipe, size, width, height, frames, folder):
        """Compiling at start as the real one does (the first start-up test runs it); here it writes the
        package compiled once for this file."""
        compiled.append(folder)
        (folder / "submodules" / "blocks").mkdir(parents=True)
        (folder / "submodules" / "blocks" / "package.pt2").write_bytes(tiny_block_package)
        made = {"seconds": 30.0, "captured_at": f"{width}x{height}x{frames}"}
        (folder / aoti.MADE).write_text(json.dumps(made))
        return made

    monkeypatch.setattr(aoti, "compile_in_reservation", compile_in_reservation)
    settings = dataclasses.replace(settings, zerogpu_preload=("tiny-t2v",))
    reason = "the Hub is off for this process (HF_HUB_OFFLINE=1) and they are not in its cache"
    studio, engine = _space(settings)
    try:
        studio.start()
        assert studio.warning == (f"AOTI blocks from {STAND_IN_REPO} (bf16) could not be fetched: {reason}; "
                                  "compiling on this Space instead.")
        assert len(compiled) == 1
        request = T2VRequest(model="tiny-t2v", prompt="fog over a harbour", width=64, height=64, frames=9, steps=2)
        memory = studio.wait_for_result(studio.submit(request), timeout_s=300).recipe["memory"]
        assert memory["compile"] == "aoti"
        assert any(note.startswith("AOTI blocks compiled on this Space at start in") for note in memory["notes"])
    finally:
        studio.stop()
    # remembered for this process: a later start neither fetches nor compiles again
    assert plans.blocks_of(catalog.get("tiny-t2v"))["unfetched"] == {"none": reason}
    monkeypatch.setattr(spaces_aoti, "aoti_blocks_load", lambda *a, **k: pytest.fail("fetched again"))
    studio, engine = _space(settings)
    try:
        studio.start()
        assert studio.warning is None and len(compiled) == 1
    finally:
        studio.stop()


def test_why_a_repo_of_blocks_could_not_be_fetched(spaces_aoti, monkeypatch, tmp_path):
    import huggingface_hub.constants as constants
    import torch
    from huggingface_hub.errors import LocalEntryNotFoundError

    from tests.hub_fixtures import MiniHub, point_hub_at
    from wan_studio.memory import aoti

    class Block(torch.nn.Linear):
        pass

    class Transformer(torch.nn.Module):
        _repeated_blocks = ["Block"]

        def __init__(self):
            super().__init__()
            self.blocks = torch.nn.ModuleList([Block(2, 2)])

    hub = MiniHub({"Block.fp8da/package.pt2": b"not read"})  # the repo has FP8 blocks only
    point_hub_at(monkeypatch, hub.url, tmp_path / "hf-cache")
    try:
        with pytest.raises(Exception) as missing:
            aoti.load_from_repo([Transformer()], "zerogpu-aoti/Wan2", "bf16")
    finally:
        hub.close()
    assert aoti.why_not_fetched(missing.value) == "the repo has no Block.bf16/package.pt2"
    # as hf_hub_download says it when the Hub does not answer (trying for real takes 20 s of retries)
    unreachable = LocalEntryNotFoundError("An error happened while trying to locate the file on the Hub")
    unreachable.__cause__ = ConnectionError("[Errno 111] Connection refused")
    assert aoti.why_not_fetched(unreachable) == ("the Hub could not be reached ([Errno 111] Connection refused) "
                                                 "and they are not in its cache")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert aoti.why_not_fetched(unreachable).startswith("the Hub is off for this process (HF_HUB_OFFLINE=1)")


def test_a_compiled_block_that_fails_runs_the_job_again_uncompiled(settings):
    import torch

    from wan_studio.backend import Backend
    from wan_studio.memory import compile as compiled
    from wan_studio.requests import T2VRequest
    from wan_studio.runtime.engine import Engine

    def broken_backend(graph, example_inputs):
        raise RuntimeError("no kernel for this graph")

    engine = Engine(dataclasses.replace(settings, compile="on"), backend=Backend("cpu", "cpu", "CPU"))
    request = T2VRequest(model="tiny-t2v", prompt="a paper boat", width=64, height=64, frames=9, steps=2, seed=4)
    original = compiled.BACKEND
    compiled.BACKEND = broken_backend
    torch._dynamo.reset()  # no graph another test compiled for these blocks' code is reused
    try:
        result = engine.generate(request)
        later = engine.generate(dataclasses.replace(request, seed=5))
    finally:
        compiled.BACKEND = original
        torch._dynamo.reset()
    assert result.recipe["memory"]["compile"] == "none"
    assert any(message.startswith("The compiled blocks failed (BackendCompilerFailed:") and
               message.endswith("ran again uncompiled.") for message in result.recipe["messages"])
    assert read_video(result.media)["count"] == 9
    # a later job of the checkpoint does not try the failing blocks again
    assert later.recipe["memory"]["compile"] == "none"
    assert ("Compiled blocks off: they failed for this checkpoint earlier; running uncompiled."
            in later.recipe["messages"])
