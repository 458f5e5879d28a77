"""Text to video end to end on the Tiny models through the engine."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from tests.conftest import read_video
from wan_studio.errors import Cancelled
from wan_studio.media.recipe import read_embedded_recipe
from wan_studio.requests import T2VRequest, request_from_dict


@pytest.mark.parametrize(
    "model, size, frames",
    [("tiny-t2v", (96, 64), 13), ("tiny-t2v-moe", (64, 96), 9), ("tiny-ti2v", (64, 64), 9)],
)
def test_t2v_writes_playable_mp4_matching_request(engine, model, size, frames):
    request = T2VRequest(model=model, prompt="a red fox running through snow", width=size[0], height=size[1],
                         frames=frames, seed=11)
    result = engine.generate(request)

    video = read_video(result.media)
    assert video["codec"] == "h264" and video["pix_fmt"].startswith("yuv420p")
    assert (video["width"], video["height"]) == size
    assert video["count"] == frames
    assert video["fps"] == request.checkpoint.fps
    assert result.thumbnail.is_file() and result.recipe_path.is_file()
    recipe = json.loads(result.recipe_path.read_text())
    assert recipe["request"]["seed"] == 11 and recipe["model"]["id"] == model
    assert recipe["output"] == {"file": result.media.name, "frames": frames, "width": size[0], "height": size[1],
                                "fps": request.checkpoint.fps, "duration_s": round(frames / request.checkpoint.fps, 3)}
    # the same recipe is embedded in the mp4 itself
    assert read_embedded_recipe(result.media)["request"] == recipe["request"]


def test_moe_hands_both_guidance_scales_to_the_pipeline(engine, monkeypatch):
    import pipelines.common as common

    seen = {}
    original = common.call_pipeline

    def spy(pipe, request, callback, **kwargs):
        seen.update(kwargs, guidance=request.guidance, has_transformer_2=pipe.transformer_2 is not None,
                    boundary=pipe.config.boundary_ratio)
        return original(pipe, request, callback, **kwargs)

    monkeypatch.setattr("pipelines.t2v.call_pipeline", spy)
    engine.generate(T2VRequest(model="tiny-t2v-moe", prompt="waves", guidance=2.5, guidance_2=6.0, seed=1))
    assert seen["guidance"] == 2.5 and seen["guidance_scale_2"] == 6.0
    assert seen["has_transformer_2"] and seen["boundary"] == 0.875


def test_same_seed_same_frames_and_recipe_reproduces(engine):
    first = engine.generate(T2VRequest(model="tiny-t2v", prompt="a lighthouse at night", seed=1234))
    again = engine.generate(T2VRequest(model="tiny-t2v", prompt="a lighthouse at night", seed=1234))
    other = engine.generate(T2VRequest(model="tiny-t2v", prompt="a lighthouse at night", seed=99))
    a, b, c = (read_video(r.media)["frames"] for r in (first, again, other))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)

    recipe = json.loads(first.recipe_path.read_text())
    rerun = engine.generate(request_from_dict(recipe["request"]))
    assert np.array_equal(read_video(rerun.media)["frames"], a)


def test_random_seed_is_drawn_and_recorded(engine):
    request = T2VRequest(model="tiny-t2v", prompt="clouds").prepare()
    assert isinstance(request.seed, int)
    result = engine.generate(request)
    assert result.recipe["request"]["seed"] == request.seed


def test_cancel_stops_within_a_step_and_writes_nothing(engine, settings):
    cancel = threading.Event()
    steps_seen = []

    def on_progress(event):
        if event.stage == "denoising":
            steps_seen.append(event.step)
            cancel.set()

    with pytest.raises(Cancelled):
        engine.generate(T2VRequest(model="tiny-t2v", prompt="a storm", steps=6, seed=3), on_progress, cancel)
    assert steps_seen == [1]
    assert engine.library.list() == []
    assert not any(settings.output_dir.glob("*")) if settings.output_dir.exists() else True


def test_progress_reports_every_step_then_done(engine):
    events = []
    engine.generate(T2VRequest(model="tiny-t2v", prompt="rain", steps=5, seed=3), on_progress=events.append)
    steps = [e.step for e in events if e.stage == "denoising"]
    assert steps == [1, 2, 3, 4, 5]
    assert events[0].stage == "loading" and events[-1].stage == "done"
    remaining = [e.remaining_s for e in events if e.stage == "denoising"]
    assert all(r > 0 for r in remaining[:-1]) and remaining[-1] == 0  # an estimate until the last step, then none left


def test_listeners_get_latent_previews_and_the_last_step_always_has_one(engine, monkeypatch):
    events = []
    engine.generate(T2VRequest(model="tiny-t2v", prompt="rain", width=64, height=64, frames=9, steps=10, seed=3),
                    on_progress=events.append)
    previews = [e for e in events if e.stage == "denoising" and e.preview is not None]
    assert previews and previews[-1].step == 10
    assert all(e.preview.dtype == np.uint8 and e.preview.ndim == 3 and e.preview.shape[2] == 3 for e in previews)

    # with nobody listening no preview is drawn at all
    import wan_studio.runtime.engine as engine_module

    drawn = []
    monkeypatch.setattr(engine_module, "latent_preview", lambda latents, **kwargs: drawn.append(1))
    engine.generate(T2VRequest(model="tiny-t2v", prompt="rain", width=64, height=64, frames=9, steps=4, seed=3))
    assert drawn == []


def test_latent_preview_is_stable_rgb_of_the_middle_frame():
    import torch

    from wan_studio.media.previews import latent_preview

    latents = torch.randn(1, 16, 5, 12, 20, generator=torch.Generator().manual_seed(0))
    image = latent_preview(latents)
    assert image.dtype == np.uint8 and image.shape == (12 * 12, 20 * 12, 3)  # upscaled by whole pixels to <= 256
    assert image.min() == 0 and image.max() == 255  # stretched to the full range
    assert np.array_equal(image, latent_preview(latents.clone()))
    assert np.array_equal(latent_preview(latents.to(torch.bfloat16)).shape, image.shape)
    assert latent_preview(torch.randn(1, 2, 8, 8)).shape == (256, 256, 3)  # fewer than 3 channels: grey-ish
    assert latent_preview(None) is None and latent_preview(torch.randn(3, 3)) is None


def test_the_wan_vaes_preview_with_their_fixed_latent_to_rgb_projection():
    """A pixel's colour depends on its own latent only (colours cannot jump from step to step): for the
    Wan 2.1 VAE, all-zero latents give its published bias, (-0.1835, -0.0868, -0.3360), mapped from
    -1..1 to 0..255, and one channel at 1 adds that channel's published factors there only."""
    import torch

    from wan_studio.media.previews import latent_preview

    zeros = torch.zeros(1, 16, 3, 4, 4)
    image = latent_preview(zeros, max_side=4, vae="wan2.1-vae")
    assert image.shape == (4, 4, 3)
    assert tuple(image[0, 0]) == (104, 116, 85)  # round((1 + bias) / 2 * 255)
    lit = zeros.clone()
    lit[0, 14, 1, 2, 3] = 1.0  # channel 14 of the middle frame: factors (0.3477, 0.2275, 0.2950)
    image = latent_preview(lit, max_side=4, vae="wan2.1-vae")
    assert tuple(image[2, 3]) == (148, 145, 122) and tuple(image[0, 0]) == (104, 116, 85)
    assert latent_preview(torch.zeros(1, 48, 3, 4, 4), max_side=4, vae="wan2.2-vae")[0, 0].tolist() == [132, 116, 110]
