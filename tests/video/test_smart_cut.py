"""Smart cut (issue #21) on real x264 sources made with PyAV: clips that copy the source's GOPs decode to
the same frames as a full re-encode, bit for bit where copied, and anything that does not fit is
re-encoded in full with the reason."""

from __future__ import annotations

import io
from fractions import Fraction

import av
import numpy as np
import pytest

from curator_core.tasks import Clip, Video, VideoTask
from curator_core.video.reader import VideoReaderStage
from curator_core.video.samples import encode_frames
from curator_core.video.smart_cut import REENCODE, SMART_CUT
from curator_core.video.transcoding import ClipEncodeStage

FPS, GOP = 24, 24  # a keyframe every second
WIDTH, HEIGHT = 192, 108
SOURCE_OPTIONS = {"g": str(GOP), "preset": "veryfast", "crf": "23", "sc_threshold": "0"}  # High, B-frames


def _frames(count: int):
    rng = np.random.default_rng(3)
    wide = rng.integers(0, 255, size=(HEIGHT, WIDTH * 3, 3), dtype=np.uint8)
    for i in range(count):
        x = (i * 2) % (WIDTH * 2)
        yield np.ascontiguousarray(wide[:, x : x + WIDTH])


def _source(path, seconds: float = 6.0, options=None, setup=None):
    return encode_frames(path, _frames(round(seconds * FPS)), WIDTH, HEIGHT, FPS, "libx264",
                         options or SOURCE_OPTIONS, setup)  # fmt: skip


@pytest.fixture(scope="module")
def fitting(tmp_path_factory):
    return _source(tmp_path_factory.mktemp("smart") / "fits.mp4")


def _cut(path, spans, **stage):
    task = VideoReaderStage().process(VideoTask(dataset_name="d", data=Video(input_path=str(path))))
    task.data.clips = [Clip(source=str(path), span=span) for span in spans]
    ClipEncodeStage(**stage).process(task)
    return task.data.clips


def _decoded(data: bytes):
    """[(time in the clip, luma)] of an MP4, its stream duration (s), its frames' rotation and its SAR."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        duration = float(stream.duration * stream.time_base)
        sar = stream.codec_context.sample_aspect_ratio or stream.sample_aspect_ratio
    decoded = [
        (round(float(f.pts * f.time_base), 4), f.to_ndarray(format="gray").astype(float)) for f in frames
    ]
    return decoded, duration, frames[0].rotation, sar


def _source_frames(path):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return {round(float(f.pts * f.time_base), 4): f.to_ndarray(format="gray").astype(float)
                for f in container.decode(stream)}  # fmt: skip


def _at(source: dict, clip: Clip, t: float):
    """The source frame shown `t` seconds into the clip."""
    return source[min(source, key=lambda s: abs(s - clip.span[0] - t))]


def _psnr(a, b) -> float:
    error = float(np.mean((a - b) ** 2))
    return float("inf") if error == 0 else 10 * np.log10(255**2 / error)


def test_clips_copy_whole_gops_and_decode_to_the_frames_of_a_full_reencode(fitting):
    # On keyframes both ends; start off one; both off; to the stream's end; a start and end inside GOPs.
    spans = [(1.0, 3.0), (0.5, 3.0), (0.5, 3.4), (2.3, 6.0), (1.25, 4.75)]
    smart, full = _cut(fitting, spans), _cut(fitting, spans, smart_cut=False)
    source = _source_frames(fitting)
    for made, ref in zip(smart, full, strict=True):
        assert made.metadata["encoding"] == SMART_CUT, made.metadata
        assert ref.metadata == {**ref.metadata, "encoding": REENCODE, "encoding_reason": "smart cut is off"}
        frames, duration, _, _ = _decoded(made.encoded_data)
        ref_frames, ref_duration, _, _ = _decoded(ref.encoded_data)
        assert [p for p, _ in frames] == [p for p, _ in ref_frames]  # the same frames, first to last
        assert abs(duration - made.duration_s) <= 1 / FPS + 1e-6 and duration == ref_duration
        assert made.metadata["num_frames"] == len(frames)
        quality = [_psnr(img, _at(source, made, t)) for t, img in frames]
        copied = [q for q in quality if q == float("inf")]  # bit for bit the source's decoded frames
        reencoded = [q for q in quality if q != float("inf")]
        whole_gops = sum(
            1 for k in range(0, 6 * FPS, GOP) if made.span[0] <= k / FPS and (k + GOP) / FPS <= made.span[1]
        )
        assert len(copied) == whole_gops * GOP, (made.span, len(copied))
        ref_quality = [_psnr(img, _at(source, ref, t)) for t, img in ref_frames]
        if reencoded:  # the frames around the cuts: no worse than a full re-encode at the same crf
            cut_frames = [r for q, r in zip(quality, ref_quality, strict=True) if q != float("inf")]
            assert np.mean(reencoded) >= np.mean(cut_frames) - 0.5, (
                made.span,
                np.mean(reencoded),
                np.mean(cut_frames),
            )


def test_the_avcc_holds_both_parts_parameter_sets(fitting):
    (made,) = _cut(fitting, [(0.5, 2.5)])
    with av.open(io.BytesIO(made.encoded_data)) as container:
        extradata = bytes(container.streams.video[0].codec_context.extradata)
    assert extradata[0] == 1 and extradata[5] & 0x1F == 2  # avcC with two SPS: the source's and ours


def test_what_does_not_fit_is_reencoded_in_full_with_the_reason(tmp_path, fitting):
    baseline = _source(tmp_path / "baseline.mp4", 3.0, {"g": str(GOP), "preset": "ultrafast"})
    (clip,) = _cut(baseline, [(0.0, 2.0)])
    assert clip.metadata["encoding"] == REENCODE and "profile" in clip.metadata["encoding_reason"]
    cases = {
        "height": ([(0.0, 2.0)], {"target_height": 54}),
        "frame rate": ([(0.0, 2.0)], {"target_fps": 12}),
        "no whole GOP": ([(1.2, 1.8)], {}),
        "audio": ([(0.0, 2.0)], {"include_audio": True}),
        "bitrate": ([(0.0, 2.0)], {"bitrate": "1M"}),
    }
    for words, (spans, stage) in cases.items():
        (clip,) = _cut(fitting, spans, **stage)
        assert clip.metadata["encoding"] == REENCODE and words in clip.metadata["encoding_reason"], (
            words,
            clip.metadata,
        )
        assert clip.encoded_data and _decoded(clip.encoded_data)[0]


def test_variable_frame_rate_and_open_gops_are_reencoded(tmp_path):
    vfr = tmp_path / "vfr.mp4"
    with av.open(str(vfr), "w") as container:  # every third frame dropped: 1- and 2-frame steps
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = SOURCE_OPTIONS
        stream.codec_context.time_base = Fraction(1, FPS)
        kept = [i for i in range(4 * FPS) if i % 3 != 2]
        for pts, img in zip(kept, _frames(len(kept)), strict=True):
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = pts
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    (clip,) = _cut(vfr, [(0.0, 3.0)])
    assert clip.metadata["encoding"] == REENCODE and "variable frame rate" in clip.metadata["encoding_reason"]
    open_gop = _source(tmp_path / "open.mp4", 4.0, {**SOURCE_OPTIONS, "x264-params": "open-gop=1"})
    clips = _cut(open_gop, [(0.5, 3.5)])
    assert clips[0].metadata["encoding"] == REENCODE, clips[0].metadata
    assert len(_decoded(clips[0].encoded_data)[0]) == 3 * FPS


def test_rotation_and_sample_aspect_ratio_are_carried(tmp_path):
    def setup(stream):
        stream.codec_context.sample_aspect_ratio = Fraction(4, 3)
        stream.set_display_rotation(-90)

    path = _source(tmp_path / "rotated.mp4", 3.0, setup=setup)
    (clip,) = _cut(path, [(0.5, 3.0)])
    assert clip.metadata["encoding"] == SMART_CUT, clip.metadata
    frames, _, rotation, sar = _decoded(clip.encoded_data)
    assert rotation == -90 and (sar.numerator, sar.denominator) == (4, 3) and len(frames) == 60


PLAY = """async (url) => {
  const v = document.createElement('video');
  v.muted = true;
  document.body.appendChild(v);
  const ended = new Promise((resolve) => { v.onended = () => resolve('ended'); v.onerror = () => resolve('error'); });
  v.src = url;
  await v.play().catch((e) => null);
  const how = await Promise.race([ended, new Promise((r) => setTimeout(() => r('timeout'), 20000))]);
  const q = v.getVideoPlaybackQuality();
  return {how, error: v.error && v.error.message, duration: v.duration, width: v.videoWidth,
          frames: q.totalVideoFrames, dropped: q.droppedVideoFrames, corrupted: q.corruptedVideoFrames || 0};
}"""


def test_a_smart_cut_clip_plays_to_its_end_in_chromium(fitting, browser, tmp_path):
    (clip,) = _cut(fitting, [(0.5, 3.4)])  # a re-encoded head and tail around copied GOPs
    assert clip.metadata["encoding"] == SMART_CUT
    (tmp_path / "clip.mp4").write_bytes(clip.encoded_data)
    (tmp_path / "index.html").write_text("<html><body></body></html>")
    page = browser.new_page()
    try:
        page.goto((tmp_path / "index.html").as_uri())
        result = page.evaluate(PLAY, (tmp_path / "clip.mp4").as_uri())
    finally:
        page.close()
    assert result["how"] == "ended" and not result["error"], result
    assert abs(result["duration"] - clip.duration_s) <= 1 / FPS + 1e-3 and result["width"] == WIDTH, result
    assert result["corrupted"] == 0 and result["frames"] == clip.metadata["num_frames"], result


def test_a_damaged_gop_is_not_copied_the_full_encoder_skips_the_damage(tmp_path):
    whole = _source(tmp_path / "whole.mp4", 8.0)
    data = bytearray(whole.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 6000] = np.random.default_rng(1).integers(0, 256, 6000, dtype=np.uint8).tobytes()
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(bytes(data))
    spans = [(0.0, 2.0), (2.0, 4.0), (4.0, 6.0), (6.0, 8.0)]
    clips = _cut(damaged, spans)  # nothing decoded the stream before: smart cut decodes what it copies
    paths = [c.metadata["encoding"] for c in clips]
    assert SMART_CUT in paths and REENCODE in paths, [c.metadata for c in clips]
    for clip in clips:
        if clip.metadata["encoding"] == REENCODE:
            assert "decode" in clip.metadata["encoding_reason"], clip.metadata
    clean = {c.span: c for c in _cut(whole, spans)}
    for clip in clips:  # the copied clips hold exactly the undamaged source's frames
        if clip.metadata["encoding"] == SMART_CUT:
            assert clip.encoded_data == clean[clip.span].encoded_data
