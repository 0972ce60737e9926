import gc
import io

import av
from PIL import Image

from curator_core.tasks import FrameKey
from curator_core.video.frames import ClipFrameExtractionStage
from curator_core.video.motion import (
    GLOBAL,
    PATCH_MIN,
    MotionFilterStage,
    MotionScoringStage,
    motion_scores,
)
from curator_core.video.preview import PreviewStage
from tests.video.test_transcoding import _transcoded


def test_frame_extraction_counts_and_sizes(three_shots):
    task = _transcoded(three_shots, clip_len=2.0)
    keys = [FrameKey(fps=2.0, height=224, width=224), FrameKey(fps=24.0, height=90)]
    ClipFrameExtractionStage(keys=keys).process(task)
    for clip in task.data.clips:
        assert clip.extracted_frames[keys[0]].shape == (4, 224, 224, 3)
        assert clip.extracted_frames[keys[1]].shape == (48, 90, 160, 3)


def test_motion_ranks_a_static_clip_below_a_moving_one(static_video, moving_video):
    static = MotionScoringStage().process(_transcoded(static_video, clip_len=3.0))
    moving = MotionScoringStage().process(_transcoded(moving_video, clip_len=3.0))
    s, m = static.data.clips[0], moving.data.clips[0]
    assert s.scores[GLOBAL] < m.scores[GLOBAL] / 10
    assert s.scores[PATCH_MIN] <= m.scores[PATCH_MIN]
    assert m.metadata["motion_method"] == "motion_vectors"


def test_motion_scoring_does_not_keep_the_frames_it_read(moving_video):
    """Reading a frame's motion vectors ties the frame into a reference cycle: scored frames must not pile
    up until the next full collection (a worker grew to 1 GiB on 30 clips of 1080p), and freeing them
    must not scan the whole heap (in a worker with torch imported, 1.9 s of a 10 s clip's scoring)."""
    data = _transcoded(moving_video, clip_len=6.0).data.clips[0].encoded_data
    heap = [[] for _ in range(200_000)]  # a worker's imported libraries, as far as the collector sees
    scanned: list[int] = []

    def on_collection(phase, info):
        if phase == "start":
            scanned.append(len(gc.get_objects()))

    gc.collect()
    gc.disable()  # as in a busy worker, where full collections seldom run
    gc.callbacks.append(on_collection)
    try:
        motion_scores(data)
        alive = sum(isinstance(o, av.VideoFrame) for o in gc.get_objects())
    finally:
        gc.callbacks.remove(on_collection)
        gc.enable()
    assert alive == 0, alive  # 72 stayed alive before any collection was added
    assert scanned and max(scanned) < len(heap) / 10, max(scanned)  # the whole heap, with one every 30 frames
    assert gc.get_freeze_count() == 0  # the heap is collectable again


def test_motion_filter_moves_static_clips_out_unless_score_only(static_video, moving_video):
    task = MotionFilterStage(global_threshold=0.0001).process(_transcoded(static_video, clip_len=3.0))
    assert task.data.clips == [] and task.data.filtered_clips[0].metadata["filtered_by"] == "motion_filter"
    task = MotionFilterStage(global_threshold=0.0001, score_only=True).process(
        _transcoded(static_video, clip_len=3.0)
    )
    assert len(task.data.clips) == 1 and task.data.clips[0].metadata["motion_pass"] is False
    task = MotionFilterStage(global_threshold=0.0001).process(_transcoded(moving_video, clip_len=3.0))
    assert len(task.data.clips) == 1


def test_preview_is_a_small_animated_webp_in_display_orientation(moving_video, rotated_video):
    task = PreviewStage(fps=4, height=90).process(_transcoded(moving_video, clip_len=3.0))
    image = Image.open(io.BytesIO(task.data.clips[0].metadata["preview_webp"]))
    assert image.format == "WEBP" and image.size == (160, 90) and image.n_frames > 1
    task = PreviewStage(height=90).process(_transcoded(rotated_video, clip_len=1.0))
    image = Image.open(io.BytesIO(task.data.clips[0].metadata["preview_webp"]))
    assert image.size[1] > image.size[0]
