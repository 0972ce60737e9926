import ctypes
import hashlib
import io

import av
import pytest

from curator_core.tasks import Clip, Video, VideoTask
from curator_core.video.reader import BATCH_CPUS, BATCH_VIDEOS, VideoReaderStage
from curator_core.video.splitting import FixedStrideSplittingStage
from curator_core.video.transcoding import ClipEncodeStage, VideoSegmentingStage
from tests.fixtures_video import decode_all


def _transcoded(path, clip_len=2.0, stride=None, **encode):
    task = VideoReaderStage().process(VideoTask(dataset_name="d", data=Video(input_path=str(path))))
    FixedStrideSplittingStage(
        clip_len_s=clip_len, clip_stride_s=stride or clip_len, min_clip_length_s=0.5
    ).process(task)
    return ClipEncodeStage(**encode).process(task)


def test_every_clip_decodes_and_lasts_its_span_within_one_frame(three_shots):
    task = _transcoded(three_shots, clip_len=1.5)
    assert [c.span for c in task.data.clips] == [(0.0, 1.5), (1.5, 3.0), (3.0, 4.5), (4.5, 6.0)]
    for clip in task.data.clips:
        frames, stream = decode_all(clip.encoded_data)
        assert len(frames) == 36
        duration = float((frames[-1].pts - frames[0].pts) * stream.time_base) + 1 / 24
        assert abs(duration - clip.duration_s) <= 1 / 24 + 1e-6
        assert stream.codec_context.name == "h264"


def test_clip_starts_are_frame_accurate_not_keyframe_snapped(three_shots):
    # Clip starting at 2.0 s = frame 48, the first frame of the green shot; the source GOP is 48 frames,
    # so a keyframe-snapped cut would start 2 s early.
    task = VideoReaderStage().process(VideoTask(dataset_name="d", data=Video(input_path=str(three_shots))))
    task.data.clips = [
        Clip(source=str(three_shots), span=(2.0, 3.0)),
        Clip(source=str(three_shots), span=(2.5, 3.5)),
    ]
    ClipEncodeStage().process(task)
    first, _ = decode_all(task.data.clips[0].encoded_data)
    rgb = first[0].to_ndarray(format="rgb24").astype(int)
    assert rgb[..., 1].mean() > rgb[..., 0].mean() + 50  # green shot, not the red one before it
    assert len(first) == 24 and len(decode_all(task.data.clips[1].encoded_data)[0]) == 24  # overlapping clips


def test_rotated_video_clips_keep_display_orientation(rotated_video, shared_videos):
    task = _transcoded(rotated_video, clip_len=1.0)
    frames, stream = decode_all(task.data.clips[0].encoded_data)
    assert frames[0].rotation == -90 and (stream.width, stream.height) == (320, 180)
    real = _transcoded(shared_videos / "phone_fire_vfr_rot180.mp4", clip_len=1.0)
    assert decode_all(real.data.clips[0].encoded_data)[0][0].rotation in (-180, 180)


def test_sample_aspect_ratio_is_carried(anamorphic_video):
    task = _transcoded(anamorphic_video, clip_len=1.0)
    _, stream = decode_all(task.data.clips[0].encoded_data)
    sar = stream.codec_context.sample_aspect_ratio or stream.sample_aspect_ratio
    assert (sar.numerator, sar.denominator) == (4, 3)


def test_target_height_and_fps(three_shots):
    task = _transcoded(three_shots, clip_len=2.0, target_height=90, target_fps=12)
    frames, stream = decode_all(task.data.clips[0].encoded_data)
    assert (stream.width, stream.height) == (160, 90) and len(frames) == 24


def test_other_encoders(three_shots):
    for encoder, codec in (("mpeg4", "mpeg4"), ("libvpx-vp9", "vp9")):
        task = _transcoded(three_shots, clip_len=3.0, encoder=encoder, bitrate="1M")
        _, stream = decode_all(task.data.clips[0].encoded_data)
        assert stream.codec_context.name == codec


def test_vfr_clips_keep_their_frames(shared_videos):
    task = _transcoded(shared_videos / "goldeneye_vfr_drop3.mp4", clip_len=2.5)
    total = sum(len(decode_all(c.encoded_data)[0]) for c in task.data.clips)
    assert total == 160


def test_segments_spread_a_long_video_and_decode_once_each(three_shots):
    task = VideoReaderStage().process(VideoTask(dataset_name="d", data=Video(input_path=str(three_shots))))
    FixedStrideSplittingStage(clip_len_s=1.0, clip_stride_s=1.0, min_clip_length_s=0.5).process(task)
    segments = VideoSegmentingStage(segment_s=2.0).process(task)
    assert [len(s.data.clips) for s in segments] == [2, 2, 2]
    assert [s.data.segment for s in segments] == [(0, 3), (1, 3), (2, 3)]
    for seg in segments:
        ClipEncodeStage().process(seg)
        assert all(len(decode_all(c.encoded_data)[0]) == 24 for c in seg.data.clips)


@pytest.mark.parametrize(
    ("videos", "cpus", "minutes", "segments"),
    [
        (2, 2, 1, [2, 2, 2]),  # 4 segments of 30 s for 2 encoders: the last wave would run alone
        (4, 2, 1, [3, 3]),  # 8 of 30 s: enough already
        (1, 16, 1, [1] * 6),  # one video, many CPUs: 10 s each, no shorter
        (10_000, 200, 2, [3, 3, 3, 3]),  # a large batch keeps 30 s
    ],
)
def test_a_small_batch_gets_shorter_segments(videos, cpus, minutes, segments):
    clips = [Clip(source="v.mp4", span=(s, s + 10.0)) for s in range(0, 60 * minutes, 10)]
    batch = {BATCH_VIDEOS: videos, BATCH_CPUS: float(cpus)}
    task = VideoTask(dataset_name="d", data=Video(input_path="v.mp4", clips=clips), metadata=batch)
    assert [len(t.data.clips) for t in VideoSegmentingStage().process(task)] == segments
    del task.metadata[BATCH_VIDEOS]  # a task from no listing keeps 30 s
    assert [len(t.data.clips) for t in VideoSegmentingStage().process(task)] == [3] * (2 * minutes)


def test_corrupt_h264_keeps_the_frames_that_decoded(shared_videos):
    task = _transcoded(shared_videos / "corrupted_h264.mp4", clip_len=2.0)
    assert "decode" in task.data.errors
    assert task.data.clips, "frames decoded before the damage must still yield a clip"
    assert all(len(decode_all(c.encoded_data)[0]) > 0 for c in task.data.clips)


def test_audio_is_carried_when_asked(shared_videos):
    for name in ("goldeneye_rotate_m90.mp4", "chaplin_single_shot.mp4"):  # aac and mp3 sources
        task = _transcoded(shared_videos / name, clip_len=3.0, include_audio=True)
        for clip in task.data.clips[:2]:
            with av.open(io.BytesIO(clip.encoded_data)) as container:
                assert container.streams.audio, f"{name}: clip has no audio stream"
                audio = container.streams.audio[0]
                samples = sum(f.samples for f in container.decode(audio))
                seconds = samples / audio.codec_context.sample_rate
                assert abs(seconds - clip.duration_s) < 0.1, (name, seconds, clip.duration_s)
            assert len(decode_all(clip.encoded_data)[0]) >= 70  # ~3 s of 24-25 fps video alongside
    silent = _transcoded(shared_videos / "goldeneye_rotate_m90.mp4", clip_len=3.0)
    assert not av.open(io.BytesIO(silent.data.clips[0].encoded_data)).streams.audio


def _dirty_heap(value: int) -> None:
    """Leave freed heap chunks holding `value`, as another task's work would leave them."""
    libc = ctypes.CDLL(None)
    libc.malloc.restype, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_void_p]
    chunks = [libc.malloc(300_000) for _ in range(20)]
    for chunk in chunks:
        ctypes.memset(chunk, value, 300_000)
    for chunk in chunks:
        libc.free(chunk)


def test_the_same_clip_is_the_same_bytes_whatever_the_heap_held(three_shots):
    """libx264 reads memory it never wrote at 320x180 (not a multiple of 16): without video.heap, 4 heaps
    left with other bytes gave 4 different files for one clip."""
    made = set()
    for value in (3, 53, 103, 153):
        _dirty_heap(value)
        made.add(tuple(hashlib.sha256(c.encoded_data).digest() for c in _transcoded(three_shots).data.clips))
    assert len(made) == 1
