"""Finding inputs (local or any fsspec URL) and opening/probing them with PyAV, streaming.

Nothing here reads a whole file into memory: PyAV reads through a file object that fsspec opens
(local paths go to FFmpeg directly).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from collections.abc import Iterator
from fractions import Fraction
from glob import escape as escape_glob
from typing import IO

import av
import fsspec

from curator_core.tasks import VideoMetadata

logger = logging.getLogger(__name__)

DEFAULT_EXTENSIONS = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".ts", ".mpg", ".mpeg", ".flv", ".wmv")


class VideoInputError(Exception):
    """An input that cannot be used as a video. `reason` says why in words a user can act on; the message
    adds the file. Records that already name the file (a failure row's input) keep only the reason."""

    def __init__(self, reason: str, uri: str | None = None):
        super().__init__(f"{reason}: {uri}" if uri else reason)
        self.reason, self.uri = reason, uri


def resolve_inputs(inputs: list[str] | tuple[str, ...]) -> list[str]:
    """The inputs as the workers must see them, checked on the driver before a run starts: a local path
    made absolute (a worker runs in another directory, maybe on another machine), and every input one
    that exists (VideoInputError naming it otherwise)."""
    resolved = []
    for uri in inputs:
        if "://" not in uri:
            uri = os.path.abspath(uri)
        fs, path = fsspec.core.url_to_fs(uri)
        if not fs.exists(path):
            raise VideoInputError("no such file or folder", uri)
        resolved.append(uri)
    return resolved


def list_videos(
    root: str,
    recursive: bool = True,
    extensions: tuple[str, ...] = DEFAULT_EXTENSIONS,
    limit: int = 0,
    glob: str | None = None,
) -> list[str]:
    """Video files under `root` (a file, folder or fsspec URL), sorted, as URLs/paths to open later.

    A file named as `root` is taken whatever its extension (probing decides). A folder is listed with its
    name taken literally (brackets and stars in folder names are not patterns) and its files filtered by
    `extensions`; `glob` instead matches that pattern under it (e.g. "**/*.mov"), explicitly."""
    fs, path = fsspec.core.url_to_fs(root)
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    if fs.isfile(path):
        found = [path]
    else:
        if glob:
            found = [p for p in fs.glob(f"{escape_glob(path.rstrip('/'))}/{glob}") if fs.isfile(p)]
        else:
            found = fs.find(path, maxdepth=None if recursive else 1)
        exts = tuple(e.lower() for e in extensions)
        if exts and not glob:
            found = [p for p in found if p.lower().endswith(exts)]
    found = sorted(found)
    if limit:
        found = found[:limit]
    if protocol in ("file", "local"):
        return found
    return [fs.unstrip_protocol(p) for p in found]


@contextlib.contextmanager
def open_input(uri: str) -> Iterator[str | IO[bytes]]:
    """Something `av.open` accepts: a local path as is, otherwise a streaming fsspec file object."""
    fs, path = fsspec.core.url_to_fs(uri)
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    if protocol in ("file", "local"):
        yield path
        return
    with fs.open(path, "rb") as handle:
        yield handle


def size_bytes(uri: str) -> int:
    fs, path = fsspec.core.url_to_fs(uri)
    return int(fs.size(path) or 0)


def source_id(uri: str) -> str:
    """A stable id for an input URI, used in output names instead of user file names."""
    return hashlib.sha1(uri.encode()).hexdigest()[:16]


@contextlib.contextmanager
def open_container(uri: str, size: int | None = None) -> Iterator[av.container.InputContainer]:
    """Open a video with PyAV, turning FFmpeg's errors into a VideoInputError that says what is wrong.
    `size`: the file's size when the caller already knows it (saves a stat or HEAD request)."""
    if (size_bytes(uri) if size is None else size) == 0:
        raise VideoInputError("empty file (0 bytes)", uri)
    with open_input(uri) as source:
        try:
            container = av.open(source, mode="r", metadata_errors="ignore")
        except av.error.InvalidDataError as exc:
            raise VideoInputError(f"not a readable media file ({exc.strerror or exc})", uri) from exc
        except av.error.FFmpegError as exc:
            raise VideoInputError(f"cannot open as media ({type(exc).__name__}: {exc})", uri) from exc
        try:
            yield container
        finally:
            container.close()


def video_stream(container: av.container.InputContainer, uri: str) -> av.video.stream.VideoStream:
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams}) or ["none"]
        raise VideoInputError(f"no video stream (streams: {', '.join(kinds)}; audio-only?)", uri)
    stream = container.streams.video[0]
    if stream.codec_context is None or not stream.codec_context.name:
        raise VideoInputError("unsupported video codec (no decoder in this FFmpeg build)", uri)
    return stream


def probe(uri: str) -> VideoMetadata:
    """Read a video's metadata, decoding its first frame to learn the display rotation and to make sure
    the stream decodes at all."""
    size = size_bytes(uri)
    with open_container(uri, size) as container:
        stream = video_stream(container, uri)
        ctx = stream.codec_context
        time_base = stream.time_base or Fraction(1, 1)
        duration = None
        if stream.duration:
            duration = float(stream.duration * time_base)
        elif container.duration:
            duration = container.duration / av.time_base
        avg = stream.average_rate or stream.guessed_rate
        avg_fps = float(avg) if avg else None
        base = stream.base_rate or stream.guessed_rate
        # FFmpeg's base (r_frame_rate) is the finest rate that represents all timestamps; a stream whose
        # average rate differs from it has frames of unequal duration.
        is_vfr = bool(avg and base and abs(float(avg) - float(base)) / float(base) > 0.01)
        num_frames = int(stream.frames) if stream.frames else None
        if num_frames is None and duration and avg_fps:
            num_frames = round(duration * avg_fps)
        pix_fmt = ctx.pix_fmt
        bit_depth = None
        if pix_fmt:
            with contextlib.suppress(Exception):
                bit_depth = max(c.bits for c in av.VideoFormat(pix_fmt).components)
        sar = stream.sample_aspect_ratio or ctx.sample_aspect_ratio
        sar_tuple = (sar.numerator, sar.denominator) if sar and sar.numerator else (1, 1)
        audio = container.streams.audio[0].codec_context.name if container.streams.audio else None
        stream.thread_type = "AUTO"
        rotation = 0
        try:
            for frame in container.decode(stream):
                rotation = int(getattr(frame, "rotation", 0) or 0)
                break
            else:
                raise VideoInputError("video stream has no decodable frames", uri)
        except av.error.FFmpegError as exc:
            raise VideoInputError(f"video stream does not decode ({type(exc).__name__}: {exc})", uri) from exc
        return VideoMetadata(
            width=ctx.width or None,
            height=ctx.height or None,
            avg_fps=avg_fps,
            is_vfr=is_vfr,
            num_frames=num_frames,
            duration_s=duration,
            video_codec=ctx.name,
            pixel_format=pix_fmt,
            bit_depth=bit_depth,
            bit_rate_bps=int(stream.bit_rate or container.bit_rate or 0) or None,
            rotation_deg=rotation,
            sample_aspect_ratio=sar_tuple,
            audio_codec=audio,
            size_bytes=size,
        )
