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
    """The real RayExecutor, noting what each step's pipeline hands back to the driver."""

    returned: dict[str, dict] = {}

    def execute(self, stages, initial_tasks):
        result = super().execute(stages, initial_tasks)
        self.returned[self.step] = {
            "clips": sum(len(t.data.clips) + len(t.data.filtered_clips) for t in result.outputs),
            "stored_clips": sum(t.metadata.get("stored", {}).get("clips", 0) for t in result.outputs),
            "bytes_per_task": max(len(pickle.dumps(t)) for t in result.outputs),
        }
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
    returned = executor.returned
    assert set(returned) == {"raw_videos", "clips", "clip_embeddings", "clip_captions"}
    for step in ("clips", "clip_embeddings", "clip_captions"):
        # The workers wrote every clip's row, vector and caption (store.row_writer): the driver gets counts
        # per task, not clips, so what it holds does not grow with the clips of a batch.
        assert returned[step]["clips"] == 0 and returned[step]["stored_clips"] >= 9, returned
    # Media is ~60 KB a clip here, its frames at 224x224 150 KB a second: none of it may come back.
    assert max(r["bytes_per_task"] for r in returned.values()) < 4_000, returned
