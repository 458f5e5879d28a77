"""Audio in: any file ffmpeg reads (WAV, MP3, M4A/AAC, FLAC, OGG/Opus, a video's sound track),
decoded with the ffmpeg binary bundled in imageio-ffmpeg, downmixed to mono and resampled to
16 kHz float32 — what wav2vec2 (and so S2V) listens to. No extra audio library is needed.

Every bad user file raises `RequestError(field, ...)` naming the file and the problem.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wan_studio.errors import RequestError

SAMPLE_RATE = 16_000
DECODE_TIMEOUT_S = 300


def _ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


@dataclass(frozen=True)
class Audio:
    samples: np.ndarray  # float32 mono in [-1, 1]
    sample_rate: int

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate


def load_audio(path, field: str = "audio", sample_rate: int = SAMPLE_RATE) -> Audio:
    """The file's first audio stream as mono float32 at `sample_rate`."""
    if not path:
        raise RequestError(field, "No audio file was given.")
    path = Path(path)
    name = path.name
    if not path.is_file():
        raise RequestError(field, f"The audio file {name} does not exist (looked for {path}).")
    command = [_ffmpeg(), "-hide_banner", "-nostdin", "-v", "error", "-i", str(path), "-map", "0:a:0",
               "-ac", "1", "-ar", str(sample_rate), "-f", "f32le", "-acodec", "pcm_f32le", "-"]
    try:
        run = subprocess.run(command, capture_output=True, timeout=DECODE_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise RequestError(field, f"Decoding the audio {name} took over {DECODE_TIMEOUT_S} s; "
                                  "it may be damaged.") from exc
    problem = run.stderr.decode("utf-8", "replace").strip()
    if run.returncode != 0:
        if "matches no streams" in problem or "does not contain any stream" in problem:
            raise RequestError(field, f"The file {name} has no sound track; upload a WAV, MP3, M4A, FLAC or OGG file.")
        last = problem.splitlines()[-1] if problem else "unknown error"
        raise RequestError(
            field, f"The file {name} is not audio ffmpeg can read ({last}). Upload a WAV, MP3, M4A, FLAC or OGG file."
        )
    samples = np.frombuffer(run.stdout, dtype="<f4").astype(np.float32)
    if samples.size == 0:
        raise RequestError(field, f"The audio file {name} holds no sound (0 samples).")
    return Audio(np.clip(samples, -1.0, 1.0), sample_rate)


def audio_duration(path, field: str = "audio") -> float:
    """Seconds of sound in the file (decoded, so it is exact even for VBR MP3s)."""
    return load_audio(path, field).duration_s


def mux_options(audio_path, duration_s: float) -> dict:
    """Extra arguments for imageio-ffmpeg's `write_frames`: the sound track as AAC, cut to `duration_s`."""
    return {"audio_path": str(audio_path), "audio_codec": "aac",
            "output_params": ["-b:a", "192k", "-t", f"{duration_s:.3f}"]}
