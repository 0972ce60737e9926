import fsspec
import pytest

from curator_core.video.io import VideoInputError, list_videos, probe


def test_probe_reads_vfr_and_rotation_from_real_files(shared_videos):
    vfr = probe(str(shared_videos / "goldeneye_vfr_drop3.mp4"))
    assert vfr.is_vfr and vfr.num_frames == 160 and vfr.width == 1280 and vfr.height == 544
    rotated = probe(str(shared_videos / "goldeneye_rotate_m90.mp4"))
    assert rotated.rotation_deg == -90 and not rotated.is_vfr and rotated.audio_codec == "aac"
    assert rotated.display_size == (544, 1280)
    webm = probe(str(shared_videos / "big_buck_bunny_0_30.webm"))
    assert webm.video_codec == "vp8" and webm.audio_codec == "vorbis" and abs(webm.duration_s - 30.0) < 0.1


def test_probe_of_synthetic_video_is_exact(three_shots):
    meta = probe(str(three_shots))
    assert (meta.width, meta.height, meta.num_frames) == (320, 180, 144)
    assert meta.avg_fps == pytest.approx(24.0) and meta.duration_s == pytest.approx(6.0, abs=0.05)
    assert meta.pixel_format == "yuv420p" and meta.bit_depth == 8 and meta.size_bytes > 0


@pytest.mark.parametrize(
    "name, reason",
    [
        ("empty", "empty file"),
        ("text", "not a readable media file"),
        ("audio_only", "no video stream"),
        ("unsupported", "unsupported video codec|no video stream|does not decode|not a readable"),
    ],
)
def test_bad_inputs_raise_a_clear_reason(bad_inputs, name, reason):
    with pytest.raises(VideoInputError, match=reason):
        probe(str(bad_inputs[name]))


def test_listing_filters_extensions_and_handles_odd_names(bad_inputs):
    folder = bad_inputs["good"].parent
    found = list_videos(str(folder))
    assert str(bad_inputs["good"]) in found and str(bad_inputs["audio_only"]) not in found
    assert list_videos(str(folder), extensions=(".m4a",)) == [str(bad_inputs["audio_only"])]
    assert len(list_videos(str(folder), limit=2)) == 2


def test_fsspec_memory_urls_are_listed_and_probed_by_streaming(three_shots):
    fs = fsspec.filesystem("memory")
    fs.pipe("/landing/batch/a.mp4", three_shots.read_bytes())
    [uri] = list_videos("memory://landing")
    assert uri.startswith("memory://") and uri.endswith("/landing/batch/a.mp4")
    assert probe(uri).num_frames == 144
