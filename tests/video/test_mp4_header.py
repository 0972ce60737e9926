"""The MP4 header reader agrees with PyAV's (decoding) probe on synthetic and real files."""

from __future__ import annotations

import av
import pytest

from curator_core.video.mp4_header import video_track_info


def _pyav(path) -> dict:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return {
            "fps": float(stream.average_rate),
            "width": stream.codec_context.width,
            "height": stream.codec_context.height,
            "num_frames": stream.frames,
            "codec": stream.codec_context.name,
        }


def _agree(path) -> None:
    ours, theirs = video_track_info(path.read_bytes()), _pyav(path)
    assert ours is not None, path
    assert ours["fps"] == pytest.approx(theirs["fps"], rel=1e-3)
    assert {k: ours[k] for k in ("width", "height", "num_frames", "codec")} == {
        k: theirs[k] for k in ("width", "height", "num_frames", "codec")
    }


def test_header_facts_match_pyav_on_synthetic_videos(three_shots, rotated_video, anamorphic_video):
    for path in (three_shots, rotated_video, anamorphic_video):
        _agree(path)


def test_header_facts_match_pyav_on_the_shared_real_videos(shared_videos):
    mp4s = [p for p in sorted(shared_videos.glob("*.mp4")) if "corrupt" not in p.name]
    assert mp4s
    for path in mp4s:
        _agree(path)


def test_what_is_not_an_mp4_gives_none(bad_inputs):
    assert video_track_info(b"") is None
    assert video_track_info(b"not a video at all" * 10) is None
    assert video_track_info(bad_inputs["text"].read_bytes()) is None
