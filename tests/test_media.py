"""wan_studio.media: user pictures and videos come out as upright RGB at the right size and rate,
and every bad file gets its own message."""

from __future__ import annotations

import subprocess
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.media_fixtures import make_video
from wan_studio import media
from wan_studio.errors import RequestError
from wan_studio.media import cuts


def ffmpeg(*args: str) -> None:
    import imageio_ffmpeg

    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", *args], check=True, capture_output=True)


def lavfi_video(path: Path, rate="24", seconds=1.0, size="160x120", codec=("-c:v", "libx264", "-pix_fmt", "yuv420p"),
                source="testsrc2") -> Path:
    ffmpeg("-f", "lavfi", "-i", f"{source}=size={size}:rate={rate}", "-t", str(seconds), *codec, str(path))
    return path


def has_encoder(name: str) -> bool:
    import imageio_ffmpeg

    out = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-encoders"], capture_output=True,
                         text=True).stdout
    return any(line.split()[1:2] == [name] for line in out.splitlines() if line.strip())


@contextmanager
def raises(field: str, *fragments: str):
    """Expect a RequestError for `field` whose message contains every fragment."""
    with pytest.raises(RequestError) as caught:
        yield caught
    assert caught.value.field == field
    for fragment in fragments:
        assert fragment in caught.value.message, caught.value.message


# -- images ---------------------------------------------------------------------------------------
def test_rgba_is_composited_on_white(tmp_path):
    array = np.zeros((20, 30, 4), np.uint8)
    array[..., 0] = 255  # red, fully transparent on the left half, opaque on the right
    array[:, 15:, 3] = 255
    Image.fromarray(array, "RGBA").save(tmp_path / "a.png")
    image = media.load_image(tmp_path / "a.png")
    assert image.mode == "RGB" and image.size == (30, 20)
    assert image.getpixel((2, 2)) == (255, 255, 255)
    assert image.getpixel((25, 2)) == (255, 0, 0)


def test_la_and_grayscale(tmp_path):
    la = Image.merge("LA", (Image.new("L", (10, 10), 0), Image.new("L", (10, 10), 0)))
    la.save(tmp_path / "la.png")
    assert media.load_image(tmp_path / "la.png").getpixel((0, 0)) == (255, 255, 255)
    Image.new("L", (10, 8), 77).save(tmp_path / "l.png")
    image = media.load_image(tmp_path / "l.png")
    assert image.mode == "RGB" and image.size == (10, 8) and image.getpixel((3, 3)) == (77, 77, 77)


def test_sixteen_bit_grey_is_scaled_not_clipped(tmp_path):
    values = np.full((8, 12), 32768, np.uint16)
    values[0, 0], values[0, 1] = 65535, 0
    Image.fromarray(values).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    pixels = np.asarray(media.load_image(tmp_path / "deep.png"))
    assert abs(int(pixels[4, 4, 0]) - 128) <= 1
    assert pixels[0, 0, 0] == 255 and pixels[0, 1, 0] == 0
    assert (pixels[..., 0] == pixels[..., 2]).all()


def test_float_and_array_sources():
    image = media.load_image(np.full((4, 6), 0.5, np.float32))
    assert image.size == (6, 4) and abs(image.getpixel((0, 0))[0] - 128) <= 1
    assert media.load_image(np.zeros((4, 6, 3), np.uint8)).mode == "RGB"
    with raises("image", "shape"):
        media.load_image(np.zeros((4, 6, 5), np.uint8))
    with raises("image", "numpy array", "int"):
        media.load_image(42)


def test_palette_with_and_without_transparency(tmp_path):
    rgb = Image.new("RGB", (16, 16), (10, 200, 30))
    rgb.convert("P", palette=Image.Palette.ADAPTIVE).save(tmp_path / "p.png")
    assert media.load_image(tmp_path / "p.png").getpixel((5, 5)) == (10, 200, 30)
    p = Image.new("P", (16, 16), 0)
    p.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    p.paste(1, (8, 0, 16, 16))
    p.save(tmp_path / "pt.png", transparency=0)
    image = media.load_image(tmp_path / "pt.png")
    assert image.getpixel((2, 2)) == (255, 255, 255) and image.getpixel((12, 2)) == (255, 0, 0)


def test_cmyk_jpeg(tmp_path):
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(tmp_path / "c.jpg", quality=95)
    image = media.load_image(tmp_path / "c.jpg")
    r, g, b = image.getpixel((8, 8))
    assert image.mode == "RGB" and r > 200 and g < 60 and b < 60


def test_exif_rotation_is_applied(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    Image.new("RGB", (200, 100), (50, 60, 70)).save(tmp_path / "phone.jpg", exif=exif)
    assert Image.open(tmp_path / "phone.jpg").size == (200, 100)
    assert media.load_image(tmp_path / "phone.jpg").size == (100, 200)


@pytest.mark.parametrize(
    "make, fragments",
    [
        (lambda p: (p / "notes.png").write_text("hello, not a picture"),
         ("notes.png isn't an image we can read: PNG, JPEG or WebP", "not an image, or it is damaged")),
        (lambda p: (p / "empty.png").write_bytes(b""), ("empty.png is empty", "upload it again")),
        (lambda p: None, ("gone.png was not found",)),
        (lambda p: (p / "folder.png").mkdir(), ("folder.png is a folder",)),
    ],
)
def test_bad_image_files(tmp_path, make, fragments):
    make(tmp_path)
    name = fragments[0].split()[0]
    with raises("last_image", *fragments):
        media.load_image(tmp_path / name, field="last_image")


def test_truncated_image_and_video_given_as_image(tmp_path):
    Image.new("RGB", (64, 64), (1, 2, 3)).save(tmp_path / "full.png")
    (tmp_path / "cut.png").write_bytes((tmp_path / "full.png").read_bytes()[:60])
    with raises("image", "cut.png isn't an image we can read"):
        media.load_image(tmp_path / "cut.png")
    clip = lavfi_video(tmp_path / "clip.mp4", seconds=0.2)
    with raises("image", "clip.mp4 is a video, not an image"):
        media.load_image(clip)


# -- sizes ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "size, expected",
    [
        ((1920, 1080), (832, 464)),  # 16:9 at the 832x480 area
        ((1080, 1920), (464, 832)),  # 9:16
        ((832, 480), (832, 480)),  # already native
        ((1000, 1000), (624, 624)),  # square
        ((40, 30), (720, 544)),  # tiny pictures are scaled up
        ((5000, 10), (12480, 32)),  # extreme: the short side is held at 2 x granularity, the long one shrinks to fit
    ],
)
def test_fit_size(size, expected):
    width, height = media.fit_size(*size, 832 * 480, 16)
    assert (width, height) == expected
    assert width % 16 == 0 and height % 16 == 0 and width * height <= 832 * 480


def test_resizes():
    image = Image.new("RGB", (200, 100), (0, 0, 0))
    image.paste((255, 0, 0), (0, 0, 50, 100))  # red band on the left quarter
    assert media.resize_to(image, 64, 64).size == (64, 64)
    cropped = media.center_crop_resize(image, 64, 64)
    assert cropped.size == (64, 64)
    assert cropped.getpixel((2, 32))[0] < 30  # the red band was cropped away
    assert media.center_crop_resize(image, 80, 40).getpixel((2, 20))[0] > 200  # same aspect: kept
    frames = media.resize_frames([image, image], 32, 48, crop=False)
    assert [f.size for f in frames] == [(32, 48)] * 2


def test_frame_counts():
    assert media.legal_frame_count(100, 5, 81) == 81
    assert media.legal_frame_count(40, 5, 81) == 37
    assert media.legal_frame_count(4, 5, 81) == 0
    assert media.legal_frame_count(5, 5, 81) == 5
    assert media.fit_frames(list(range(10)), 9) == list(range(9))
    with pytest.raises(ValueError):
        media.fit_frames([1, 2], 5)


# -- videos ---------------------------------------------------------------------------------------
def test_probe_and_load_h264(tmp_path):
    clip = lavfi_video(tmp_path / "clip.mp4")
    info = media.probe_video(clip)
    assert (info.width, info.height, info.frames, info.has_audio) == (160, 120, 24, False)
    assert info.fps == pytest.approx(24) and info.duration_s == pytest.approx(1.0, abs=0.05)
    frames = media.load_video_frames(clip)
    assert len(frames) == 24 and frames[0].mode == "RGB" and frames[0].size == (160, 120)
    assert len(media.load_video_frames(clip, max_frames=5)) == 5


def test_odd_fps_is_resampled_by_time(tmp_path):
    clip = lavfi_video(tmp_path / "ntsc.mp4", rate="30000/1001", seconds=2)
    info = media.probe_video(clip)
    assert info.fps == pytest.approx(29.97, abs=0.01)
    frames = media.load_video_frames(clip, fps=16)
    assert abs(len(frames) - info.duration_s * 16) <= 1
    for rate in ("12.5", "60"):
        path = lavfi_video(tmp_path / f"r{rate}.mp4", rate=rate, seconds=1)
        assert abs(len(media.load_video_frames(path, fps=16)) - 16) <= 1


def test_variable_frame_rate(tmp_path):
    # 60 frames: the first 30 two ticks apart (15 fps for 2 s), the last 30 one tick apart (30 fps for 1 s)
    clip = tmp_path / "vfr.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=30", "-frames:v", "60",
           "-vf", "setpts='if(lt(N,30),2*N,30+N)/30/TB'", "-fps_mode", "vfr", "-c:v", "libx264", "-pix_fmt", "yuv420p",
           str(clip))
    info = media.probe_video(clip)
    assert info.frames == 60 and info.duration_s == pytest.approx(3.0, abs=0.1)
    assert len(media.load_video_frames(clip)) == 60
    assert abs(len(media.load_video_frames(clip, fps=16)) - 48) <= 1


@pytest.mark.parametrize(
    "name, codec, encoder",
    [
        ("clip.webm", ("-c:v", "libvpx-vp9", "-b:v", "200k", "-deadline", "realtime", "-cpu-used", "8"), "libvpx-vp9"),
        ("clip.mov", ("-c:v", "libx264", "-pix_fmt", "yuv420p"), "libx264"),
        ("clip.mkv", ("-c:v", "libx264", "-pix_fmt", "yuv420p"), "libx264"),
        ("clip.avi", ("-c:v", "mpeg4"), "mpeg4"),
        ("clip.gif", (), "gif"),
    ],
)
def test_common_containers(tmp_path, name, codec, encoder):
    # imageio-ffmpeg's pinned static ffmpeg has every one: a missing encoder is a broken install, not a skip
    assert has_encoder(encoder), f"the bundled ffmpeg has no {encoder} encoder to make {name}"
    clip = lavfi_video(tmp_path / name, rate="10", seconds=1, codec=codec)
    info = media.probe_video(clip)
    assert (info.width, info.height) == (160, 120) and info.frames == 10
    frames = media.load_video_frames(clip, fps=16)
    assert abs(len(frames) - 16) <= 1 and frames[0].size == (160, 120)


def test_rotation_metadata_is_applied(tmp_path):
    plain = lavfi_video(tmp_path / "plain.mp4", seconds=0.5)
    rotated = tmp_path / "rotated.mp4"
    ffmpeg("-display_rotation", "90", "-i", str(plain), "-c", "copy", str(rotated))
    info = media.probe_video(rotated)
    assert (info.width, info.height) == (120, 160)
    assert media.load_video_frames(rotated, max_frames=1)[0].size == (120, 160)


def test_audio_is_reported(tmp_path):
    clip = tmp_path / "talk.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=16", "-f", "lavfi", "-i", "sine=frequency=440",
           "-t", "1", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", str(clip))
    assert media.probe_video(clip).has_audio


def test_too_short_video_is_counted_exactly(tmp_path):
    clip = lavfi_video(tmp_path / "short.mp4", rate="16", seconds=7 / 16)
    info = media.probe_video(clip)
    assert info.frames == 7
    assert media.legal_frame_count(int(info.duration_s * 16 + 1e-6), 9, 81) == 0
    assert len(media.load_video_frames(clip, fps=16, max_frames=9)) == 7


def test_bad_video_files(tmp_path):
    Image.new("RGB", (32, 32), (9, 9, 9)).save(tmp_path / "still.png")
    (tmp_path / "still.mp4").write_bytes((tmp_path / "still.png").read_bytes())
    with raises("video", "still.mp4 is a still image (PNG), not a video"):
        media.probe_video(tmp_path / "still.mp4")
    (tmp_path / "notes.mp4").write_text("just some text, certainly not a movie\n" * 20)
    with raises("video", "notes.mp4 is not a video", "Upload an MP4"):
        media.probe_video(tmp_path / "notes.mp4")
    with raises("video", "notes.mp4 is not a video"):
        media.load_video_frames(tmp_path / "notes.mp4", fps=16)
    with raises("driving", "missing.mp4 was not found"):
        media.probe_video(tmp_path / "missing.mp4", field="driving")
    (tmp_path / "empty.mp4").write_bytes(b"")
    with raises("video", "empty.mp4 is empty"):
        media.probe_video(tmp_path / "empty.mp4")
    sound = tmp_path / "sound.m4a"
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440", "-t", "0.5", "-c:a", "aac", str(sound))
    with raises("video", "sound.m4a has no video stream (only audio)"):
        media.probe_video(sound)


# -- masks ----------------------------------------------------------------------------------------
def test_mask_image_is_binarised_and_resized(tmp_path):
    grey = np.zeros((60, 80), np.uint8)
    grey[:, 40:] = 200  # generate on the right half
    grey[:, 38:40] = 100  # below the threshold: keep
    Image.fromarray(grey).convert("RGB").save(tmp_path / "m.png")
    mask = media.load_mask_image(tmp_path / "m.png", 40, 30)
    values = np.asarray(mask)
    assert mask.mode == "L" and mask.size == (40, 30)
    assert set(np.unique(values)) == {0, 255}
    assert (values[:, 21:] == 255).all() and (values[:, :19] == 0).all()


def test_mask_from_alpha(tmp_path):
    rgba = np.zeros((20, 20, 4), np.uint8)  # black everywhere; the painted stroke is the opaque part
    rgba[5:10, 5:10, 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "stroke.png")
    values = np.asarray(media.load_mask_image(tmp_path / "stroke.png", 20, 20))
    assert (values[5:10, 5:10] == 255).all() and values.sum() == 25 * 255
    opaque = np.full((20, 20, 4), 255, np.uint8)
    opaque[:10, :, :3] = 0  # fully opaque: luminance decides
    Image.fromarray(opaque, "RGBA").save(tmp_path / "opaque.png")
    values = np.asarray(media.load_mask_image(tmp_path / "opaque.png", 20, 20))
    assert (values[:10] == 0).all() and (values[10:] == 255).all()


def test_mask_video(tmp_path):
    clip = tmp_path / "mask.mp4"
    ffmpeg("-f", "lavfi", "-i", "color=c=black:size=160x120:rate=16", "-t", "1",
           "-vf", "drawbox=x=40:y=30:w=80:h=60:color=white:t=fill", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(clip))
    masks = media.load_mask_video(clip, 9, 80, 60, fps=16)
    assert len(masks) == 9 and all(m.size == (80, 60) and m.mode == "L" for m in masks)
    values = np.asarray(masks[4])
    assert set(np.unique(values)) <= {0, 255}
    assert values[30, 40] == 255 and values[2, 2] == 0
    with raises("mask", "has 16 frames at 16 fps; this needs 33"):
        media.load_mask_video(clip, 33, 80, 60, fps=16, field="mask")


# -- a frame of a video, a part of a video --------------------------------------------------------
def decoded(path: Path) -> list[tuple[float, np.ndarray]]:
    """(timestamp, RGB pixels) of every frame, read with PyAV: not the code under test."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        start = stream.start_time or 0
        return [(float((frame.pts - start) * stream.time_base), frame.to_ndarray(format="rgb24"))
                for frame in container.decode(stream)]


def closest(picture: np.ndarray, frames: list) -> tuple[int, float]:
    """The index of the frame that looks most like the picture, and their mean difference."""
    differences = [np.abs(picture.astype(int) - pixels.astype(int)).mean() for _, pixels in frames]
    return int(np.argmin(differences)), min(differences)


@pytest.mark.parametrize("container", ["mp4", "ts"])  # an MPEG-TS starts at 1.4 s and its seek finds no picture
def test_frame_at_is_the_frame_a_player_shows_at_that_time(tmp_path, container):
    clip = make_video(tmp_path / "clip.mp4", (96, 64), fps=16, seconds=1.0)  # frames every 0.0625 s
    if container == "ts":
        ffmpeg("-i", str(clip), "-c", "copy", str(tmp_path / "clip.ts"))
        clip = tmp_path / "clip.ts"
    frames = decoded(clip)
    assert len(frames) == 16
    # on a frame's own time, between two frames (the earlier one shows), the last frame up to the end
    for seconds, index in ((0.0, 0), (0.5, 8), (0.53, 8), (0.5625, 9), (0.97, 15), (1.0, 15)):
        path = cuts.frame_at(clip, seconds, tmp_path / "frames" / f"at-{seconds}.png")
        picture = np.asarray(Image.open(path))
        assert picture.shape == (64, 96, 3)
        assert closest(picture, frames) == (index, pytest.approx(0, abs=0.5)), seconds


def test_frame_at_shows_the_video_as_displayed_and_refuses_a_time_outside_it(tmp_path):
    clip = make_video(tmp_path / "clip.mp4", (96, 64), fps=16, seconds=1.0)
    rotated = tmp_path / "rotated.mp4"
    ffmpeg("-display_rotation", "90", "-i", str(clip), "-c", "copy", str(rotated))
    assert Image.open(cuts.frame_at(rotated, 0.5, tmp_path / "upright.png")).size == (64, 96)
    for seconds in (1.5, -0.1):
        with raises("video", "clip.mp4 is 1.00 s long", "choose a time from 0 to 1.00 s"):
            cuts.frame_at(clip, seconds, tmp_path / "outside.png")
    with raises("image_video", "No image video was given"):
        cuts.frame_at(None, 0, tmp_path / "none.png", field="image_video")
    assert not (tmp_path / "outside.png").exists()


def test_trim_keeps_the_frames_from_start_to_end(tmp_path):
    clip = tmp_path / "talk.mp4"  # 1 s at 16 fps, with a sound track
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=96x64:rate=16", "-f", "lavfi", "-i", "sine=frequency=440",
           "-t", "1", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", str(clip))
    source = decoded(clip)
    part = cuts.trim_video(clip, 0.25, 0.75, tmp_path / "trims" / "part.mp4")
    import av

    with av.open(str(part)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.average_rate == 16
        assert float(stream.duration * stream.time_base) == pytest.approx(0.5, abs=0.01)
        assert container.streams.audio and container.duration / 1e6 == pytest.approx(0.5, abs=0.1)
    kept = decoded(part)
    assert len(kept) == 8  # the frames at 0.25, 0.3125, ... 0.6875: [start, end)
    assert [closest(pixels, source)[0] for _, pixels in kept] == list(range(4, 12))
    rest = cuts.trim_video(clip, 0.5, None, tmp_path / "rest.mp4")  # no end: up to the video's end
    assert [closest(pixels, source)[0] for _, pixels in decoded(rest)] == list(range(8, 16))


@pytest.mark.parametrize("start, end, fragments", [
    (0.75, 0.25, ("The end (0.25 s) must be after the start (0.75 s)",)),
    (0.25, 3, ("clip.mp4 is 1.00 s long", "choose an end of at most 1.00 s (got 3 s)")),
    (2, None, ("clip.mp4 is 1.00 s long", "choose a start before 1.00 s (got 2 s)")),
    (-1, 0.5, ("The start must be 0 s or later",)),
    (0.51, 0.55, ("No frame of clip.mp4 lies between 0.51 s and 0.55 s", "a frame lasts 0.0625 s at 16 fps")),
    ("half", 0.5, ("The start must be a number of seconds; got 'half'",)),
])
def test_trim_refuses_a_part_that_is_not_in_the_video(tmp_path, start, end, fragments):
    clip = make_video(tmp_path / "clip.mp4", (96, 64), fps=16, seconds=1.0)
    with raises("video", *fragments):
        cuts.trim_video(clip, start, end, tmp_path / "part.mp4")
    assert not (tmp_path / "part.mp4").exists() and not (tmp_path / "part.part.mp4").exists()
    with raises("video", "No video was given; upload a video"):
        cuts.trim_video(None, 0, 1, tmp_path / "part.mp4")
