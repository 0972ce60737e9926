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
