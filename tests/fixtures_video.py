"""Synthetic videos with exact ground truth, made with PyAV, plus deliberately bad inputs."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from curator_core.video.samples import Shot, write_video

FPS = 24
CUT_FRAMES = (48, 96)  # first frames of shots 2 and 3


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("synthetic")


@pytest.fixture(scope="session")
def three_shots(synthetic_dir) -> Path:
    """144 frames at 24 fps: cuts at frames 48 and 96 (2.0 s and 4.0 s)."""
    return write_video(
        synthetic_dir / "three_shots.mp4",
        [Shot(48, (200, 40, 40)), Shot(48, (40, 160, 60)), Shot(48, (40, 60, 200))],
        fps=FPS,
    )


@pytest.fixture(scope="session")
def static_video(synthetic_dir) -> Path:
    return write_video(synthetic_dir / "static.mp4", [Shot(72, (120, 120, 120), motion=False)], fps=FPS)


@pytest.fixture(scope="session")
def moving_video(synthetic_dir) -> Path:
    return write_video(synthetic_dir / "moving.mp4", [Shot(72, (120, 120, 120), motion=True)], fps=FPS)


@pytest.fixture(scope="session")
def rotated_video(synthetic_dir) -> Path:
    return write_video(
        synthetic_dir / "rotated.mp4", [Shot(48, (90, 90, 200))], width=320, height=180, rotation=-90
    )


@pytest.fixture(scope="session")
def anamorphic_video(synthetic_dir) -> Path:
    return write_video(
        synthetic_dir / "anamorphic.mp4", [Shot(48, (90, 200, 90))], width=240, height=180, sar=Fraction(4, 3)
    )


@pytest.fixture(scope="session")
def bad_inputs(synthetic_dir, three_shots) -> dict[str, Path]:
    """Every kind of bad input the pipeline must record and survive."""
    folder = synthetic_dir / "bad inputs ünïcödé"
    folder.mkdir()
    empty = folder / "empty.mp4"
    empty.write_bytes(b"")
    text = folder / "notes.mp4"
    text.write_text("this is not a video\n")
    data = three_shots.read_bytes()
    truncated = folder / "truncated.mp4"
    truncated.write_bytes(data[: len(data) // 2])
    unsupported = folder / "unsupported.mp4"
    unsupported.write_bytes(data.replace(b"avc1", b"zzzz").replace(b"avcC", b"zzzC"))
    audio_only = folder / "audio only.m4a"
    with av.open(str(audio_only), mode="w", format="mp4") as container:
        stream = container.add_stream("aac", rate=16000)
        samples = (np.sin(np.arange(16000) / 10.0) * 0.2).astype(np.float32)[None, :]
        frame_size = stream.codec_context.frame_size or 1024
        for i in range(0, samples.shape[1] - frame_size, frame_size):
            frame = av.AudioFrame.from_ndarray(samples[:, i : i + frame_size], format="fltp", layout="mono")
            frame.sample_rate = 16000
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    good = folder / "good clip ü.mp4"
    good.write_bytes(data)
    return {
        "empty": empty,
        "text": text,
        "truncated": truncated,
        "unsupported": unsupported,
        "audio_only": audio_only,
        "good": good,
    }


def decode_all(data_or_path) -> tuple[list[av.VideoFrame], av.video.stream.VideoStream]:
    import io

    source = io.BytesIO(data_or_path) if isinstance(data_or_path, bytes) else str(data_or_path)
    container = av.open(source)
    stream = container.streams.video[0]
    frames = list(container.decode(stream))
    return frames, stream


def _encode_raw(path: Path, streams: list[tuple[int, int, int, str]]) -> Path:
    """One file with a video stream per (frames, width, height, pix_fmt), frames of changing content."""
    with av.open(str(path), mode="w") as container:
        outs = []
        for _, width, height, pix_fmt in streams:
            stream = container.add_stream("libx264", rate=FPS)
            stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
            stream.options = {"preset": "ultrafast"}
            outs.append(stream)
        for i in range(max(n for n, *_ in streams)):
            for (frames, width, height, _), stream in zip(streams, outs, strict=True):
                if i >= frames:
                    continue
                img = np.full((height, width, 3), 90, np.uint8)
                img[40:80, (i * 5) % (width - 50) : (i * 5) % (width - 50) + 40] = 250
                frame = av.VideoFrame.from_ndarray(img, format="rgb24")
                frame.pts = i
                for packet in stream.encode(frame):
                    container.mux(packet)
        for stream in outs:
            for packet in stream.encode(None):
                container.mux(packet)
    return path


@pytest.fixture(scope="session")
def odd_inputs(synthetic_dir) -> dict[str, Path]:
    """Inputs that used to vanish or sink a video (issue #19): a damaged middle, odd dimensions, a PNG
    named .mp4, a single frame, two video streams (the longer one second), a GIF and a .3gp by name."""
    from PIL import Image

    folder = synthetic_dir / "odd inputs"
    folder.mkdir()
    colors = [(200, 40, 40), (40, 160, 60), (40, 60, 200)] * 2
    whole = write_video(folder / "six_shots.mp4", [Shot(96, c) for c in colors], gop=24)  # 24 s, cut each 4 s
    data = bytearray(whole.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 20000] = np.random.default_rng(1).integers(0, 256, 20000, dtype=np.uint8).tobytes()
    damaged = folder / "damaged.mp4"
    damaged.write_bytes(bytes(data))
    whole.unlink()
    odd = _encode_raw(folder / "odd 641x361.mp4", [(72, 641, 361, "yuv444p")])
    image = folder / "picture.mp4"
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(image, format="PNG")
    one_frame = write_video(folder / "one frame.mp4", [Shot(1, (100, 100, 100))])
    two_streams = _encode_raw(
        folder / "two streams.mp4", [(24, 320, 180, "yuv420p"), (144, 320, 180, "yuv420p")]
    )
    gif = folder / "anim.gif"
    with av.open(str(gif), mode="w") as container:
        stream = container.add_stream("gif", rate=10)
        stream.width, stream.height, stream.pix_fmt = 160, 90, "rgb8"
        for i in range(30):
            img = np.full((90, 160, 3), 60, np.uint8)
            img[20:50, i * 4 : i * 4 + 30] = 240
            frame = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="rgb8")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    phone = write_video(folder / "phone.3gp", [Shot(72, (90, 90, 200))])
    return {
        "damaged": damaged,
        "odd": odd,
        "image": image,
        "one_frame": one_frame,
        "two_streams": two_streams,
        "gif": gif,
        "phone": phone,
    }
