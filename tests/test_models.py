"""Model resolution: tiny models built locally, local folders found, missing weights explained."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from wan_studio import catalog, models
from wan_studio.errors import ModelNotAvailable
from wan_studio.models import tiny


@pytest.mark.parametrize("model_id", [c.id for c in catalog.checkpoints() if c.is_tiny])
def test_tiny_models_save_in_diffusers_layout_and_load_with_from_pretrained(settings, model_id):
    from wan_studio.runtime.swap import pipeline_class

    record = catalog.get(model_id)
    folder = models.resolve(record, settings)
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == record.pipeline_class(record.modes[0])
    for component in list(record.components) + list(record.shared):
        assert (folder / component).is_dir(), component
    pipe = pipeline_class(index["_class_name"]).from_pretrained(folder)  # diffusers' own, or ours (S2V)
    assert (pipe.transformer_2 is not None) == record.is_moe if hasattr(pipe, "transformer_2") else True
    if record.expand_timesteps:
        assert pipe.config.expand_timesteps is True
        assert pipe.vae.config.scale_factor_spatial == 16


def test_tiny_build_is_deterministic(tmp_path):
    import torch

    record = catalog.get("tiny-t2v")
    a = tiny.build_pipeline(record).transformer.state_dict()
    b = tiny.build_pipeline(record).transformer.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_tokenizer_is_made_locally_and_handles_any_language():
    tok = tiny.make_tokenizer()
    ids = tok("一只狐狸 in the snow ❄").input_ids
    assert ids[-1] == tok.eos_token_id and tok.unk_token_id not in ids
    assert tok.decode(ids, skip_special_tokens=True) == "一只狐狸 in the snow ❄"


def test_local_models_folder_is_found_before_the_hub(settings):
    record = catalog.get("wan2.1-t2v-1.3b")
    folder = settings.models_dir / "Wan2.1-T2V-1.3B-Diffusers"
    folder.mkdir(parents=True)
    (folder / "model_index.json").write_text("{}")
    assert models.find_local(record, settings) == folder
    assert models.local_state(record, settings).startswith("downloaded")


def test_needed_files_cover_only_pipeline_components():
    patterns = models.needed_files(catalog.get("wan2.2-t2v-a14b"))
    assert "transformer_2/*" in patterns and "text_encoder/*" in patterns and "model_index.json" in patterns
    assert "image_encoder/*" not in patterns


def test_missing_model_with_download_off_names_size_and_command(settings):
    with pytest.raises(ModelNotAvailable) as info:
        models.resolve(catalog.get("wan2.1-t2v-14b"), settings, allow_download=False)
    text = str(info.value)
    assert "Wan 2.1 T2V 14B (Wan-AI/Wan2.1-T2V-14B-Diffusers, about 40.4 GB)" in text
    assert "python -m wan_studio download wan2.1-t2v-14b" in text


def test_a_missing_model_that_cannot_be_fetched_fails_before_the_ml_libraries_load(cli_env):
    """The job says so in about a second: torch, diffusers and transformers (about 4 s) are not loaded."""
    code = ("import sys\n"
            "from wan_studio.errors import ModelNotAvailable\n"
            "from wan_studio.requests import T2VRequest\n"
            "from wan_studio.runtime.engine import Engine\n"
            "from wan_studio.settings import load_settings\n"
            "try:\n"
            "    Engine(load_settings()).generate(T2VRequest(model='wan2.1-t2v-1.3b', prompt='a fox'))\n"
            "except ModelNotAvailable as exc:\n"
            "    print(sorted(name for name in ('torch', 'diffusers', 'transformers') if name in sys.modules))\n"
            "    print(exc)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=dict(cli_env, HF_HUB_OFFLINE="1"),
                          capture_output=True, text=True, timeout=120)
    loaded, message = done.stdout.split("\n", 1)
    assert loaded == "[]", done.stderr[-2000:]
    assert "is not on this machine" in message and "python -m wan_studio download wan2.1-t2v-1.3b" in message


@pytest.mark.parametrize("hub", ["offline", "unreachable"])
def test_missing_model_with_no_hub_gives_one_clear_error(cli_env, hub):
    env = dict(cli_env)
    if hub == "offline":
        env["HF_HUB_OFFLINE"] = "1"
    else:  # the Hub "exists" but nothing answers: a closed port on this machine
        env["HF_HUB_OFFLINE"] = "0"
        env["HF_ENDPOINT"] = "http://127.0.0.1:9"
        env["HF_HUB_ETAG_TIMEOUT"] = "2"
        env["HF_HUB_DOWNLOAD_TIMEOUT"] = "2"
    proc = subprocess.run(
        [sys.executable, "-m", "wan_studio", "generate", "--model", "wan2.1-t2v-1.3b", "--prompt", "a fox", "--quiet"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    assert "Wan 2.1 T2V 1.3B (Wan-AI/Wan2.1-T2V-1.3B-Diffusers, about 17.5 GB) is not on this machine" in proc.stderr
    assert "python -m wan_studio download wan2.1-t2v-1.3b" in proc.stderr
    # no result is written; the queue keeps the failed job with its message, so it can be retried later
    outputs = Path(env["WAN_STUDIO_OUTPUT_DIR"])
    assert not list(outputs.glob("*.mp4")) and not list(outputs.glob("*.json"))
    from wan_studio.queue.store import JobStore

    jobs = JobStore(outputs / "queue.db", outputs / ".queue" / "inputs").list()
    assert [job.state for job in jobs] == ["failed"]
    assert "python -m wan_studio download wan2.1-t2v-1.3b" in jobs[0].error_message
