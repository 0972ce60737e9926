"""The batch steps: pure pieces, and what a step hands back to the driver."""

import pickle
import shutil

from curator_core import RayExecutor
from curator_core.batches import BatchSettings, _short, run_step
from curator_core.video.options import CurationOptions


def test_a_caption_preview_breaks_long_tokens_so_the_cell_wraps():
    cell = _short("a " + "x" * 70 + " b")
    assert max(len(part) for part in cell.replace("\u200b", " ").split()) <= 30
    assert cell.replace("\u200b", "") == "a " + "x" * 70 + " b"  # the same text, with break points


class _RecordingExecutor(RayExecutor):
    """The real RayExecutor, noting how many bytes each returned clip costs the driver."""

    bytes_per_clip: dict[str, float] = {}

    def execute(self, stages, initial_tasks):
        result = super().execute(stages, initial_tasks)
        clips = sum(len(t.data.clips) + len(t.data.filtered_clips) for t in result.outputs)
        size = sum(len(pickle.dumps(t)) for t in result.outputs)
        self.bytes_per_clip[self.step] = size / max(1, clips)
        return result


def test_what_a_step_returns_to_the_driver_is_small_records_not_media(ray_cluster, tmp_path, three_shots):
    from curator_core.models.open_clip_model import write_demo_model
    from curator_core.models.transformers_models import write_demo_vlm

    models = tmp_path / "models"
    write_demo_model(models)
    write_demo_vlm(models)
    (tmp_path / "landing" / "b").mkdir(parents=True)
    for i in range(3):
        shutil.copy(three_shots, tmp_path / "landing" / "b" / f"v{i}.mp4")
    settings = BatchSettings(
        landing=str(tmp_path / "landing"),
        output_root=str(tmp_path / "out"),
        store_uri=str(tmp_path / "store"),
        options=CurationOptions(model_dir=str(models), min_clip_len_s=1.0),
    )
    executor = _RecordingExecutor()
    for step in ("raw_videos", "clips", "clip_embeddings", "clip_captions"):
        executor.step = step
        summary = run_step(step, "b", settings, executor)
        assert not summary.failures, summary.failures
    sizes = executor.bytes_per_clip
    assert set(sizes) == {"raw_videos", "clips", "clip_embeddings", "clip_captions"}
    # Media is ~60 KB a clip here, its frames at 224x224 150 KB a second: none of it may come back.
    assert max(sizes.values()) < 8_000, sizes
