"""VACE on the Wan 2.2 A14B mixture of experts (Wan2.2-VACE-Fun-A14B), through its Tiny twin
`tiny-vace-moe`: every sub-mode runs with both experts, each at its own guidance, the high-noise
one above the boundary and the low-noise one below it; the controls the studio makes feed it; and
it runs through the CLI and the queue, across a queue restart."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import read_video, run_cli_here
from tests.media_fixtures import make_image, make_video
from wan_studio import catalog
from wan_studio.requests import VACERequest

MODEL = "tiny-vace-moe"


@pytest.fixture
def media(tmp_path):
    folder = tmp_path / "media"
    folder.mkdir()
    mask = np.zeros((120, 160), np.uint8)
    mask[30:90, 40:120] = 255
    Image.fromarray(mask).save(folder / "mask.png")
    return {"clip": make_video(folder / "clip.mp4", (160, 120), fps=24, seconds=1.0),
            "square": make_image(folder / "square.png", (120, 120), color=(10, 200, 10)),
            "mask": folder / "mask.png"}


@pytest.fixture
def experts(monkeypatch):
    """Each transformer call in order: (which expert, the timestep it denoised, the pipeline's guidance)."""
    import diffusers
    from diffusers import WanVACEPipeline

    calls, active = [], {}
    original_call, original_forward = WanVACEPipeline.__call__, diffusers.WanVACETransformer3DModel.forward

    def call(pipe, *args, **kwargs):
        active["pipe"] = pipe
        active["guidance"] = (kwargs.get("guidance_scale"), kwargs.get("guidance_scale_2"))
        return original_call(pipe, *args, **kwargs)

    def forward(module, *args, **kwargs):
        pipe = active["pipe"]
        which = "high" if module is pipe.transformer else "low" if module is pipe.transformer_2 else "?"
        calls.append((which, float(kwargs["timestep"].flatten()[0]), active["guidance"]))
        return original_forward(module, *args, **kwargs)

    monkeypatch.setattr(WanVACEPipeline, "__call__", call)
    monkeypatch.setattr(diffusers.WanVACETransformer3DModel, "forward", forward)
    return calls


SUB_MODES = {
    "grayscale": {"video": "clip"},
    "depth": {"video": "clip", "control_source": "control"},  # a control video made elsewhere
    "inpaint": {"video": "clip", "mask": "mask"},
    "outpaint": {"video": "clip", "outpaint_directions": ["left", "right"], "outpaint_ratio": 0.5},
    "extension": {"extension": "first_frame", "image": "square"},
    "reference": {"reference": ["square"]},
}


@pytest.mark.parametrize("sub_mode", sorted(SUB_MODES))
def test_every_sub_mode_runs_both_experts_split_at_the_boundary(engine, media, experts, sub_mode):
    record = catalog.get(MODEL)
    files = {"video", "mask", "image"}
    fields = {k: [str(media[x]) for x in v] if k == "reference" else str(media[v]) if k in files else v
              for k, v in SUB_MODES[sub_mode].items()}
    request = VACERequest(model=MODEL, prompt="a dancer on a stage", vace_mode=sub_mode, frames=9, seed=4, steps=4,
                          guidance=5.0, guidance_2=2.5, **fields).prepare()
    video = read_video(engine.generate(request).media)
    assert video["count"] == 9 and (video["width"], video["height"]) == (request.width, request.height)
    boundary = record.boundary_ratio * 1000
    # classifier-free guidance: two calls a step, each by the expert that owns the step's noise level
    assert [w for w, t, _ in experts] == ["high" if t >= boundary else "low" for w, t, _ in experts]
    assert {w for w, _, _ in experts} == {"high", "low"}, experts
    assert {g for _, _, g in experts} == {(5.0, 2.5)}


def test_the_studio_made_depth_control_feeds_both_experts(engine, media, experts):
    """control_source raw: the studio's depth annotator makes the control from the plain clip first."""
    request = VACERequest(model=MODEL, prompt="a dancer", vace_mode="depth", video=str(media["clip"]), frames=9,
                          seed=3, steps=4)
    result = engine.generate(request)
    assert read_video(result.media)["count"] == 9
    assert "video" in result.recipe["extracted"]
    assert {w for w, _, _ in experts} == {"high", "low"}


def test_the_real_checkpoint_takes_its_published_defaults_and_cp_plan(tmp_path):
    from wan_studio.runtime.dry_run import prepared_summary
    from wan_studio.settings import Settings

    clip = make_video(tmp_path / "clip.mp4", (832, 480), fps=16, seconds=1.0)
    settings = Settings(output_dir=tmp_path / "out", models_dir=tmp_path / "models", tiny_models_dir=tmp_path / "tiny")
    summary = prepared_summary(VACERequest(model="wan2.2-vace-fun-a14b", prompt="a dancer", vace_mode="pose",
                                           video=str(clip), control_source="control"), settings)
    assert (summary["width"], summary["height"], summary["steps"], summary["flow_shift"]) == (832, 480, 50, 12.0)
    assert summary["experts"]["high_noise"]["guidance"] == summary["experts"]["low_noise"]["guidance"] == 5.0
    assert summary["estimate"]["peak_gib"] > 0


def test_cli_run_and_a_queue_restart(settings, media, engine, capsys):
    proc = run_cli_here(capsys, "generate", "--mode", "vace", "--model", MODEL, "--prompt", "a dancer",
                   "--vace-mode", "grayscale", "--video", str(media["clip"]), "--frames", "9", "--seed", "2")
    assert proc.returncode == 0, proc.stderr
    out = Path(proc.stdout.strip())
    assert read_video(out)["count"] == 9
    assert json.loads(out.with_suffix(".json").read_text())["request"]["guidance_2"] == 5.0

    from wan_studio.queue.store import JobStore
    from wan_studio.queue.worker import QueueWorker

    db, inputs = settings.output_dir / "queue.db", settings.output_dir / ".queue" / "inputs"
    first = JobStore(db, inputs)
    job = first.add(VACERequest(model=MODEL, prompt="after a restart", vace_mode="inpaint", video=str(media["clip"]),
                                bbox=[8, 8, 40, 32], frames=9, seed=6))
    first.close()  # the studio goes away with the job queued; its input files were copied into the queue
    media["clip"].unlink()
    reopened = JobStore(db, inputs)
    QueueWorker(reopened, engine, poll_interval_s=0.2).run_until_empty()
    done = reopened.get(job.id)
    assert done.state == "done", done.messages
    assert read_video(Path(done.result_path))["count"] == 9
    reopened.close()
