"""Synthetic sample videos made with PyAV: known cuts, motion and a static shot. Used by the demo job and
the tests, where exact ground truth matters."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


@dataclass(frozen=True)
class Shot:
    frames: int
    color: tuple[int, int, int]
    motion: bool = True  # a square moving across the frame; False: a still image


def write_video(
    path: str | Path,
    shots: list[Shot],
    width: int = 320,
    height: int = 180,
    fps: int = 24,
    codec: str = "libx264",
    rotation: int = 0,
    sar: Fraction | None = None,
    gop: int = 48,
) -> Path:
    """Write shots back to back; the first frame of shot k is a hard cut. Returns the path."""
    rng = np.random.default_rng(0)

    def frames():
        for shot in shots:
            base = np.empty((height, width, 3), np.uint8)
            base[:] = shot.color
            texture = rng.integers(0, 40, size=(height, width, 1), dtype=np.uint8)
            base = np.clip(base.astype(np.int16) + texture - 20, 0, 255).astype(np.uint8)
            size = max(8, height // 4)
            for i in range(shot.frames):
                img = base.copy()
                x = (i * 6) % max(1, width - size) if shot.motion else width // 3
                y = height // 3
                img[y : y + size, x : x + size] = 255 - np.asarray(shot.color, np.uint8)
                yield img

    def setup(stream) -> None:
        if sar is not None:
            stream.codec_context.sample_aspect_ratio = sar
        if rotation:
            stream.set_display_rotation(rotation)

    options = {"g": str(gop), "preset": "ultrafast"} if codec == "libx264" else {"g": str(gop)}
    return encode_frames(path, frames(), width, height, fps, codec, options, setup)


def encode_frames(
    path: str | Path,
    frames: Iterable[np.ndarray | av.VideoFrame],
    width: int,
    height: int,
    fps: int,
    codec: str = "libx264",
    options: dict[str, str] | None = None,
    setup: Callable[[av.video.stream.VideoStream], None] | None = None,
) -> Path:
    """Encode RGB arrays (or ready VideoFrames) at `fps`, one PTS step each, into `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = options or {}
        if setup is not None:
            setup(stream)
        for index, img in enumerate(frames):
            frame = img if isinstance(img, av.VideoFrame) else av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def make_sample_batch(folder: str | Path) -> list[Path]:
    """Three small videos: cuts with motion, a static single shot, and a longer multi-shot one."""
    folder = Path(folder)
    return [
        write_video(
            folder / "three_shots.mp4",
            [Shot(72, (200, 40, 40)), Shot(72, (40, 160, 60)), Shot(96, (40, 60, 200))],
        ),
        write_video(folder / "static.mp4", [Shot(120, (120, 120, 120), motion=False)]),
        write_video(
            folder / "long_mixed.mp4",
            [Shot(120, (220, 180, 40)), Shot(96, (30, 30, 30), motion=False), Shot(144, (90, 20, 160))],
        ),
    ]
