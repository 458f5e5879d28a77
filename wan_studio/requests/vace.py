"""VACE: control videos, masking, extension and reference images."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from wan_studio.catalog import Checkpoint
from wan_studio.errors import RequestError
from wan_studio.media.vace_controls import EXTENSION_KINDS, OUTPAINT_DIRECTIONS
from wan_studio.memory.step_cache import PREDICT_MODULES
from wan_studio.requests.fields import request_field
from wan_studio.requests.inputs import VideoInput, looks_like_video, size_from
from wan_studio.requests.long_video import VACE_FRAMES, LongVideoRequest, max_video_seconds
from wan_studio.requests.modes import ExampleFile, InputSwitch, ModeInfo, Placement, register_mode
from wan_studio.requests.prepared import InputFacts

MAX_REFERENCES = 3

VACE_MODES = ("depth", "pose", "flow", "scribble", "edges", "grayscale", "layout", "inpaint", "outpaint",
              "extension", "reference")
VACE_CONTROL_MODES = VACE_MODES[:7]
MADE_CONTROLS = ("depth", "pose", "layout")  # made from a normal video by annotator models before the run
# the inputs each sub-mode uses (the page shows these and leaves the others out of the request)
SUBMODE_INPUTS = {
    **{kind: ("video", "control_source") for kind in VACE_CONTROL_MODES},
    "inpaint": ("video", "mask", "bbox", "point"),
    "outpaint": ("video", "outpaint_directions", "outpaint_ratio"),
    "extension": ("extension", "image", "last_image", "video"),
    "reference": (),
}
# the sub-mode chooser groups them: Control follows a video's structure, Edit changes a video or builds on pictures
SUBMODE_WORDS = {
    "depth": "Control · depth", "pose": "Control · pose", "flow": "Control · motion (optical flow)",
    "scribble": "Control · scribble", "edges": "Control · edges", "grayscale": "Control · colourise (grayscale)",
    "layout": "Control · layout (moving boxes)", "inpaint": "Edit · inpaint (redo an area)",
    "outpaint": "Edit · outpaint (widen the frame)", "extension": "Edit · extension (frames before or after)",
    "reference": "Edit · reference images only",
}
SUBMODE_HELP = {
    "depth": "The new video keeps the depth (near and far) of the control video; the prompt sets the look.",
    "pose": "People in the new video move as the skeletons of the control video move.",
    "flow": "The new video moves the way the control video moves (its optical flow).",
    "scribble": "The new video follows a rough line drawing of the control video's shapes.",
    "edges": "The new video keeps the outlines (edges) of the control video.",
    "grayscale": "Colours a grayscale video as the prompt describes.",
    "layout": "Objects go where the moving boxes of the layout video go.",
    "inpaint": "Redraws one area of the video (a mask, a box or a clicked point) and keeps the rest.",
    "outpaint": "Widens the frame on the sides you choose and fills the new border.",
    "extension": "Makes frames before or after a clip or between two pictures.",
    "reference": "A new video of the subjects in the reference pictures, no video needed.",
}
ANY_SUBMODE_INPUTS = ("reference", "conditioning_scale")  # used with every sub-mode
LONG_SUBMODES = (*VACE_CONTROL_MODES, "inpaint", "outpaint")  # past one pass: windows over the input video


@register_mode
@dataclass
class VACERequest(VideoInput, LongVideoRequest):
    """VACE: control video, masking (inpaint / outpaint / extension) or reference-only, plus up to
    three reference images with any of them."""

    mode: ClassVar[str] = "vace"
    mode_info: ClassVar[ModeInfo] = ModeInfo(
        label="VACE control & editing", short="VACE", words="Control & edit a video",
        order=60, placeholder="A river in autumn, golden light",
        size_from_input=True, frames_from_input=True, starts_with={"vace_mode": "inpaint"},
        placeholders={"bbox": "8, 8, 56, 40"},
        placement={"video": Placement(make_controls="Make the control now (to look before generating)", trim=True),
                   "point": Placement(point_picker=True),
                   "image": Placement(beside="last_image")},
        # the sub-mode shows its own inputs; the reference images and the strength go with every one
        switch=InputSwitch("vace_mode", SUBMODE_INPUTS, SUBMODE_HELP),
        examples=({"prompt": "A river in autumn, golden light", "vace_mode": "edges", "video": ExampleFile("clip"),
                   "bbox": ""},
                  {"prompt": "A robot walks through the scene", "vace_mode": "grayscale", "video": ExampleFile("bars"),
                   "bbox": ""},
                  {"prompt": "Fill the masked area with flowers", "vace_mode": "inpaint", "video": ExampleFile("clip"),
                   "bbox": "32, 24, 96, 72"}),
        # control hints are added between the blocks: a block-level skip would add them twice
        send_to="video", parallel=True, step_cache=PREDICT_MODULES,
    )
    window_conditioning: ClassVar[str] = VACE_FRAMES

    vace_mode: str = request_field("reference", label="Sub-mode", choices=SUBMODE_WORDS, help=", ".join(VACE_MODES))
    video: str | None = request_field(label="Source video", file="video", help="control or source video")
    control_source: str = request_field("raw", label="Control source",
                                        choices={"raw": "Extract the control from a normal video",
                                                 "control": "The video already is a control video"},
                                        help="raw: extract the control from a normal video; control: it already is one")
    mask: str | None = request_field(label="Mask (image for all frames, or a mask video; white = regenerate)",
                                     file="image-or-video",
                                     help="inpaint mask: an image for all frames or a mask video")
    bbox: list[int] | None = request_field(label="…or a box x0, y0, x1, y1 (output pixels)", text="whole-numbers",
                                           help="inpaint box x0,y0,x1,y1 in output pixels")
    point: list[int] | None = request_field(
        label="…or a point x, y on the object to regenerate (first frame, output pixels)", text="whole-numbers",
        help="inpaint: x,y on the object in the first frame; it is found and followed")
    outpaint_directions: list[str] = request_field(factory=lambda: ["left", "right"], label="Outpaint directions",
                                                   text="words", flag="--outpaint", choices=OUTPAINT_DIRECTIONS,
                                                   help="sides to extend, e.g. left,right (of left, right, up, down)")
    outpaint_ratio: float = request_field(0.25, label="Outpaint ratio", bounds=(0.05, 2.0, 0.05),
                                          help="how much wider or taller, per side (0-2]")
    extension: str = request_field("first_frame", label="Extension", help=", ".join(EXTENSION_KINDS), choices=dict(zip(
        EXTENSION_KINDS, ("From a first frame", "To a last frame", "Between first and last frames",
                          "Continue after a clip", "Lead into a clip"))))
    image: str | None = request_field(label="First frame", file="image", help="first frame (extension)")
    last_image: str | None = request_field(label="Last frame", file="image", help="last frame (extension)")
    reference: list[str] = request_field(factory=list, label="Optional reference images (1-3)", file="image",
                                         multiple=True, help="reference image (repeat, up to 3)")
    conditioning_scale: float = request_field(1.0, label="Control strength", bounds=(0.0, 2.0, 0.05), help="0 to 2")

    def _check_fields(self, record: Checkpoint) -> None:
        if self.vace_mode not in VACE_MODES:
            raise RequestError("vace_mode", f"Unknown VACE sub-mode {self.vace_mode!r}; "
                                            f"choose one of: {', '.join(VACE_MODES)}.")
        refs = list(self.reference or [])
        if len(refs) > MAX_REFERENCES:
            raise RequestError("reference",
                               f"VACE takes at most {MAX_REFERENCES} reference images; got {len(refs)}.")
        kind = self.vace_mode
        if kind == "reference" and not refs:
            raise RequestError("reference",
                               "Reference mode needs 1 to 3 reference images (a face, an object, a style).")
        if self._uses_video():
            self._require_video("video")
        if kind == "inpaint":
            self._check_inpaint_fields()
        if kind == "outpaint":
            bad = [d for d in self.outpaint_directions or [] if d not in OUTPAINT_DIRECTIONS]
            if bad or not self.outpaint_directions:
                raise RequestError(
                    "outpaint_directions",
                    f"Outpaint directions must be some of {', '.join(OUTPAINT_DIRECTIONS)}; "
                    f"got {self.outpaint_directions!r}.",
                )
            ratio = self.outpaint_ratio
            if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio <= 2:
                raise RequestError("outpaint_ratio",
                                   f"Outpaint ratio must be above 0 and at most 2; got {self.outpaint_ratio!r}.")
        if kind == "extension":
            self._check_extension_fields()
        if self.continue_from:
            raise RequestError("continue_from", "VACE continues a clip with its own extension sub-mode (Continue after "
                                                "a clip), not with Extend.")
        scale = self.conditioning_scale
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 <= scale <= 2:
            raise RequestError("conditioning_scale",
                               f"Conditioning scale must be between 0 and 2; got {self.conditioning_scale!r}.")

    def is_long(self, record: Checkpoint | None = None) -> bool:
        return self.vace_mode in LONG_SUBMODES and super().is_long(record)

    def _check_frames(self, record: Checkpoint) -> None:
        if self.vace_mode not in LONG_SUBMODES and isinstance(self.frames, int) and self.frames > record.frames_max:
            raise RequestError("frames", f"Frames must be between {record.frames_min} and {record.frames_max} for "
                                         f"{record.name} in the {self.vace_mode} sub-mode (longer videos are made in "
                                         "windows over an input video: control, inpaint and outpaint); "
                                         f"got {self.frames}.")
        super()._check_frames(record)

    def _uses_video(self) -> bool:
        kind = self.vace_mode
        return kind in VACE_CONTROL_MODES or kind in ("inpaint", "outpaint") or (
            kind == "extension" and self.extension in ("first_clip", "last_clip"))

    def _read_inputs(self, record: Checkpoint, inputs: InputFacts) -> None:
        for path in self.reference or []:
            inputs.image_size("reference", path)
        self._info = None
        self._image_size = None
        if self._uses_video():
            self._info = inputs.video_info("video", self.video)
            self._check_frames_fit("video", self._info, record)
        if self.vace_mode == "inpaint" and self.mask:
            self._mask_is_video = looks_like_video(self.mask)
            if self._mask_is_video:
                mask_frames = self._available_frames(inputs.video_info("mask", self.mask), record)
                needed = self.frames if isinstance(self.frames, int) else None
                if needed and mask_frames < needed:
                    raise RequestError("mask", f"The mask video gives {mask_frames} frames at {record.fps} fps "
                                               f"but the video needs {needed}.")
            else:
                inputs.image_size("mask", self.mask)
        if self.vace_mode == "extension":
            if self.image:
                self._image_size = inputs.image_size("image", self.image)
            if self.last_image:
                size = inputs.image_size("last_image", self.last_image)
                self._image_size = self._image_size or size

    def controls_to_extract(self) -> dict[str, tuple[str, str]]:
        if self.vace_mode in MADE_CONTROLS and self.control_source == "raw":
            return {"video": (self.vace_mode, "video")}
        if self.vace_mode == "inpaint" and self.point and not self.mask and not self.bbox:
            return {"mask": ("mask", "video")}  # the clicked object's mask, followed through the video
        return {}

    def extraction_options(self) -> dict:
        return {"point": tuple(self.point)} if "mask" in self.controls_to_extract() else {}

    def with_extracted(self, made: dict[str, str]) -> "VACERequest":
        if "video" in made:
            return self.with_made_inputs(made, control_source="control")
        return self.with_made_inputs(made)

    def _validate(self, record: Checkpoint) -> None:
        super()._validate(record)
        if self.vace_mode == "inpaint" and self.point and not self.mask and not self.bbox:
            x, y = self.point
            if x >= self.width or y >= self.height:
                raise RequestError("point", f"The point ({x}, {y}) is outside the {self.width}x{self.height} frame; "
                                            "give it in output pixels, on the object to regenerate.")

    def _check_inpaint_fields(self) -> None:
        if not self.mask and not self.bbox and not self.point:
            raise RequestError("mask", "Inpaint needs a mask (an image for all frames, or a mask video), "
                                       "a bounding box, or a point on the object to regenerate.")
        if self.point is not None:
            point = list(self.point)
            whole = all(isinstance(v, int) and not isinstance(v, bool) for v in point)
            if len(point) != 2 or not whole or min(point) < 0:
                raise RequestError("point",
                                   f"The point must be two whole numbers x, y (output pixels); got {self.point!r}.")
        if self.bbox is not None:
            box = list(self.bbox)
            whole = all(isinstance(v, int) and not isinstance(v, bool) for v in box)
            if len(box) != 4 or not whole or box[0] >= box[2] or box[1] >= box[3] or min(box) < 0:
                raise RequestError("bbox", "The bounding box must be four whole numbers x0, y0, x1, y1 with x0 < x1 "
                                           f"and y0 < y1; got {self.bbox!r}.")

    def _check_extension_fields(self) -> None:
        if self.extension not in EXTENSION_KINDS:
            raise RequestError("extension", f"Unknown extension {self.extension!r}; "
                                            f"choose one of: {', '.join(EXTENSION_KINDS)}.")
        needs_first = self.extension in ("first_frame", "first_last")
        needs_last = self.extension in ("last_frame", "first_last")
        if needs_first and not self.image:
            raise RequestError("image", f"The {self.extension.replace('_', ' ')} extension needs a first frame image.")
        if needs_last and not self.last_image:
            raise RequestError("last_image",
                               f"The {self.extension.replace('_', ' ')} extension needs a last frame image.")

    def outpaint_scale(self) -> tuple[float, float]:
        """How much wider and taller the outpainted frame is than the source."""
        sides = set(self.outpaint_directions or [])
        return (1 + self.outpaint_ratio * len(sides & {"left", "right"}),
                1 + self.outpaint_ratio * len(sides & {"up", "down"}))

    def _suggested_size(self, record: Checkpoint) -> tuple[int, int]:
        if self._info is not None and self.vace_mode == "outpaint":
            sx, sy = self.outpaint_scale()
            return size_from(record, round(self._info.width * sx), round(self._info.height * sy))
        if self._info is not None:
            return size_from(record, self._info.width, self._info.height)
        if self._image_size is not None:
            return size_from(record, *self._image_size)
        return record.default_size

    def _suggested_frames(self, record: Checkpoint) -> int:
        clip_extension = self.vace_mode == "extension" and self.extension in ("first_clip", "last_clip")
        if self._info is not None and not clip_extension:
            available = self._available_frames(self._info, record)
            if self.vace_mode in LONG_SUBMODES and available > record.frames_max:
                return min(available, int(max_video_seconds() * record.fps))  # all of it, in windows
            return self._frames_from_video("video", self._info, record)
        return record.frames_default
