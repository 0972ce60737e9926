import pytest

from curator_core.tasks import Video, VideoTask
from curator_core.video.reader import VideoReaderStage
from curator_core.video.shots import Transition
from curator_core.video.splitting import (
    FixedStrideSplittingStage,
    ShotSplittingStage,
    fixed_stride_spans,
    shot_spans,
)


def test_fixed_stride_spans_are_exact():
    assert fixed_stride_spans(25.0, 10, 10, 2) == [(0.0, 10.0), (10.0, 20.0), (20.0, 25.0)]
    assert fixed_stride_spans(21.0, 10, 10, 2) == [(0.0, 10.0), (10.0, 20.0)]  # 1 s tail dropped
    assert fixed_stride_spans(20.0, 10, 5, 2) == [(0.0, 10.0), (5.0, 15.0), (10.0, 20.0), (15.0, 20.0)]
    assert fixed_stride_spans(100.0, 10, 10, 2, limit_clips=3) == [(0.0, 10.0), (10.0, 20.0), (20.0, 30.0)]


def test_fixed_stride_stage_uses_probed_duration(three_shots):
    task = VideoReaderStage().process(VideoTask(dataset_name="d", data=Video(input_path=str(three_shots))))
    FixedStrideSplittingStage(clip_len_s=2.5, clip_stride_s=2.5, min_clip_length_s=1.0).process(task)
    assert [c.span for c in task.data.clips] == [(0.0, 2.5), (2.5, 5.0), (5.0, 6.0)]


def test_shot_spans_exclude_gradual_transitions_and_apply_limits():
    transitions = [
        Transition("hard", 48, 48, 2.0, 2.0, 1.0),
        Transition("gradual", 100, 110, 4.0, 4.5, 0.9),
    ]
    assert shot_spans(transitions, 10.0, 0.5, None, "stride", 0.0) == [(0.0, 2.0), (2.0, 4.0), (4.5, 10.0)]
    assert shot_spans(transitions, 10.0, 0.5, 3.0, "truncate", 0.0) == [(0.0, 2.0), (2.0, 4.0), (4.5, 7.5)]
    assert shot_spans(transitions, 10.0, 0.5, 3.0, "stride", 0.0) == [
        (0.0, 2.0),
        (2.0, 4.0),
        (4.5, 7.5),
        (7.5, 10.0),
    ]
    assert shot_spans(transitions, 10.0, 0.5, None, "stride", 0.25) == [
        (0.25, 1.75),
        (2.25, 3.75),
        (4.75, 9.75),
    ]


def test_shot_splitting_cuts_synthetic_video_at_its_cuts(three_shots):
    task = VideoReaderStage().process(VideoTask(dataset_name="d", data=Video(input_path=str(three_shots))))
    ShotSplittingStage(min_length_s=1.0).process(task)
    assert [c.span for c in task.data.clips] == [(0.0, 2.0), (2.0, 4.0), (4.0, 6.0)]


def test_max_length_mode_is_validated():
    with pytest.raises(ValueError, match="max_length_mode"):
        ShotSplittingStage(max_length_mode="chop")


def test_the_shot_detector_option_picks_the_detector(tmp_path):
    """`--detector` / `shot_detector` reaches the splitting stage of `curator run` and the assets."""
    from curator_core.video.options import CurationOptions
    from curator_core.video.pipelines import split_pipeline
    from curator_core.video.shots import ContentShotDetector, HybridShotDetector

    def detector(**options):
        pipeline = split_pipeline(["in"], str(tmp_path), CurationOptions(**options))
        (stage,) = [s for s in pipeline.stages if isinstance(s, ShotSplittingStage)]
        return type(stage.detector)

    assert detector() is ContentShotDetector
    assert detector(shot_detector="hybrid") is HybridShotDetector
    with pytest.raises(ValueError):
        CurationOptions(shot_detector="nope")
