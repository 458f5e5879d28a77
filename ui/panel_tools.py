"""The tools beside a mode panel's inputs and result: the first frame to click (VACE inpaint), the
controls made now (VACE, Animate), the end frame drawn by a preview run (FLF2V), the audio's length
(S2V), favourite settings and recent prompts (every mode), Smooth (a result at twice its frame
rate), a frame of a video as an image input and a trimmed video input. ui/panels.py builds the
panels and wires these to them."""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path

import gradio as gr
from PIL import Image, ImageDraw

from ui.panel_specs import build_request, frames_label, is_shown, size_choices, spec
from ui.runtime import get_studio, owner_of, refused
from wan_studio import catalog
from wan_studio.errors import StudioError
from wan_studio.settings import Settings

PICKER_SIDE = 1024  # the picture to click is at least this big: Gradio maps a click on an image shown larger
                   # than its own pixels as if it were not scaled, so a small frame is enlarged first


def first_frame_to_click(names: list, settings: Settings):
    """VACE inpaint: the video's first frame at the output size (enlarged by a whole factor), to
    click the object on; the State keeps the picture without a marker and the factor."""
    def show(*values):
        from wan_studio.runtime.controls import first_frame_to_click

        named = dict(zip(names, values))
        if named.get("vace_mode") != "inpaint" or not named.get("video"):
            return None, None
        # the frame depends on the video and the size only; stand-ins let the request resolve its size
        record = catalog.get(named["model"]) if named.get("model") else None
        named.update(prompt="first frame", point="0, 0", mask=None, bbox="", frames_auto=False,
                     frames=record.frames_min if record else 5)
        try:
            path = first_frame_to_click(build_request("vace", named).prepare(), settings.output_dir / "controls")
        except StudioError:
            return None, None  # the video or the size is not usable yet: its own message shows on Generate
        frame = Image.open(path)
        factor = max(1, math.ceil(PICKER_SIDE / max(frame.size)))
        if factor > 1:
            frame.resize((frame.width * factor, frame.height * factor), Image.Resampling.NEAREST).save(path)
        return str(path), [str(path), factor]

    return show


def clicked_point(picked, evt: gr.SelectData):
    """The clicked pixel as the point (output pixels), and the frame with a marker there."""
    if not picked or evt.index is None:
        return gr.update(), gr.update()
    path, factor = picked
    x, y = (int(v) for v in evt.index)
    marked = Image.open(path).convert("RGB")
    radius = max(4, min(marked.size) // 60)
    draw = ImageDraw.Draw(marked)
    draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=(255, 40, 40), outline=(255, 255, 255), width=2)
    return f"{x // factor}, {y // factor}", marked


def make_controls_now(mode: str, names: list, targets: list, settings: Settings):
    def make(*values):
        from wan_studio.runtime.controls import make_controls_in_studio

        keep = [gr.update() for _ in targets]
        try:
            named = dict(zip(names, values))
            named["prompt"] = named.get("prompt") or "controls"  # the controls do not depend on the prompt
            typed = build_request(mode, named).prepare()
            made, info = make_controls_in_studio(get_studio(settings), typed)
        except StudioError as exc:
            return keep + [gr.update(value=f"⚠ {exc}", visible=True)]
        updates = []
        for name in targets:
            if name in made:
                updates.append(gr.update(value=made[name], visible=True))
            elif name == "control_source" and "video" in made:
                updates.append(gr.update(value="control"))  # the video now is the control
            else:
                updates.append(gr.update())
        what = ", ".join(item["kind"] for item in info.values())
        source = next(iter(info.values()))["from"]
        seconds = sum({item["seconds"] for item in info.values()})
        note = (f"Made {what} from {source} in {seconds:.1f} s: they are in the inputs below; "
                "Generate uses them as they are.")
        return updates + [gr.update(value=note, visible=True)]

    return make


def wire_favourites(panel, names: list, components: list, settings: Settings) -> None:
    """Save the panel's settings under a name; pick a name to put them back (all but the prompt,
    the seed and the input files: runtime/favourites.py)."""
    from wan_studio.runtime import favourites

    private = dict(api_visibility="private", queue=False)
    mode, chooser = panel.mode, panel.extras["favourites"]
    inputs = set(panel.inputs)

    def save(name, *values):
        kept = {key: value for key, value in zip(names, values) if key not in inputs}
        try:
            favourites.save(settings.output_dir, mode, name, kept)
        except StudioError as exc:
            raise refused(str(exc))
        gr.Info(f"Saved as \"{' '.join(name.split())}\".")
        return gr.update(choices=favourites.names(settings.output_dir, mode), value=None), ""

    panel.extras["favourite_save"].click(save, [panel.extras["favourite_name"], *components],
                                         [chooser, panel.extras["favourite_name"]], **private)

    def use(name):
        keep = [gr.update() for _ in names]
        if not name:
            return keep
        try:
            saved = favourites.get(settings.output_dir, mode, name)
        except StudioError as exc:
            raise refused(str(exc))
        record = catalog.get(saved["model"]) if saved.get("model") in {c.id for c in catalog.checkpoints()} else None
        updates = []
        for key in names:
            if key not in saved:
                updates.append(gr.update())
            elif key == "size" and record is not None:  # the saved checkpoint's sizes
                updates.append(gr.update(choices=size_choices(record, spec(mode)), value=saved[key]))
            elif key == "frames" and record is not None:
                updates.append(gr.update(label=frames_label(mode, record), value=saved[key]))
            else:
                updates.append(gr.update(value=saved[key]))
        return updates

    chooser.input(use, chooser, components, **private).then(*panel.estimate, queue=False, show_progress="hidden",
                                                            api_visibility="private")
    panel.favourites_loader = (lambda: gr.update(choices=favourites.names(settings.output_dir, mode), value=None),
                               None, chooser)


def recent_prompts(mode: str, settings: Settings):
    def recent():
        from wan_studio.runtime.gallery import recent_prompts

        return gr.update(choices=recent_prompts(get_studio(settings).engine.library, mode), value=None)

    return recent


def lora_names(settings: Settings):
    def names():
        from wan_studio import loras

        return gr.update(choices=loras.available_names(settings))

    return names


def finish_shown(settings: Settings, mode: str, **values):
    """Queue a finishing job (upscale, interpolate) on the result shown; the panel then follows it."""

    def finish_shown(recipe, request: gr.Request):
        from wan_studio.requests import job_types

        studio = get_studio(settings)
        result = studio.engine.library.get(str((recipe or {}).get("id") or ""))
        if result is None or result.media.suffix != ".mp4":
            raise StudioError("Generate a video first: this makes a new result from the one shown here.")
        return studio.submit(job_types()[mode](result=str(result.media), **values), owner=owner_of(settings, request))

    return finish_shown


def check_image(field: str):
    """The message under an image box: why its file cannot be used, or nothing."""
    def check(path):
        from wan_studio import media

        if not path:
            return ""
        try:
            media.load_image(path, field=field)
        except StudioError as exc:
            return f"⚠ {exc}"
        return ""

    return check


def upscale_shown(settings: Settings):
    """Upscale the result shown ×2 or ×4, or to a standard size ("1080p": its short side)."""
    def upscale_shown(recipe, size, request: gr.Request):
        factor = {"x2": 2, "x4": 4}.get(size)
        return finish_shown(settings, "upscale", **({"scale": factor} if factor else {"target": size}))(recipe, request)

    return upscale_shown


def audio_duration(path, model_id):
    if not path:
        return ""
    from wan_studio.media.audio import audio_duration

    try:
        seconds = audio_duration(path)
    except StudioError as exc:
        return str(exc)
    fps = catalog.get(model_id).fps if model_id else 16
    return f"{seconds:.2f} s (about {int(seconds * fps)} frames at {fps} fps)"


def make_end_frame(settings: Settings):
    """A one-frame preview from the T2V checkpoint of the FLF2V model's generation, as the end frame."""

    def make_end_frame(prompt, model_id, request: gr.Request = None):
        from wan_studio.requests import PreviewRequest

        generation = catalog.get(model_id).generation if model_id else "tiny"
        record = catalog.default_model("preview", generation)
        if record is None:
            raise refused("No checkpoint of this generation draws single frames; upload the end frame instead.")
        try:
            preview = PreviewRequest(model=record.id, prompt=prompt or "")
            result = get_studio(settings).run(preview, owner=owner_of(settings, request))
        except StudioError as exc:
            raise refused(str(exc))
        return str(result.media), gr.Tabs(selected="upload")

    return make_end_frame


# -- a frame of a video as an image input; a video input trimmed ---------------------------------
def made_from(settings: Settings, folder: str, source, asked: str, suffix: str) -> Path:
    """Where the page puts a file it makes from a user's file: OUTPUT/.ui/<folder>/, named after the
    source, with a digest of the source's version and of what was asked (two sources never share a name)."""
    from wan_studio.media.facts import identity

    stem = re.sub(r"(-[0-9a-f]{10})+$", "", Path(source).stem)[:60]  # a trim of a trim: one digest
    digest = hashlib.sha1(repr((identity(source) or str(source), asked)).encode()).hexdigest()[:10]
    return settings.output_dir / ".ui" / folder / f"{stem}-{digest}{suffix}"


def _said(text: str):
    return gr.update(value=text, visible=bool(text))


def _length_words(info) -> str:
    return f"{round(info.duration_s, 2):g} s ({info.frames} frames at {info.fps:g} fps)"


def wire_frame_tools(panel, settings: Settings) -> None:
    """Wire what ui/panel_inputs.py placed under the inputs: "Take a frame from a video" under an image
    input (a time in the video, that frame, "Use this frame"), and "Trim" under a video input. A bad
    value is said beside the tool, never raised."""
    from wan_studio.media import cuts, facts

    private = dict(api_visibility="private", show_progress="hidden")
    pickers, trims = panel.extras.get("frame_pickers", {}), panel.extras.get("trims", {})

    def frame_at(video, seconds) -> str:
        seconds = float(seconds or 0)
        dest = made_from(settings, "frames", video, f"{seconds:.3f}", f"-at-{round(seconds * 1000)}ms.png")
        return str(cuts.frame_at(video, seconds, dest))

    def loaded(video):
        """A new video: the slider spans it, and its first frame shows."""
        if not video:
            return gr.update(value=0, maximum=1), None, _said("")
        try:
            top = math.floor(facts.video_info(video, "video").duration_s * 100) / 100
            return gr.update(value=0, maximum=max(top, 0.01)), frame_at(video, 0), _said("")
        except StudioError as exc:
            return gr.update(value=0), None, _said(f"⚠ {exc}")

    def shown(video, seconds):
        if not video:
            return None, _said("")
        try:
            return frame_at(video, seconds), _said("")
        except StudioError as exc:
            return None, _said(f"⚠ {exc}")

    for field, picker in pickers.items():
        target = panel.inputs[field]

        def use(video, seconds, label=target.label):
            if not video:
                return gr.update(), _said("⚠ Upload a video first, then pick the time of the frame to use.")
            try:
                path = frame_at(video, seconds)
            except StudioError as exc:
                return gr.update(), _said(f"⚠ {exc}")
            return path, _said(f"Put the frame at {float(seconds or 0):g} s into “{label}”.")

        picker.video.change(loaded, picker.video, [picker.seconds, picker.frame, picker.note], queue=False, **private)
        # .change: a drag, arrow keys and a typed time all move it (the last of a drag is the one drawn)
        picker.seconds.change(shown, [picker.video, picker.seconds], [picker.frame, picker.note], queue=False,
                              **private)
        picker.use.click(use, [picker.video, picker.seconds], [target, picker.note], queue=False, **private)

    for field, trim in trims.items():
        target = panel.inputs[field]

        def described(video, made, field=field):
            """The input's video, in the trim's boxes: from 0 to its length; "Trimmed to ..." when it is the
            one just trimmed."""
            if not video:
                return 0, None, _said("")
            try:
                info = facts.video_info(video, field)
            except StudioError:
                return 0, None, _said("")  # its own message shows under the input on Generate
            words = "Trimmed to" if made and Path(video).name == made else "This video:"
            return 0, round(info.duration_s, 3), _said(f"{words} {_length_words(info)}.")

        def cut(video, start, end, field=field):
            try:
                start = 0 if start is None else start
                asked = f"{start!r}-{end!r}"
                dest = made_from(settings, "trims", video or "", asked, ".mp4") if video else None
                made = cuts.trim_video(video, start, end, dest, field=field)
                info = facts.video_info(made, field)
            except StudioError as exc:
                return gr.update(), _said(f"⚠ {exc}"), gr.update()
            return str(made), _said(f"Trimmed to {_length_words(info)}."), made.name

        target.change(described, [target, trim.made], [trim.start, trim.end, trim.note], queue=False, **private)
        trim.trim.click(cut, [target, trim.start, trim.end], [target, trim.note, trim.made], concurrency_limit=None,
                        **private)

    switch = spec(panel.mode).switch
    for field, tool in [*pickers.items(), *trims.items()]:
        if switch and field in switch.switched:  # the tool goes with its input when the sub-mode hides it (VACE)
            def follow(choice, field=field):
                return gr.update(visible=is_shown(panel.mode, field, {switch.field: choice}))

            panel.inputs[switch.field].change(follow, panel.inputs[switch.field], tool.box, queue=False, **private)
