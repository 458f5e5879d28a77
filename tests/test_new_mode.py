"""A mode is declared once: a throw-away mode written into a temporary module (its request class, its
wrapper and its Tiny catalog record, nothing else) appears in the CLI, the named API, batch files and
the page, and makes a video, while no file of the studio changes."""

from __future__ import annotations

import importlib
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import ROOT, read_video
from tests.media_fixtures import make_image

MODE = "opener"
MODULE = "throwaway_opener_mode"
# the whole mode: what a new mode's author writes (here in one module; in the studio, its request module,
# its wrapper and its records in catalog.json)
SOURCE = '''
"""Opener: text to video that opens on a still picture (a throw-away mode for tests/test_new_mode.py)."""

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from wan_studio import catalog
from wan_studio.memory.step_cache import SKIP_BLOCKS
from wan_studio.requests import ExampleFile, ModeInfo, register_mode
from wan_studio.requests.base import GenerationRequest
from wan_studio.requests.fields import request_field


@register_mode
@dataclass
class OpenerRequest(GenerationRequest):
    mode: ClassVar[str] = "opener"
    mode_info: ClassVar[ModeInfo] = ModeInfo(
        label="Opens on a still", short="Opener", order=35, icon="t2v", prompt_label="What happens after the still",
        placeholder="The picture comes to life", wrapper=__name__, step_cache=SKIP_BLOCKS,
        examples=({"prompt": "The sea comes to life", "still": ExampleFile("sea")},),
    )

    still: str | None = request_field(label="Opening still", file="image", help="the picture the video opens on")

    def _read_inputs(self, record, inputs) -> None:
        if self.still:
            inputs.image_size("still", self.still)


def run(pipe, request, record, callback):
    from PIL import Image

    from pipelines import t2v

    frames = np.array(t2v.run(pipe, request, record, callback))
    if request.still:
        picture = Image.open(request.still).convert("RGB").resize((frames.shape[2], frames.shape[1]))
        frames[0] = np.asarray(picture)
    return frames


# its Tiny checkpoint: the Tiny T2V architecture (models/tiny.py builds it), running this mode
catalog.add_checkpoints({**catalog.raw_record("tiny-t2v"), "id": "tiny-opener", "name": "Tiny Opener (random weights)",
                         "pipelines": {"opener": "WanPipeline"}})
'''


def studio_files() -> dict[str, tuple[int, int]]:
    """Every file of the studio's packages, with its size and modification time."""
    found = {}
    for package in ("wan_studio", "pipelines", "ui", "presets"):
        for path in (ROOT / package).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                stat = path.stat()
                found[str(path)] = (stat.st_size, stat.st_mtime_ns)
    return found


@pytest.fixture
def opener(tmp_path, monkeypatch):
    """The throw-away mode, imported from a temporary folder; out of every registry afterwards."""
    from wan_studio import catalog
    from wan_studio.requests import unregister_mode

    (tmp_path / f"{MODULE}.py").write_text(textwrap.dedent(SOURCE))
    monkeypatch.syspath_prepend(str(tmp_path))
    before = studio_files()
    try:
        yield importlib.import_module(MODULE)
    finally:
        unregister_mode(MODE)
        catalog.remove_checkpoints("tiny-opener")
        sys.modules.pop(MODULE, None)
    after = studio_files()
    changed = sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))
    assert not changed, f"adding a mode changed files of the studio: {changed}"


def test_a_mode_from_a_module_of_its_own_reaches_every_front_end(opener, settings, tmp_path, capsys):
    from ui.shell import build_studio
    from wan_studio.cli import build_parser
    from wan_studio.cli import main as cli_main
    from wan_studio.queue.batch import load_batch
    from wan_studio.requests import request_types

    assert list(request_types())[:4] == ["t2v", "i2v", "ti2v", MODE]  # its order: after TI2V
    still = make_image(tmp_path / "red.png", (96, 64), color=(220, 30, 30))  # a red-tinted gradient

    # the CLI: a --mode it lists, its input as a flag
    generate = build_parser()._subparsers._group_actions[0].choices["generate"]
    text = generate.format_help()
    assert f"{MODE}," in text and "--still FILE" in text and "the picture the video opens on" in text
    assert build_parser().parse_args(["generate", "--mode", MODE, "--still", str(still)]).still == str(still)

    # a batch file: its column, the path relative to the file, the machine's default checkpoint (Tiny here)
    batch = tmp_path / "jobs.csv"
    batch.write_text(f"mode,prompt,still,size\n{MODE},a red curtain opens,{still.name},96x64\n")
    (job,) = load_batch(batch, settings)
    assert (type(job).__name__, job.model, job.still, job.width) == ("OpenerRequest", "tiny-opener", str(still), 96)

    # the page and the named API, from one build of the studio (not launched)
    demo = build_studio(settings)
    ids = {block.elem_id: block for block in demo.blocks.values() if getattr(block, "elem_id", None)}
    assert ids[f"nav-{MODE}"].value == "Opens on a still\nOpener" and ids[f"nav-{MODE}"].icon  # its entry: label, short
    assert "Opens on a still" in ids[f"{MODE}-title"].value
    assert ids[f"{MODE}-prompt"].label == "What happens after the still"
    assert ids[f"{MODE}-still"].label == "Opening still"  # its declared input, an upload box on its panel
    assert f"{MODE}-examples" in ids
    parameters = demo.get_api_info()["named_endpoints"][f"/{MODE}"]["parameters"]
    assert [p["parameter_name"] for p in parameters] == ["model", "prompt", "still", "options"]

    # and it makes a video: through the queue, its own wrapper (which opens on the still) on its Tiny checkpoint
    capsys.readouterr()
    assert cli_main(["generate", "--mode", MODE, "--prompt", "a red curtain opens", "--still", str(still),
                     "--size", "96x64", "--frames", "9", "--seed", "3", "--quiet"]) == 0
    video = read_video(Path(capsys.readouterr().out.strip().splitlines()[-1]))
    assert (video["count"], video["width"], video["height"]) == (9, 96, 64)
    picture = np.asarray(Image.open(still).convert("RGB"), dtype=np.float32)
    off = [np.abs(frame.astype(np.float32) - picture).mean() for frame in video["frames"]]
    assert off[0] < 4, off  # the still (through H.264)
    assert min(off[1:]) > 20, off  # then what the Tiny model made


def test_the_throwaway_mode_is_gone_afterwards():
    """The registration of the test above does not outlive it (whichever order the tests run in)."""
    from wan_studio import catalog
    from wan_studio.requests import request_types

    assert MODE not in request_types() and MODE not in catalog.modes()
    assert all(record.id != "tiny-opener" for record in catalog.checkpoints())
