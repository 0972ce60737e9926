from dataclasses import dataclass

import numpy as np

from curator_core.tasks import Clip, FrameKey, Task, Video, VideoMetadata, VideoTask, clip_uuid


def test_user_task_subclass_without_fields_needs_no_task_id():
    @dataclass
    class NumTask(Task[int]):
        pass

    task = NumTask(dataset_name="d", data=1)
    assert task.data == 1 and task.task_id == "" and task.stage_perf == [] and task.metadata == {}


def test_clip_uuid_is_deterministic_from_source_and_span():
    a = Clip(source="s3://b/v.mp4", span=(1.0, 2.5))
    b = Clip(source="s3://b/v.mp4", span=(1.0, 2.5))
    c = Clip(source="s3://b/v.mp4", span=(1.0, 2.6))
    assert a.uuid == b.uuid == clip_uuid("s3://b/v.mp4", (1.0, 2.5))
    assert a.uuid != c.uuid
    assert a.duration_s == 1.5


def test_clip_data_is_generic_and_frame_keys_are_typed():
    clip = Clip(source="v", span=(0, 1))
    key = FrameKey(fps=2.0, height=224, width=224)
    clip.extracted_frames[key] = np.zeros((2, 224, 224, 3), np.uint8)
    clip.embeddings["open_clip/ViT-B-32"] = np.ones(512, np.float32)
    clip.scores["motion_global_mean"] = 0.3
    assert clip.extracted_frames[FrameKey(2.0, 224, 224)].shape[0] == 2
    assert str(key) == "fps2@224x224"


def test_display_size_applies_sar_then_rotation():
    meta = VideoMetadata(width=1280, height=544, rotation_deg=-90)
    assert meta.display_size == (544, 1280)
    anamorphic = VideoMetadata(width=720, height=576, sample_aspect_ratio=(16, 11))
    assert anamorphic.display_size == (1047, 576)


def test_video_task_wraps_a_video():
    task = VideoTask(dataset_name="d", data=Video(input_path="/x.mp4"))
    assert task.data.clips == [] and task.data.errors == {}
