"""A mode's fields are declared once, on its request class; the CLI, the API, batch files and the
page are derived from the declarations."""

from __future__ import annotations

import dataclasses

import pytest

from tests.media_fixtures import make_image, make_video
from wan_studio.cli import build_parser
from wan_studio.cli import main as cli_main
from wan_studio.errors import RequestError
from wan_studio.queue.batch import load_batch
from wan_studio.requests import request_types
from wan_studio.requests.fields import FILE_KINDS


def test_every_field_is_declared_with_a_label_and_files_with_their_kind():
    for mode, cls in request_types().items():
        for f in dataclasses.fields(cls):
            assert f.metadata.get("label"), (mode, f.name)
            assert f.metadata.get("file") in (None, *FILE_KINDS), (mode, f.name)
    # the inputs a user uploads, per mode, in the API's parameter order (docs/api-and-cli.md, "Gradio API")
    from ui.api import file_inputs

    uploads = file_inputs()
    assert uploads["s2v"] == ("image", "audio", "pose_video")
    assert uploads["flf2v"] == ("image", "last_image")
    assert uploads["t2v"] == ()
    # Extend's video to continue is an input file too (copied with the result), given by /extend, not uploaded
    assert request_types()["t2v"].file_fields == ("continue_from",)


def test_a_new_field_on_a_request_class_becomes_a_cli_flag(monkeypatch):
    from wan_studio.requests import V2VRequest
    from wan_studio.requests.fields import request_field

    @dataclasses.dataclass
    class SlowMotion(V2VRequest):
        mode = "v2v"
        speed: float = request_field(1.0, label="Speed", help="playback speed of the result")

    monkeypatch.setattr("wan_studio.cli.request_flags.request_types", lambda: {"v2v": SlowMotion})
    parser = build_parser()
    args = parser.parse_args(["generate", "--mode", "v2v", "--speed", "0.5"])
    assert args.speed == 0.5
    assert "playback speed of the result" in parser._subparsers._group_actions[0].choices["generate"].format_help()


def test_cli_spellings_and_flags_of_other_modes(settings, tmp_path, capsys):
    video = make_video(tmp_path / "clip.mp4", (64, 48), fps=16, seconds=1.0)
    code = cli_main(["generate", "--mode", "vace", "--model", "tiny-vace", "--prompt", "a vase", "--vace-mode",
                     "outpaint", "--video", str(video), "--outpaint", "left,up", "--dry-run"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert '"outpaint_directions": [\n    "left",\n    "up"\n  ]' in out
    assert cli_main(["generate", "--mode", "t2v", "--model", "tiny-t2v", "--prompt", "x", "--audio", "a.wav"]) == 2
    assert "--audio is not an input of t2v" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        build_parser().parse_args(["generate", "--bbox", "8,eight,56,40"])
    assert "bbox must be whole numbers" in capsys.readouterr().err


def test_batch_cells_take_the_cli_spellings(settings, tmp_path):
    image = make_image(tmp_path / "ref.png", (64, 64))
    batch = tmp_path / "jobs.csv"
    batch.write_text("mode,model,prompt,size,vace_mode,reference,bbox\n"
                     "t2v,tiny-t2v,a fox,96x64,,,\n"
                     f"vace,tiny-vace,a vase,64x64,reference,{image.name},\n")
    fox, vase = load_batch(batch, settings)
    assert (fox.width, fox.height) == (96, 64)
    assert vase.reference == [str(image)] and (vase.width, vase.height) == (64, 64)
    batch.write_text("mode,model,prompt,size\nt2v,tiny-t2v,a fox,96 by 64\n")
    with pytest.raises(RequestError, match="row 2: Size must look like 832x480"):
        load_batch(batch, settings)
    both = tmp_path / "jobs.json"
    both.write_text('[{"model": "tiny-t2v", "prompt": "a", "size": "96x64", "width": 96}]')
    with pytest.raises(RequestError, match="either size or width and height"):
        load_batch(both, settings)


def test_the_api_offers_each_modes_declared_files():
    from ui.api import file_inputs

    # every declared file but Extend's video to continue (a result of the library: `/extend` takes its id)
    assert file_inputs() == {mode: tuple(name for name in cls.file_fields if name != "continue_from")
                             for mode, cls in request_types().items()}
    assert file_inputs()["animate"] == ("image", "pose_video", "face_video", "background_video", "mask_video",
                                        "driving_video")


def test_the_page_lays_out_each_modes_declared_inputs():
    from ui.panel_specs import page_inputs

    vace = [(item.name, item.kind, item.visible) for item in page_inputs("vace")]
    assert vace == [  # declaration order; the page starts on inpaint, so only its inputs show
        ("window_overlap", "number", True), ("color_correction", "number", True),  # laid out last, in an accordion
        ("vace_mode", "choice", True), ("video", "video", True), ("control_source", "choice", False),
        ("mask", "image-or-video", True), ("bbox", "text", True), ("point", "text", True),
        ("outpaint_directions", "choices", False),
        ("outpaint_ratio", "number", False), ("extension", "choice", False), ("image", "image", False),
        ("last_image", "image", False), ("reference", "image", True), ("conditioning_scale", "number", True),
    ]
    s2v = [(item.name, item.kind) for item in page_inputs("s2v")]  # clip length and resolution: CLI and API
    assert s2v == [("image", "image"), ("audio", "audio"), ("pose_video", "video"), ("init_first_frame", "flag"),
                   ("solver", "choice")]
    animate = {item.name: item for item in page_inputs("animate")}
    assert animate["animate_mode"].choices == (("Animate the character", "animate"),
                                               ("Replace a person in the video", "replace"))
    assert (animate["mask_video"].visible, animate["pose_video"].visible) == (False, True)
    assert animate["retarget"].kind == "flag" and animate["retarget"].value is False  # a checkbox, unticked


def test_a_new_field_on_a_request_class_appears_on_its_panel(monkeypatch):
    import gradio as gr

    from ui import panels
    from wan_studio.requests import V2VRequest
    from wan_studio.requests.fields import request_field

    @dataclasses.dataclass
    class SlowMotion(V2VRequest):
        mode = "v2v"
        speed: float = request_field(1.0, label="Playback speed", bounds=(0.25, 4.0, 0.25), help="of the result")

    monkeypatch.setattr("wan_studio.requests.request_types", lambda: {**request_types(), "v2v": SlowMotion})
    with gr.Blocks():
        panel = panels.build_panel("v2v", "2.1", visible=True)
    speed = panel.inputs["speed"]
    assert isinstance(speed, gr.Slider)
    assert (speed.label, speed.minimum, speed.maximum, speed.step, speed.value) == (
        "Playback speed", 0.25, 4.0, 0.25, 1.0)
    assert list(panel.inputs) == ["video", "strength", "speed", "window_overlap", "color_correction"]


def test_the_page_offers_how_long_video_windows_join_with_the_defaults_the_windows_use():
    import gradio as gr

    from ui import panels
    from ui.panel_specs import build_request

    with gr.Blocks():
        t2v = panels.build_panel("t2v", "tiny", visible=True)
        i2v = panels.build_panel("i2v", "tiny", visible=True)
    overlap, colour = t2v.inputs["window_overlap"], t2v.inputs["color_correction"]
    assert (overlap.value, overlap.visible, colour.value) == (5, True, 0.5)
    assert (i2v.inputs["window_overlap"].visible, i2v.inputs["window_overlap"].value) == (False, 1)  # the last frame
    values = dict(model="tiny-t2v", prompt="a long drive", steps=2, guidance=5.0, guidance_2=None, flow_shift=3.0,
                  seed=1, randomize=False, frames=61, size="64x64", window_overlap=9.0, color_correction=0.25)
    request = build_request("t2v", values).prepare()
    assert (request.window_overlap, request.color_correction) == (9, 0.25)
    assert request.windows().overlap == 9
    with pytest.raises(RequestError, match="4k\\+1"):
        build_request("t2v", {**values, "window_overlap": 7.0})
