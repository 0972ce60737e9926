"""The batch steps: pure pieces, and what a step hands back to the driver."""

import shutil

from curator_core.batches import BatchSettings, _short, run_step
from curator_core.video.options import CurationOptions
from tests.core.conftest import RecordingExecutor, assert_small_records


def test_a_caption_preview_breaks_long_tokens_so_the_cell_wraps():
    cell = _short("a " + "x" * 70 + " b")
    assert max(len(part) for part in cell.replace("\u200b", " ").split()) <= 30
    assert cell.replace("\u200b", "") == "a " + "x" * 70 + " b"  # the same text, with break points


def test_what_a_step_returns_to_the_driver_is_small_records_not_media(ray_cluster, tmp_path, three_shots):
    """The video steps here; the model steps in test_resume, which runs them anyway."""
    (tmp_path / "landing" / "b").mkdir(parents=True)
    for i in range(3):
        shutil.copy(three_shots, tmp_path / "landing" / "b" / f"v{i}.mp4")
    settings = BatchSettings(
        landing=str(tmp_path / "landing"),
        output_root=str(tmp_path / "out"),
        store_uri=str(tmp_path / "store"),
        options=CurationOptions(min_clip_len_s=1.0),
    )
    executor = RecordingExecutor()
    for step in ("raw_videos", "clips"):
        executor.step = step
        summary = run_step(step, "b", settings, executor)
        assert not summary.failures, summary.failures
    assert_small_records(executor.returned, {"raw_videos", "clips"})
