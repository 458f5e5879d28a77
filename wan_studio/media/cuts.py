"""A part of a user's video: the frame shown at a time (as a picture), or a stretch of it (as a video).

- The frame at t is the one a player shows at t: the last frame whose timestamp is at or before t
  (the first frame before the first timestamp), as displayed (rotation and pixel aspect applied).
- A trim keeps the frames whose timestamps are in [start, end), re-encoded as an H.264 MP4 that
  browsers play (the library's settings), with its first audio track if it has one.
- Both seek near the time first (FFmpeg's input seek: fast on a long video); a container whose
  seek finds no picture (a short MPEG-TS, say) is read again from its start.
- A time outside the video, an end before its start, a part that holds no frame: RequestError for
  the video's field, saying the video's length and what to choose instead.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from PIL import Image

from wan_studio.errors import RequestError
from wan_studio.media import _check_video_path, _ffmpeg, _name, facts, probe_video

SLACK_S = 1e-3  # a time this far past the end is the end (a slider's rounding)
LOOKBACK_FRAMES = 4  # the input seek starts this many frames (at least a second) before the time
NO_FRAME = "no frame"


def _seconds(value, what: str, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise RequestError(field, f"The {what} must be a number of seconds; got {value!r}.")
    return float(value)


def _length(info) -> str:
    return f"{info.duration_s:.2f} s"


def frame_at(video, seconds: float, dest, field: str = "video") -> Path:
    """The frame shown at `seconds` into `video`, written as a PNG at `dest`."""
    path = _check_video_path(video, field)
    info = facts.video_info(path, field)
    seconds = _seconds(seconds, "time", field)
    if not 0 <= seconds <= info.duration_s + SLACK_S:
        raise RequestError(field, f"The video {_name(path)} is {_length(info)} long; choose a time from 0 to "
                                  f"{info.duration_s:.2f} s (got {seconds:g} s).")
    lookback = max(1.0, LOOKBACK_FRAMES / info.fps) if info.fps else seconds
    begin = max(0.0, seconds - lookback)
    frame = _last_frame(path, info, begin, seconds)
    if frame is None and begin > 0:
        frame = _last_frame(path, info, 0.0, seconds)
    if frame is None:  # before the first timestamp: the player shows the first frame
        frame = _last_frame(path, info, 0.0, None)
    if frame is None:
        raise RequestError(field, f"No frame of the video {_name(path)} could be decoded; "
                                  "try re-encoding it as H.264 MP4.")
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    # written beside and moved into place: a page asking for the same frame twice never reads half a file
    with tempfile.NamedTemporaryFile(dir=dest.parent, prefix=f".{dest.stem}-", suffix=".png", delete=False) as part:
        try:
            frame.save(part, format="PNG")
        except BaseException:
            os.unlink(part.name)
            raise
    os.replace(part.name, dest)
    return dest


def _last_frame(path: Path, info, begin: float, until: float | None) -> Image.Image | None:
    """The last displayed frame with a timestamp at or before `until` (None: the first frame at or
    after `begin`), read from an input seek to `begin`; None when none came out."""
    width, height = info.width, info.height
    filters = [f"trim=end={until - begin + 1e-4:.6f}"] if until is not None else []
    filters.append(f"scale={width}:{height}:flags=bicubic,setsar=1")  # as probe_video says it is displayed
    command = [_ffmpeg(), "-v", "error", "-nostdin", "-ss", f"{begin:.6f}", "-i", str(path), "-map", "0:V:0",
               "-an", "-sn", "-vf", ",".join(filters), "-fps_mode", "passthrough"]
    if until is None:
        command += ["-frames:v", "1"]
    command += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    size, last = width * height * 3, None
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as process:
        while len(data := process.stdout.read(size)) == size:  # every frame up to the time; the last one stays
            last = data
    return Image.frombytes("RGB", (width, height), last) if last is not None else None


def trim_video(video, start_s: float, end_s: float | None, dest, field: str = "video") -> Path:
    """The part of `video` from `start_s` up to `end_s` (None: its end), as an MP4 at `dest`."""
    path = _check_video_path(video, field)
    info = facts.video_info(path, field)
    name = _name(path)
    start = _seconds(start_s, "start", field)
    end = info.duration_s if end_s is None else _seconds(end_s, "end", field)
    if start < 0:
        raise RequestError(field, f"The start must be 0 s or later; got {start:g} s.")
    if start >= info.duration_s:
        raise RequestError(field, f"The video {name} is {_length(info)} long; choose a start before "
                                  f"{info.duration_s:.2f} s (got {start:g} s).")
    if end <= start:
        raise RequestError(field, f"The end ({end:g} s) must be after the start ({start:g} s); "
                                  "choose a later end or an earlier start.")
    if end > info.duration_s + SLACK_S:
        raise RequestError(field, f"The video {name} is {_length(info)} long; choose an end of at most "
                                  f"{info.duration_s:.2f} s (got {end:g} s).")
    end = min(end, info.duration_s)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(f"{dest.stem}.part{dest.suffix}")
    try:
        problem = _encode(path, start, end, part, seek_first=True)
        if problem is not None:
            problem = _encode(path, start, end, part, seek_first=False)
        if problem == NO_FRAME:
            lasts = f" (a frame lasts {1 / info.fps:.3g} s at {info.fps:g} fps)" if info.fps else ""
            raise RequestError(field, f"No frame of {name} lies between {start:g} s and {end:g} s; choose a "
                                      f"longer part{lasts}.")
        if problem is not None:
            raise RequestError(field, f"The video {name} could not be trimmed ({problem}); try re-encoding it as "
                                      "H.264 MP4.")
        os.replace(part, dest)
    finally:
        part.unlink(missing_ok=True)
    return dest


def _encode(path: Path, start: float, end: float, part: Path, seek_first: bool) -> str | None:
    """Encode [start, end) of `path` to `part`: None when it holds a frame, else what went wrong. An
    input seek is fast and frame-accurate; an output seek decodes from the start (for a container
    whose seek finds no picture)."""
    window = ["-ss", f"{start:.6f}", "-t", f"{end - start:.6f}"]
    command = [_ffmpeg(), "-v", "error", "-nostdin", "-y", *(window[:2] if seek_first else []), "-i", str(path),
               *(window[2:] if seek_first else window), "-map", "0:V:0", "-map", "0:a:0?", "-sn", "-dn",
               "-vf", "scale=trunc(iw/2)*2:trunc(ih/2)*2",  # H.264 in yuv420p wants even sides
               "-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "17", "-preset", "faster",
               "-c:a", "aac", "-movflags", "+faststart", "-f", "mp4", str(part)]
    done = subprocess.run(command, capture_output=True, text=True, errors="replace")
    if done.returncode or not part.is_file():
        return (done.stderr.strip().splitlines() or [f"ffmpeg exit status {done.returncode}"])[-1]
    try:
        return None if probe_video(part).frames > 0 else NO_FRAME
    except RequestError:  # no video stream, or no frame in it
        return NO_FRAME
