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

from curator_core.listing import find_files
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
            matches = fs.glob(f"{escape_glob(path.rstrip('/'))}/{glob}", detail=True)
            found = [p for p, info in matches.items() if info.get("type") != "directory"]
        else:
            found = list(find_files(fs, path, recursive))
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


HASH_SAMPLE_BYTES = 1 << 20


def content_hash(uri: str) -> str:
    """sha256 of the size and the first and last MiB: identifies a file's content without reading
    gigabytes (a change in the middle only is not seen; full hashes belong in the ingest system)."""
    fs, path = fsspec.core.url_to_fs(uri)
    size = int(fs.size(path) or 0)
    digest = hashlib.sha256(str(size).encode())
    with fs.open(path, "rb") as handle:
        digest.update(handle.read(HASH_SAMPLE_BYTES))
        if size > 2 * HASH_SAMPLE_BYTES:
            handle.seek(size - HASH_SAMPLE_BYTES)
            digest.update(handle.read(HASH_SAMPLE_BYTES))
    return digest.hexdigest()[:32]


def safe_content_hash(uri: str) -> str | None:
    try:
        return content_hash(uri)
    except (OSError, ValueError):
        return None


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


IMAGE_FORMATS_SUFFIX = "_pipe"  # FFmpeg's demuxers of single images: png_pipe, jpeg_pipe, webp_pipe, ...
NOT_MOTION = (
    av.stream.Disposition.attached_pic
    | av.stream.Disposition.still_image
    | av.stream.Disposition.timed_thumbnails
)


def _stream_seconds(stream: av.video.stream.VideoStream) -> float:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    rate = stream.average_rate or stream.guessed_rate
    return float(stream.frames / rate) if stream.frames and rate else 0.0


def video_stream(container: av.container.InputContainer, uri: str) -> av.video.stream.VideoStream:
    """The video stream every stage reads: the longest moving-picture stream (cover art and thumbnail
    streams are not video), the default one among equals. One rule, so probing, shot detection and
    encoding all read the same stream."""
    streams = [s for s in container.streams.video if not (s.disposition & NOT_MOTION)]
    if not streams:
        kinds = sorted({s.type for s in container.streams}) or ["none"]
        what = "only cover art / still pictures" if container.streams.video else "audio-only?"
        raise VideoInputError(f"no video stream (streams: {', '.join(kinds)}; {what})", uri)
    stream = max(
        streams,
        key=lambda s: (_stream_seconds(s), bool(s.disposition & av.stream.Disposition.default), -s.index),
    )
    if stream.codec_context is None or not stream.codec_context.name:
        raise VideoInputError("unsupported video codec (no decoder in this FFmpeg build)", uri)
    return stream


class Damage:
    """What a damage-tolerant decode skipped: packets the decoder refused, and the gaps (PTS seconds)
    they left between the last frame before and the first frame after."""

    def __init__(self) -> None:
        self.bad_packets = 0
        self.first_error: str | None = None
        self.gaps: list[tuple[float, float]] = []
        self.stopped: str | None = None  # why reading ended before the end of the file, if it did
        self._open_since: float | None = None  # the PTS of the last good frame before pending damage
        self._last_t: float | None = None
        self._step: float | None = None  # the shortest frame interval seen: a frame's duration

    def decode(self, packet: av.Packet) -> list:
        """The packet's frames, or none when it does not decode (counted; decoding goes on)."""
        try:
            return packet.decode()
        except av.error.FFmpegError as exc:
            self.bad_packets += 1
            self.first_error = self.first_error or f"{type(exc).__name__}: {exc.strerror or exc}"
            if self._open_since is None:
                self._open_since = self._last_t if self._last_t is not None else -1.0
            return []

    def frame_at(self, t: float) -> tuple[float, float] | None:
        """Note a decoded frame's PTS (in PTS order); returns the gap it closes when frames were lost
        before it: (where the last good frame ends, `t`)."""
        gap = None
        last = self._last_t
        if last is not None and t > last:
            self._step = min(self._step or t - last, t - last)
        if self._open_since is not None:
            since = self._open_since
            self._open_since = None
            end = since + (self._step or 0.0) if since >= 0 else 0.0
            if t - end > 1e-6:  # a refused packet that cost no frame leaves no gap
                gap = (end, t)
                self.gaps.append(gap)
        self._last_t = t if last is None else max(last, t)
        return gap

    def summary(self, frames_decoded: int, frames_expected: int | None = None) -> str | None:
        """What was lost, in words for the video's report; None when nothing was."""
        parts = []
        if self.bad_packets:
            spans = ", ".join(f"{a:.2f}-{b:.2f} s" for a, b in self.gaps[:5])
            parts.append(
                f"{self.bad_packets} undecodable packets skipped"
                + (f" (frames lost at {spans}{' ...' if len(self.gaps) > 5 else ''})" if spans else "")
                + (f", first: {self.first_error}" if self.first_error else "")
            )
        if self.stopped:
            parts.append(self.stopped)
        if not parts:
            return None
        counted = f"{frames_decoded} of {frames_expected}" if frames_expected else f"{frames_decoded}"
        return f"the stream is damaged: {counted} frames decoded; " + "; ".join(parts)


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
        if container.format.name.endswith(IMAGE_FORMATS_SUFFIX) or container.format.name == "image2":
            raise VideoInputError(f"a still image ({container.format.name}), not a video", uri)
        rotation, decoded = 0, 0
        try:
            for frame in container.decode(stream):  # two frames: a single picture is not a video
                rotation = rotation if decoded else int(getattr(frame, "rotation", 0) or 0)
                decoded += 1
                if decoded == 2:
                    break
        except av.error.FFmpegError as exc:
            if not decoded:
                raise VideoInputError(
                    f"video stream does not decode ({type(exc).__name__}: {exc})", uri
                ) from exc
            decoded = 2  # damage after the first frame: decoding skips it later
        if not decoded:
            raise VideoInputError("video stream has no decodable frames", uri)
        if decoded == 1:
            raise VideoInputError("a single frame, not a video", uri)
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
