"""Small animated WebP previews per clip, encoded in-process (libwebp_anim in PyAV's FFmpeg)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import ClassVar

import av

from curator_core.resources import Resources
from curator_core.tasks import Clip
from curator_core.video.clip_stage import ClipStage


def make_preview(data: bytes, fps: float = 2.0, height: int = 160, max_frames: int = 16) -> bytes:
    """An animated WebP of `max_frames` frames at most, sampled at `fps`, `height` pixels high."""
    buffer = io.BytesIO()
    with av.open(io.BytesIO(data)) as src, av.open(buffer, mode="w", format="webp") as dst:
        stream = src.streams.video[0]
        stream.thread_type = "AUTO"
        out = None
        next_t, count, start = 0.0, 0, None
        for frame in src.decode(stream):
            if frame.pts is None:
                continue
            t = float(frame.pts * stream.time_base)
            start = t if start is None else start
            if t - start + 1e-6 < next_t:
                continue
            width = max(2, round(frame.width * height / frame.height / 2) * 2)
            if frame.rotation % 180:
                width, h = height, width
            else:
                h = height
            if out is None:
                out = dst.add_stream("libwebp_anim", rate=int(round(fps)) or 1)
                out.width, out.height, out.pix_fmt = width, h, "yuva420p"
                out.options = {"loop": "0", "quality": "60"}
            img = frame.to_image(
                width=width if not frame.rotation % 180 else h,
                height=h if not frame.rotation % 180 else width,
            )
            if frame.rotation:
                img = img.rotate(frame.rotation, expand=True)
            vf = av.VideoFrame.from_image(img).reformat(format="yuva420p", width=width, height=h)
            vf.pts = count
            for packet in out.encode(vf):
                dst.mux(packet)
            count += 1
            next_t += 1.0 / fps
            if count >= max_frames:
                break
        if out is not None:
            for packet in out.encode(None):
                dst.mux(packet)
    return buffer.getvalue()


@dataclass
class PreviewStage(ClipStage):
    """Puts an animated WebP preview of each clip in `clip.metadata["preview_webp"]` (bytes)."""

    fps: float = 2.0
    height: int = 160
    max_frames: int = 16
    name: str = "preview"
    resources: Resources = Resources(cpus=0.5)
    error_key: ClassVar[str] = "preview"
    recoverable: ClassVar[tuple[type[Exception], ...]] = (av.error.FFmpegError, ValueError)

    def outputs(self) -> tuple[list[str], list[str]]:
        return [], []

    def process_clip(self, clip: Clip) -> None:
        clip.metadata["preview_webp"] = make_preview(
            clip.encoded_data, self.fps, self.height, self.max_frames
        )


def thumbnail_jpeg(uri: str, height: int = 72) -> bytes:
    """The first frame of a clip file (local path or fsspec URL) as a small JPEG, upright."""
    import fsspec

    with fsspec.open(uri, "rb") as handle, av.open(handle) as container:
        stream = container.streams.video[0]
        frame = next(container.decode(stream))
        width = max(2, round(frame.width * height / frame.height))
        img = frame.to_image(width=width, height=height)
        if frame.rotation:
            img = img.rotate(frame.rotation, expand=True)
        out = io.BytesIO()
        img.save(out, format="JPEG", quality=70)
        return out.getvalue()
