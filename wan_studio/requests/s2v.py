"""Speech to video: a reference image speaks or sings along to an audio file."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from wan_studio import catalog
from wan_studio.catalog import S2V_FIRST_CLIP_DROP, Checkpoint
from wan_studio.errors import RequestError
from wan_studio.memory.step_cache import PREDICT_MODULES
from wan_studio.requests.base import GenerationRequest
from wan_studio.requests.fields import request_field
from wan_studio.requests.inputs import native_area
from wan_studio.requests.modes import ExampleFile, ModeInfo, Placement, register_mode
from wan_studio.requests.prepared import InputFacts

S2V_MIN_AUDIO_S = 0.5
S2V_RESOLUTIONS = ("480p", "720p", "720p-full")  # the area buckets of the record's "s2v" "areas"
S2V_SOLVERS = ("unipc", "dpm++")
SIZE_STEPS = 100  # scales tried between the largest and the smallest, as Wan's S2V reference does
# wav2vec2 reads 16 kHz audio in 400-sample windows every 320 samples (nominally 50 features a second);
# the reference resamples those features to 30 a second before counting its audio buckets (clips)
WAV2VEC_RATE, WAV2VEC_WINDOW, WAV2VEC_HOP, WAV2VEC_FPS = 16000, 400, 320, 50
REFERENCE_AUDIO_FPS = 30


def reference_clip_count(audio_s: float, clip_frames: int, fps: float) -> int:
    """The clips Wan's S2V reference makes for `audio_s` seconds of audio: its audio-bucket count,
    from the wav2vec2 feature count resampled to 30 a second (so 5.0 s makes one 80-frame clip and
    5.1 s two)."""
    samples = round(audio_s * WAV2VEC_RATE)
    features = max(0, (samples - WAV2VEC_WINDOW) // WAV2VEC_HOP + 1)
    resampled = int(features / WAV2VEC_FPS * REFERENCE_AUDIO_FPS)
    return int(resampled / (clip_frames * REFERENCE_AUDIO_FPS / fps)) + 1


def size_within_area(width: int, height: int, area: int, divisor: int = 64) -> tuple[int, int]:
    """The output size Wan's S2V reference picks for an image: the image scaled by the largest of
    `SIZE_STEPS` evenly spaced factors whose size, each side padded up to a multiple of `divisor`,
    has at most `area` pixels (the picture is then resized to cover it and centre-cropped). The
    factors run from 1 down to 0.1 for an image already within the area (it is never enlarged),
    else from sqrt(area / image area) down to a lower bound from the padding (the reference solves
    its quadratic with 2ac where 4ac is usual; kept, so the sizes match it)."""
    pixels = width * height
    if pixels <= area:
        top, bottom = 1.0, 0.1
    else:
        pad = divisor - 1
        b = pad * (width + height)
        bottom = (-b + math.sqrt(b * b - 2 * pixels * (pad * pad - area))) / (2 * pixels)
        top = math.sqrt(area / pixels)
    for step in range(SIZE_STEPS):
        scale = top - (top - bottom) * step / SIZE_STEPS
        padded_w = -(-int(width * scale) // divisor) * divisor
        padded_h = -(-int(height * scale) // divisor) * divisor
        if padded_w * padded_h <= area:
            return padded_w, padded_h
    # nothing fits (a very thin picture): the aspect ratio within the area, sides on the divisor grid
    ratio = width / height
    fit_w, fit_h = int((area * ratio) ** 0.5 // divisor * divisor), int((area / ratio) ** 0.5 // divisor * divisor)
    if fit_w >= width or fit_h >= height:
        fit_w, fit_h = width // divisor * divisor, height // divisor * divisor
    return fit_w, fit_h


@register_mode
@dataclass
class S2VRequest(GenerationRequest):
    """Speech to video (Wan 2.2 S2V-14B): a reference image speaks or sings along to an audio file,
    optionally following a pose video. The output is as long as the audio at the model's 16 fps
    (`frames`, derived from the audio; a smaller value keeps only the start), made clip after
    clip of `clip_frames` frames, each continuing from the last frames of the one before."""

    mode: ClassVar[str] = "s2v"
    mode_info: ClassVar[ModeInfo] = ModeInfo(
        label="Speech to video", short="S2V", words="Speech → Talking video",
        order=70, prompt_label="Scene / style prompt",
        placeholder="A cinematic close-up of a woman singing", size_from_input=True,
        note="The video is as long as the audio.", frames_control=False,
        # the sampler is for those who compare them: in Advanced with the steps and guidance
        placement={"audio": Placement(audio_duration=True), "solver": Placement(advanced=True)},
        examples=tuple({"prompt": prompt, "image": ExampleFile(picture), "audio": ExampleFile("voice")}
                       for prompt, picture in (("A woman sings on a stage, close-up", "sunset"),
                                               ("A man speaks to the camera in a studio", "sea"),
                                               ("A child tells a story", "field"))),
        # the audio is added between the blocks: a block-level skip would add it twice
        step_cache=PREDICT_MODULES,
    )

    image: str | None = request_field(label="Reference character", file="image", help="the person who speaks or sings")
    audio: str | None = request_field(label="Driving audio", file="audio",
                                      help="the speech or song (any format ffmpeg reads); the video is as long as it")
    pose_video: str | None = request_field(label="Optional pose video (else the audio alone drives the motion)",
                                           file="video", help="optional video whose pose drives the body")
    clip_frames: int | None = request_field(label="Clip length", page=False,
                                            help="frames per clip (a multiple of 4; 80 on S2V-14B)")
    init_first_frame: bool = request_field(False, label="Start from the reference picture", text="yes-no",
                                           help="the video continues from the reference image instead of blank "
                                                "motion frames, so its first frames are kept "
                                                "(upstream's init_first_frame)")
    solver: str = request_field("unipc", label="Sampler", choices=S2V_SOLVERS,
                                help="unipc (the default) or dpm++ (multistep DPM-Solver++ on the same flow sigmas)")
    resolution: str = request_field(
        "480p", label="Resolution", choices=S2V_RESOLUTIONS, page=False,
        help="area bucket, the aspect follows the image: 480p (832x480 pixels), 720p (1024x704, the reference's "
             "example) or 720p-full (1280x720, upstream's largest, a quarter more pixels than 720p)")

    def _check_fields(self, record: Checkpoint) -> None:
        if not isinstance(self.init_first_frame, bool):
            raise RequestError("init_first_frame",
                               f"init_first_frame must be true or false; got {self.init_first_frame!r}.")
        if not self.image:
            raise RequestError("image",
                               "Speech to video needs a reference image: the person (or character) who speaks.")
        if not self.audio:
            raise RequestError("audio",
                               "Speech to video needs an audio file: the speech or song that drives the video.")
        if self.clip_frames is None:
            self.clip_frames = record.frames_default
        clip = self.clip_frames
        if not isinstance(clip, int) or isinstance(clip, bool) or clip < 8 or clip % 4 or clip > record.frames_max:
            raise RequestError(
                "clip_frames",
                f"Clip length must be a multiple of 4 between 8 and {record.frames_max} frames; got {clip!r}.")

    def _read_inputs(self, record: Checkpoint, inputs: InputFacts) -> None:
        self._image_size = inputs.image_size("image", self.image)
        self._audio_s = inputs.audio_seconds("audio", self.audio)
        name = Path(self.audio).name
        if self._audio_s < S2V_MIN_AUDIO_S:
            raise RequestError("audio", f"The audio {name} is {self._audio_s:.2f} s long; "
                                        f"S2V needs at least {S2V_MIN_AUDIO_S} s.")
        longest = catalog.raw_record(record.id).get("s2v", {}).get("max_audio_s", 300)
        if self._audio_s > longest:
            raise RequestError(
                "audio", f"The audio {name} is {self._audio_s:.1f} s long; {record.name} takes at most {longest} s. "
                "Cut it into parts and make one video per part.",
            )
        if self.pose_video:
            inputs.video_info("pose_video", self.pose_video)

    def _default_negative_prompt(self) -> str:
        from presets import default_negative_prompt

        return default_negative_prompt("wan-s2v")  # S2V's own: it adds 情绪激动剧烈 and 手快速抖动

    def _fill_defaults(self, record: Checkpoint) -> None:
        if self.negative_prompt == "":  # as the reference does: an empty negative prompt means the default
            self.negative_prompt = None
        super()._fill_defaults(record)

    def _suggested_size(self, record: Checkpoint) -> tuple[int, int]:
        # the area of the resolution bucket (832x480, 1024x704 or 1280x720 on S2V-14B), as the reference picks it
        largest = max(w * h for w, h in record.sizes)
        areas = catalog.raw_record(record.id).get("s2v", {}).get("areas") or {
            "480p": native_area(record), "720p": largest, "720p-full": largest}
        g = record.spatial_granularity
        width, height = size_within_area(*self._image_size, areas[self.resolution], g)
        return max(width, 2 * g), max(height, 2 * g)  # a side the model takes, for a very small or thin picture

    def _suggested_frames(self, record: Checkpoint) -> int:
        return self.audio_frames

    def _check_frames_shape(self, record: Checkpoint) -> None:
        if not isinstance(self.frames, int) or isinstance(self.frames, bool) or self.frames < 1:
            raise RequestError("frames", f"Frames must be a whole number of at least 1; got {self.frames!r}. "
                               "Leave it empty to follow the audio.")

    def _check_frames(self, record: Checkpoint) -> None:
        most = self.audio_frames
        if not isinstance(self.frames, int) or isinstance(self.frames, bool) or not 1 <= self.frames <= most:
            raise RequestError(
                "frames", f"Frames must be between 1 and {most} (the audio's {self._audio_s:.2f} s at "
                f"{record.fps} fps); got {self.frames!r}. Leave it empty to follow the audio.",
            )

    @property
    def audio_frames(self) -> int:
        """Frames that cover the audio at the model's fps, as far as the clips the reference makes for
        it reach (the first clip gives `clip_frames` - 3): 5.0 s gives one clip of 77 frames."""
        seconds, fps = self._read_fact("_audio_s", "the audio's length"), self.checkpoint.fps
        made = reference_clip_count(seconds, self.clip_frames, fps) * self.clip_frames - self.dropped_frames
        return max(1, min(math.ceil(seconds * fps - 1e-6), made))

    @property
    def audio_duration_s(self) -> float:
        return self._read_fact("_audio_s", "the audio's length")

    @property
    def dropped_frames(self) -> int:
        """Frames the first clip loses: made after blank motion frames, its first ones are dropped."""
        return 0 if self.init_first_frame else S2V_FIRST_CLIP_DROP

    @property
    def clips(self) -> int:
        """Clips the pipeline runs (each `clip_frames` long; the first may lose a few frames)."""
        return max(1, math.ceil((self.frames + self.dropped_frames) / self.clip_frames))
