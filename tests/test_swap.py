"""The swap manager keeps exactly one pipeline active and shares common components."""

from __future__ import annotations

import gc
import weakref

from wan_studio import catalog
from wan_studio.requests import T2VRequest
from wan_studio.runtime.swap import module_bytes


def test_activate_is_a_noop_when_already_active(engine):
    record = catalog.get("tiny-t2v")
    first = engine.swap.activate(record, "t2v")
    loads = engine.swap.loads
    assert engine.swap.activate(record, "t2v") is first
    assert engine.swap.loads == loads


def test_switching_checkpoints_releases_the_first(engine):
    dense = engine.swap.activate(catalog.get("tiny-t2v"), "t2v")
    dense_transformer = weakref.ref(dense.transformer)
    dense_text_encoder = dense.text_encoder
    dense_bytes = engine.swap.resident_bytes()
    del dense
    gc.collect()

    moe = engine.swap.activate(catalog.get("tiny-t2v-moe"), "t2v")
    gc.collect()
    assert dense_transformer() is None, "the previous transformer is still referenced"
    # the UMT5 text encoder and the VAE are shared, not loaded twice
    assert moe.text_encoder is dense_text_encoder
    after = engine.swap.resident_bytes()
    assert after["shared"] == dense_bytes["shared"]
    # the active pipeline now holds two transformers' worth of weights, none of the dense one
    assert after["active"] == module_bytes([moe.transformer, moe.transformer_2]) > 0
    assert engine.swap.active_key.model == "tiny-t2v-moe"


def test_same_checkpoint_other_pipeline_class_reuses_modules(engine):
    t2v = engine.swap.activate(catalog.get("tiny-t2v"), "t2v")
    loads = engine.swap.loads
    v2v = engine.swap.activate(catalog.get("tiny-t2v"), "v2v")
    assert type(v2v).__name__ == "WanVideoToVideoPipeline"
    assert v2v.transformer is t2v.transformer
    assert engine.swap.loads == loads  # nothing read from disk again


def test_release_frees_the_active_pipeline(engine):
    engine.generate(T2VRequest(model="tiny-t2v", prompt="a boat", seed=1))
    transformer = weakref.ref(engine.swap.activate(catalog.get("tiny-t2v"), "t2v").transformer)
    engine.swap.release()
    gc.collect()
    assert transformer() is None
    assert engine.swap.active_key is None
    assert engine.swap.resident_bytes()["active"] == 0
