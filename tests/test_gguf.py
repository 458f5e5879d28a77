"""A checkpoint's transformer from a GGUF file (config.json transformer_files): it generates the same
video within Q8_0's error, stays quantized on the device, and the plan counts the file's size."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import read_video
from tests.gguf_fixtures import write_gguf
from wan_studio.errors import ModelNotAvailable
from wan_studio.requests import T2VRequest

RUN = dict(model="tiny-t2v", prompt="a fox in the snow", width=64, height=64, frames=9, steps=3, seed=1)


def with_config(tmp_path, monkeypatch, config: dict):
    from wan_studio.settings import load_settings

    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    monkeypatch.setenv("WAN_STUDIO_CONFIG", str(path))
    return load_settings()


@pytest.fixture
def tiny_gguf(settings, tmp_path):
    from diffusers import WanTransformer3DModel

    from wan_studio import catalog, models

    folder = models.resolve(catalog.get("tiny-t2v"), settings)
    transformer = WanTransformer3DModel.from_pretrained(folder, subfolder="transformer")
    return write_gguf(transformer.state_dict(), tmp_path / "tiny-t2v-Q8_0.gguf")


def test_a_gguf_transformer_makes_the_same_video_within_its_quantization(settings, tiny_gguf, tmp_path, monkeypatch):
    import gguf

    from wan_studio.runtime.engine import Engine

    reference = read_video(Engine(settings).generate(T2VRequest(**RUN)).media)["frames"].astype(np.int16)
    engine = Engine(with_config(tmp_path, monkeypatch, {"transformer_files": {"tiny-t2v": str(tiny_gguf)}}))
    result = engine.generate(T2VRequest(**RUN, memory_plan="low-vram"))
    video = read_video(result.media)
    assert (video["count"], video["width"], video["height"]) == (9, 64, 64)
    assert np.abs(video["frames"].astype(np.int16) - reference).mean() < 4  # Q8_0's error, not another model
    transformer = engine.swap.active_pipeline.transformer
    assert transformer.quantization_method == "gguf"
    kinds = {getattr(p, "quant_type", None) for p in transformer.parameters()}
    assert gguf.GGMLQuantizationType.Q8_0 in kinds  # kept quantized, dequantized layer by layer
    assert ("int8-weight skipped: the transformer's weights come quantized from a GGUF file"
            in result.recipe["memory"]["notes"])


def test_the_plan_counts_the_files_size(settings, tmp_path, monkeypatch):
    from wan_studio import catalog
    from wan_studio.memory.choose import choose
    from wan_studio.memory.plans import simulated_machine

    record, rtx4080 = catalog.get("wan2.1-t2v-14b"), simulated_machine("cuda", 16, (8, 9))
    request = T2VRequest(model=record.id, prompt="x", width=832, height=480, frames=81).prepare()
    bf16 = choose(record, request, rtx4080)
    assert bf16.estimate.breakdown["weights_transformer"] > 13  # 14B parameters, in FP8 at the least
    q4 = tmp_path / "wan2.1-t2v-14b-Q4_K_M.gguf"
    with q4.open("wb") as handle:  # a sparse file of a Q4 14B's size: only its size is read
        handle.truncate(int(8.5 * 2**30))
    with_config(tmp_path, monkeypatch, {"transformer_files": {record.id: str(q4)}})
    from_file = choose(record, request, rtx4080)
    assert from_file.estimate.breakdown["weights_transformer"] == 8.5
    # the whole 8.5 GiB transformer fits on the 16 GB card: one model at a time instead of block by block
    assert (bf16.plan.name, from_file.plan.name) == ("low-vram", "balanced")
    assert from_file.estimate.seconds < bf16.estimate.seconds


def test_a_missing_gguf_file_is_a_clear_error(settings, tmp_path, monkeypatch):
    from wan_studio.runtime.engine import Engine

    engine = Engine(with_config(tmp_path, monkeypatch,
                                {"transformer_files": {"tiny-t2v": str(tmp_path / "gone.gguf")}}))
    with pytest.raises(ModelNotAvailable, match=r"The GGUF file .*gone.gguf does not exist"):
        engine.generate(T2VRequest(**RUN))
