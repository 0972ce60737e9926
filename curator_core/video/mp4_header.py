"""The facts of an MP4's first video track read from its header boxes, without decoding.

Opening a container with PyAV runs FFmpeg's stream analysis, which decodes frames: measured 2.2 ms for a
640x360 clip and 7 ms at 720p, more than everything else a shard writer does per sample. The header has
what a sample's metadata needs: the coded size (stsd), the frame count (stsz), the time scale (mdhd)
and the frame durations (stts). Anything that is not a plain MP4/MOV with a video track returns None,
and callers fall back to PyAV.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator

CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl"}
CODECS = {b"avc1": "h264", b"avc3": "h264", b"hev1": "hevc", b"hvc1": "hevc", b"vp09": "vp9",
          b"av01": "av1", b"mp4v": "mpeg4"}  # fmt: skip


def _boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of the boxes between start and end."""
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            (size,) = struct.unpack_from(">Q", data, pos + 8)
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            return
        yield kind, pos + header, pos + size
        pos += size


def _find(data: bytes, start: int, end: int, kind: bytes) -> tuple[int, int] | None:
    return next(((s, e) for k, s, e in _boxes(data, start, end) if k == kind), None)


def video_track_info(data: bytes) -> dict | None:
    """{"fps", "width", "height", "num_frames", "codec"} of the first video track, or None."""
    moov = _find(data, 0, len(data), b"moov")
    if moov is None:
        return None
    for kind, start, end in _boxes(data, *moov):
        if kind != b"trak":
            continue
        mdia = _find(data, start, end, b"mdia")
        hdlr = mdia and _find(data, *mdia, b"hdlr")
        if not hdlr or data[hdlr[0] + 8 : hdlr[0] + 12] != b"vide":
            continue
        mdhd = _find(data, *mdia, b"mdhd")
        minf = _find(data, *mdia, b"minf")
        stbl = minf and _find(data, *minf, b"stbl")
        if not (mdhd and stbl):
            return None
        version = data[mdhd[0]]
        timescale = struct.unpack_from(">I", data, mdhd[0] + (20 if version == 1 else 12))[0]
        boxes = {k: (s, e) for k, s, e in _boxes(data, *stbl)}
        if not {b"stsd", b"stsz", b"stts"} <= set(boxes):
            return None
        entry = boxes[b"stsd"][0] + 8  # version/flags, entry count, then the first sample entry
        codec = data[entry + 4 : entry + 8]
        width, height = struct.unpack_from(">HH", data, entry + 32)
        frames = struct.unpack_from(">I", data, boxes[b"stsz"][0] + 8)[0]
        stts = boxes[b"stts"][0]
        (entries,) = struct.unpack_from(">I", data, stts + 4)
        ticks = sum(
            count * delta
            for count, delta in struct.iter_unpack(">II", data[stts + 8 : stts + 8 + 8 * entries])
        )
        fps = round(frames * timescale / ticks, 6) if ticks and timescale else None
        name = CODECS.get(codec, codec.decode("latin-1").strip())
        return {"fps": fps, "width": width, "height": height, "num_frames": frames or None, "codec": name}
    return None


def with_display_rotation(data: bytes, degrees: int) -> bytes:
    """The MP4 with its first track's display matrix (tkhd) set to a counter-clockwise rotation of
    `degrees`, the matrix FFmpeg writes for the same rotation. For streams muxed without a codec context,
    whose display matrix PyAV does not pass to the muxer (PyAV 18)."""
    moov = _find(data, 0, len(data), b"moov")
    trak = moov and _find(data, *moov, b"trak")
    tkhd = trak and _find(data, *trak, b"tkhd")
    if not tkhd:
        raise ValueError("not an MP4 with a track header")
    matrix_at = tkhd[0] + (52 if data[tkhd[0]] == 1 else 40)  # after version 1's or version 0's fields
    radians = math.radians(degrees)
    cos, sin = round(math.cos(radians) * 65536), round(math.sin(radians) * 65536)
    matrix = struct.pack(">9i", cos, -sin, 0, sin, cos, 0, 0, 0, 1 << 30)
    return data[:matrix_at] + matrix + data[matrix_at + 36 :]
