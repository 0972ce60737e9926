"""Frames for downstream models: sampled at target rates and sizes, decoded once per clip."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import ClassVar

import av
import numpy as np

from curator_core.resources import Resources
from curator_core.tasks import Clip, FrameKey
from curator_core.video.clip_stage import ClipStage


def decode_clip_frames(data: bytes, keys: list[FrameKey]) -> dict[FrameKey, np.ndarray]:
    """Decode an encoded clip once; for each key keep the frames nearest to a `fps` grid, converted to
    RGB at the key's size (only the kept frames are converted). Arrays are (N, H, W, 3) uint8."""
    wanted: dict[FrameKey, list[np.ndarray]] = {k: [] for k in keys}
    next_t = {k: 0.0 for k in keys}
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        start = None
        for frame in container.decode(stream):
            if frame.pts is None:
                continue
            t = float(frame.pts * stream.time_base)
            start = t if start is None else start
            rel = t - start
            for key in keys:
                if rel + 1e-6 >= next_t[key]:
                    width, height = _size(frame, key)
                    wanted[key].append(frame.to_ndarray(width=width, height=height, format="rgb24"))
                    next_t[key] += 1.0 / key.fps
                    while next_t[key] <= rel:
                        next_t[key] += 1.0 / key.fps
    out = {}
    for key, frames in wanted.items():
        if frames:
            out[key] = np.stack(frames)
    return out


def _size(frame: av.VideoFrame, key: FrameKey) -> tuple[int, int]:
    if key.width and key.height:
        return key.width, key.height
    if key.height:
        return max(2, round(frame.width * key.height / frame.height)), key.height
    if key.width:
        return key.width, max(2, round(frame.height * key.width / frame.width))
    return frame.width, frame.height


@dataclass
class ClipFrameExtractionStage(ClipStage):
    """Stores each clip's frames under `FrameKey(fps, height, width)` for every requested key."""

    keys: list[FrameKey] = field(default_factory=lambda: [FrameKey(fps=1.0, height=224, width=224)])
    name: str = "clip_frame_extraction"
    resources: Resources = Resources(cpus=1.0)
    error_key: ClassVar[str] = "frame_extraction"

    def process_clip(self, clip: Clip) -> None:
        clip.extracted_frames.update(decode_clip_frames(clip.encoded_data, self.keys))
