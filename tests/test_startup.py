"""Start-up: the page is built without the engine, the queue database or any ML library; those
come after the page answers (bench/startup.py measures the time)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import ROOT

BUILD_PAGE = """
import json, sys
from wan_studio.settings import load_settings
from ui.shell import build_studio
demo = build_studio(load_settings())
print(json.dumps({"modules": sorted(sys.modules), "concurrency": demo._queue.default_concurrency_limit}))
"""


def test_building_the_page_loads_no_engine_queue_database_or_ml_library(settings):
    out = subprocess.run([sys.executable, "-c", BUILD_PAGE], cwd=ROOT, env=dict(os.environ), capture_output=True,
                         text=True, check=True).stdout
    built = json.loads(out.strip().splitlines()[-1])
    loaded = set(built["modules"])
    for heavy in ("torch", "diffusers", "transformers", "accelerate", "sqlite3", "wan_studio.runtime.studio",
                  "wan_studio.runtime.engine", "wan_studio.queue.store"):
        assert heavy not in loaded, f"{heavy} is imported before the page is up"
    assert built["concurrency"] == 1  # every GPU listener still waits its turn (gradio has no public getter)
    assert not (settings.output_dir / "queue.db").exists()  # the studio opens it after launch


def test_a_damaged_queue_database_is_reported_when_the_page_loads(settings, monkeypatch):
    import ui.runtime
    from ui.shell import queue_warning_update

    monkeypatch.setattr(ui.runtime, "_studio", None)
    assert queue_warning_update(settings)["visible"] is False

    monkeypatch.setattr(ui.runtime, "_studio", None)
    settings.output_dir.mkdir(parents=True, exist_ok=True)
    (settings.output_dir / "queue.db").write_bytes(os.urandom(8192))
    update = queue_warning_update(settings)
    assert update["visible"] is True and "damaged" in update["value"]
    monkeypatch.setattr(ui.runtime, "_studio", None)


def test_mode_endpoints_share_hidden_components_but_keep_their_parameters(settings):
    from ui.api import endpoint_parameters, file_inputs
    from ui.shell import build_studio

    demo = build_studio(settings)
    endpoints = demo.get_api_info()["named_endpoints"]
    for mode in file_inputs():
        parameters = endpoints[f"/{mode}"]["parameters"]
        assert [p["parameter_name"] for p in parameters] == list(endpoint_parameters(mode))
        assert [p["label"] for p in parameters] == list(endpoint_parameters(mode))
        assert [r["label"] for r in endpoints[f"/{mode}"]["returns"]] == ["result", "recipe"]
    inputs = {fn.api_name: fn.inputs for fn in demo.fns.values() if fn.api_name in file_inputs()}
    assert inputs["i2v"][2] is inputs["ti2v"][2] is inputs["s2v"][2]  # one hidden "image" File for all
