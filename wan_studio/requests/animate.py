"""Wan-Animate: a character image driven by pose and face videos."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from wan_studio.catalog import Checkpoint
from wan_studio.errors import RequestError
from wan_studio.memory.step_cache import no_step_cache
from wan_studio.requests.base import GenerationRequest
from wan_studio.requests.fields import request_field
from wan_studio.requests.inputs import VideoInput, size_from
from wan_studio.requests.long_video import SEGMENT_FRAMES, Windows, cut_into_windows
from wan_studio.requests.modes import ExampleFile, InputSwitch, ModeInfo, Placement, register_mode
from wan_studio.requests.prepared import InputFacts

ANIMATE_MODES = ("animate", "replace")
ANIMATE_2_PIPELINE = "WanAnimate2Pipeline"  # wan_studio/models/animate2_pipeline.py
REPLACE_INPUTS = ("background_video", "mask_video")  # only replace mode uses these
PREPROCESS_HINT = "Or give a plain driving video of a person and the studio makes them."
# the pre-processed inputs the studio makes from a plain driving video, and the control kind of each
MADE_FROM_DRIVING = {"pose_video": "pose", "face_video": "face", "mask_video": "mask", "background_video": "background"}


@register_mode
@dataclass
class AnimateRequest(VideoInput, GenerationRequest):
    """Wan-Animate: a character image driven by pose and face videos (animate), or put into a
    background video where the mask is white (replace). They are pre-processed videos, or the studio
    makes them from a plain `driving_video` before the run (wan_studio.extract). Long driving
    videos run in segments of `segment_frame_length` frames, each conditioned on the end of the
    previous one: the long-video windows (runtime/windows.py), so each finished segment is kept."""

    mode: ClassVar[str] = "animate"
    mode_info: ClassVar[ModeInfo] = ModeInfo(
        label="Character animation", short="Animate", words="Character → Animation",
        order=80, prompt_label="Optional prompt",
        placeholder="A person dancing", size_from_input=True, frames_from_input=True,
        note="Give a plain driving video of a person (pose and face are made from it), or your own pre-processed "
             "pose and face videos.",
        # a plain driving video first; the pre-processed inputs below it are made from it, or your own
        placement={"pose_video": Placement(before="driving_video"),
                   "driving_video": Placement(make_controls="Make the inputs now: pose and face (and mask and "
                                                            "background for replace), to look first", trim=True)},
        switch=InputSwitch("animate_mode", {"replace": REPLACE_INPUTS}),
        examples=tuple({"prompt": prompt, "image": ExampleFile(picture), "pose_video": ExampleFile("pose"),
                        "face_video": ExampleFile("face")}
                       for prompt, picture in (("A person dancing in a park", "sunset"),
                                               ("A dancer on a stage under a spotlight", "sea"),
                                               ("A character waves hello", "field"))),
        send_to="pose_video",
        step_cache=no_step_cache("Animate's segments would share one cache state across segment boundaries"),
    )
    long_video: ClassVar[bool] = True
    window_conditioning: ClassVar[str] = SEGMENT_FRAMES
    # the colours come from the character picture (and the background, replacing): none are pulled
    color_correction: ClassVar[float] = 0.0
    # upstream runs an empty prompt as its config's own ("the person in the video is moving";
    # wan/configs/wan_animate_14B.py) and advises against custom ones
    default_prompt: ClassVar[str] = "视频中的人在做动作"

    image: str | None = request_field(label="Character reference", file="image", help="the character to bring to life")
    animate_mode: str = request_field(
        "animate", label="Mode", help="animate: the character moves; replace: it takes a person's place",
        choices=dict(zip(ANIMATE_MODES, ("Animate the character", "Replace a person in the video"))))
    pose_video: str | None = request_field(label="Driving pose video (skeleton renders)", file="video",
                                           help="pre-processed pose video")
    face_video: str | None = request_field(label="Driving face video (face crops)", file="video",
                                           help="pre-processed face video")
    background_video: str | None = request_field(label="Background video", file="video",
                                                 help="replace mode: the background")
    mask_video: str | None = request_field(label="Mask video (white = the person to replace)", file="video",
                                           help="replace mode: white = the character")
    # added after /animate was released: the API takes it after options, optional (ui/api.py)
    driving_video: str | None = request_field(label="Driving video (a person moving)", file="video", added_later=True,
                                              help="a plain video of a person: pose, face (and for replace: mask, "
                                                   "background) are made from it")
    retarget: bool = request_field(False, label="Fit the pose to the character's proportions", text="yes-no",
                                   help="the pose made from the driving video takes the character picture's body "
                                        "proportions")
    segment_frame_length: int | None = request_field(label="Segment length", page=False,
                                                     help="frames per segment (4k+1)")
    prev_segment_conditioning_frames: int = request_field(1, label="Frames carried between segments", page=False,
                                                          help="1 or 5")

    @staticmethod
    def reads_driving_video(record: Checkpoint) -> bool:
        """Wan 2.2 Animate-2 takes the plain driving video itself: no pose, face, mask or background."""
        return record.pipeline_class("animate") == ANIMATE_2_PIPELINE

    def _check_animate2(self, record: Checkpoint) -> None:
        if not self.driving_video:
            raise RequestError("driving_video", f"{record.name} needs a driving video: a plain video of a person "
                                                "moving (it makes no use of pose or face videos).")
        for name in MADE_FROM_DRIVING:
            if getattr(self, name):
                raise RequestError(name, f"{record.name} reads the driving video itself and takes no "
                                         f"{name.replace('_', ' ')}; the pre-processed inputs are Wan 2.2 Animate "
                                         "14B's. Leave it empty.")
        if self.animate_mode != "animate":
            raise RequestError("animate_mode", f"{record.name} animates the character; putting it in a person's "
                                               "place (replace) is Wan 2.2 Animate 14B's.")
        if self.retarget:
            raise RequestError("retarget", f"{record.name} takes the driving video as it is: there is no pose to "
                                           "fit to the character.")

    def _check_fields(self, record: Checkpoint) -> None:
        if not self.image:
            raise RequestError("image", "Animate needs a character image: the person or figure to bring to life.")
        if self.reads_driving_video(record):
            self._check_animate2(record)
        elif not self.driving_video:
            for name, what in (("pose_video", "pose video (skeleton renders)"),
                               ("face_video", "face video (face crops)")):
                if not getattr(self, name):
                    raise RequestError(name, f"Animate needs a pre-processed {what}. {PREPROCESS_HINT}")
            if self.animate_mode == "replace":
                for name, what in (("background_video", "background video"),
                                   ("mask_video", "mask video (white = the character to replace)")):
                    if not getattr(self, name):
                        raise RequestError(name, f"Replace mode needs a pre-processed {what}. {PREPROCESS_HINT}")
        if not isinstance(self.retarget, bool):  # (checked after Animate-2's own, which names the checkpoint)
            raise RequestError("retarget", f"Fit the pose must be true or false; got {self.retarget!r}.")
        if self.retarget and not self.driving_video:  # (a pose video given with it was made, and fitted, from it)
            raise RequestError("retarget", "Fitting the pose to the character works on the pose the studio makes "
                                           "from a driving video; give a driving video instead of a pose video.")
        if self.prev_segment_conditioning_frames not in (1, 5):
            raise RequestError("prev_segment_conditioning_frames", "Frames carried between segments must be 1 or 5; "
                                                                   f"got {self.prev_segment_conditioning_frames!r}.")
        if self.segment_frame_length is None:
            self.segment_frame_length = record.frames_default
        seg = self.segment_frame_length
        if not isinstance(seg, int) or isinstance(seg, bool) or seg < 5 or (seg - 1) % 4 or seg > record.frames_max:
            raise RequestError("segment_frame_length", "Segment length must be of the form 4k+1 between 5 and "
                                                       f"{record.frames_max}; got {seg!r}.")

    def _needed(self) -> tuple[str, ...]:
        return ("pose_video", "face_video", *(REPLACE_INPUTS if self.animate_mode == "replace" else ()))

    def controls_to_extract(self) -> dict[str, tuple[str, str]]:
        """The pre-processed inputs not given, made from the driving video (none for Animate-2)."""
        if not self.driving_video or self.reads_driving_video(self.checkpoint):
            return {}
        return {name: (MADE_FROM_DRIVING[name], "driving_video") for name in self._needed() if not getattr(self, name)}

    def extraction_options(self) -> dict:
        wanted = self.controls_to_extract()
        options = {}
        if self.retarget and "pose_video" in wanted:  # fitted to the character, where it stands in the output
            options.update(character=self.image, output_size=(self.width, self.height))
        if "mask_video" in wanted or "background_video" in wanted:
            options["mask_shape"] = "box"  # the shape replace mode was trained on: the box around the person
        return options

    def _read_inputs(self, record: Checkpoint, inputs: InputFacts) -> None:
        self._image_size = inputs.image_size("image", self.image)
        # the length comes from the pose video, or the driving video the pose will be made from
        source = "pose_video" if self.pose_video else "driving_video"
        self._available = self._available_frames(inputs.video_info(source, getattr(self, source)), record)
        if self._available < 5:
            what = "pose video" if source == "pose_video" else "driving video"
            raise RequestError(source, f"The {what} gives {self._available} frames at {record.fps} fps; "
                                       "Animate needs at least 5.")
        for name in self._needed()[1:]:
            if not getattr(self, name):
                continue  # made from the driving video, as long as it
            count = self._available_frames(inputs.video_info(name, getattr(self, name)), record)
            if count < min(self._available, self.frames or self._available):
                raise RequestError(name, f"The {name.replace('_', ' ')} gives {count} frames at {record.fps} fps "
                                         f"but the pose video needs {self._available}.")

    def _suggested_size(self, record: Checkpoint) -> tuple[int, int]:
        return size_from(record, *self._image_size)

    def _suggested_frames(self, record: Checkpoint) -> int:
        return self._available

    def _check_frames_shape(self, record: Checkpoint) -> None:
        if not isinstance(self.frames, int) or isinstance(self.frames, bool) or self.frames < 1:
            raise RequestError("frames", f"Frames must be a whole number of at least 1; got {self.frames!r}.")

    def _check_frames(self, record: Checkpoint) -> None:
        # the output is as long as the driving video: any length, made segment by segment
        if not isinstance(self.frames, int) or isinstance(self.frames, bool) or not 1 <= self.frames <= self._available:
            raise RequestError("frames", f"Frames must be between 1 and {self._available} (the pose video's length "
                                         f"at {record.fps} fps); got {self.frames!r}.")

    def windows(self, record: Checkpoint | None = None) -> Windows | None:
        """The segments of a driving video longer than one, each a window of its own; None for one segment,
        and for Animate-2, whose pipeline makes all its segments in one call."""
        if not isinstance(self.frames, int) or self.frames <= self.segment_frame_length:
            return None
        if self.reads_driving_video(record or self.checkpoint):
            return None
        return cut_into_windows(self.frames, self.segment_frame_length, self.prev_segment_conditioning_frames,
                                SEGMENT_FRAMES)

    @property
    def clip_frames(self) -> int | None:
        """Frames of one pass for the estimate: Animate-2's segment (its segments run one after another)."""
        return self.segment_frame_length if self.reads_driving_video(self.checkpoint) else None

    @property
    def clips(self) -> int | None:
        return self.segments if self.reads_driving_video(self.checkpoint) else None

    @property
    def segments(self) -> int:
        if self.reads_driving_video(self.checkpoint) and isinstance(self.frames, int):
            # diffusers' Animate-2: each segment after the first adds its length less the frames carried
            new = self.segment_frame_length - self.prev_segment_conditioning_frames
            return max(1, -(-(self.frames - self.prev_segment_conditioning_frames) // new))
        windows = self.windows()
        return windows.count if windows is not None else 1
