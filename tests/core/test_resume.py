"""Resuming steps (issue #14, item 3) on real Ray, LanceDB and PyAV: a clips step whose driver is SIGKILLed
part way, then run again, ends with the rows and media an uninterrupted run gives, and makes only what the
killed run had not stored; a finished step run again makes nothing; the model steps reuse what they made
of the same clips only."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import lancedb

from curator_core import RayExecutor
from curator_core.batches import BatchSettings, run_step
from curator_core.store import ClipStore
from tests.core.conftest import (
    SEGMENT_S,
    SEGMENTS_PER_VIDEO,
    VIDEOS,
    RecordingExecutor,
    assert_small_records,
    batch_settings,
    clip_rows,
    media,
    stored_tasks,
)

ROOT = Path(__file__).resolve().parents[2]
DRIVER = """
import sys
from curator_core import RayExecutor
from curator_core.batches import BatchSettings, run_step
settings = BatchSettings.from_json(open(sys.argv[1]).read())
run_step("clips", "b", settings, RayExecutor(num_cpus=2))
"""


def _kill_part_way(settings: BatchSettings, root: Path, at_records: int) -> int:
    """Run the clips step in a driver of its own (its own private Ray) and SIGKILL it, with its
    cluster, once `at_records` tasks are stored. Returns the tasks stored when it died."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "settings.json").write_text(settings.to_json())
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(PYTHONPATH=str(ROOT), CURATOR_RAY_TMPDIR=f"/tmp/cc-resume-{os.getpid()}")
    with open(root / "driver.log", "w") as log:
        driver = subprocess.Popen(
            [sys.executable, "-c", DRIVER, str(root / "settings.json")], cwd=ROOT, env=env,
            stdout=subprocess.DEVNULL, stderr=log, start_new_session=True,
        )  # fmt: skip
    deadline = time.time() + 300
    try:
        while stored_tasks(root) < at_records:
            assert driver.poll() is None, (root / "driver.log").read_text()[-3000:]
            assert time.time() < deadline, "the killed run never got part way"
            time.sleep(0.1)
    finally:
        os.killpg(driver.pid, signal.SIGKILL)  # the driver and the private cluster it started
        driver.wait()
    time.sleep(1)
    return stored_tasks(root)


def test_a_killed_clips_step_resumes_to_the_rows_and_media_of_an_uninterrupted_run(whole, landing, tmp_path):
    total = VIDEOS * SEGMENTS_PER_VIDEO
    whole_root, whole = whole
    assert whole.details["work"] == {"tasks_stored": total, "tasks_reused": 0, "videos_reused_whole": 0,
                                     "segments_encoded": total}, whole.details["work"]  # fmt: skip

    resumed_root = tmp_path / "resumed"
    stored_at_kill = _kill_part_way(
        batch_settings(landing, resumed_root), resumed_root, at_records=total // 2
    )
    assert total // 2 <= stored_at_kill < total, stored_at_kill
    assert ClipStore(str(resumed_root / "store")).count("clips") == 0  # nothing of the killed run shows

    resumed = run_step("clips", "b", batch_settings(landing, resumed_root), RayExecutor())
    work = resumed.details["work"]
    # Only what the killed run had not stored is made again. A video whose last task died between
    # writing its rows and its record is made again whole, so a few stored tasks may not count.
    assert work["tasks_stored"] == total and work["tasks_reused"] + work["segments_encoded"] == total, work
    assert work["tasks_reused"] >= stored_at_kill - 2 * SEGMENTS_PER_VIDEO and work["tasks_reused"] > 0, work
    assert resumed.tables == whole.tables and resumed.failures == whole.failures
    assert clip_rows(resumed_root) == clip_rows(whole_root)
    assert media(resumed_root) == media(whole_root)  # byte for byte, nothing more or less

    again = run_step("clips", "b", batch_settings(landing, resumed_root), RayExecutor())
    assert again.details["work"] == {"tasks_stored": total, "tasks_reused": total, "videos_reused_whole": VIDEOS,
                                     "segments_encoded": 0}, again.details["work"]  # fmt: skip
    assert again.video_seconds == 0.0 < resumed.video_seconds <= whole.video_seconds  # what each made
    assert clip_rows(resumed_root) == clip_rows(whole_root)
    assert media(resumed_root) == media(whole_root)

    # One stored segment lost (its record and rows): a run makes that segment only, not its video.
    db = lancedb.connect(str(resumed_root / "store"))
    source = str(landing / "b" / "v1.mp4")
    db.open_table("step_tasks").delete(f"source_uri = '{source}' AND segment_index = 1")
    db.open_table("clips").delete(f"source_uri = '{source}' AND span_start_s >= {SEGMENT_S}")
    assert ClipStore(str(resumed_root / "store")).count("clips") < len(clip_rows(whole_root))
    mended = run_step("clips", "b", batch_settings(landing, resumed_root), RayExecutor())
    assert mended.details["work"] == {"tasks_stored": total, "tasks_reused": total - 1,
                                      "videos_reused_whole": VIDEOS - 1, "segments_encoded": 1}  # fmt: skip
    assert clip_rows(resumed_root) == clip_rows(whole_root)
    assert media(resumed_root) == media(whole_root)


def test_model_steps_reuse_what_they_made_of_the_same_clips_and_remake_it_for_new_clips(
    whole, landing, tmp_path
):
    from curator_core.models.open_clip_model import write_demo_model
    from curator_core.models.transformers_models import write_demo_vlm

    whole_root, _ = whole
    root = tmp_path / "copy"
    shutil.copytree(whole_root / "store", root / "store")  # its clip rows point at whole_root's media
    models = tmp_path / "models"
    write_demo_model(models)
    write_demo_vlm(models)
    settings = batch_settings(landing, root)
    settings.options = settings.options.model_copy(update={"model_dir": str(models)})
    store = ClipStore(str(root / "store"))

    executor = RecordingExecutor()

    def run(step: str) -> tuple[dict, list[dict]]:
        """The step's work figures, and its rows (embeddings or captions)."""
        executor.step = step
        work = run_step(step, "b", settings, executor).details["work"]
        if step == "clip_captions":
            table, value = "clip_captions", "text"
        else:
            table, value = next(n for n in store.table_names() if n.startswith("clip_embeddings__")), "vector"
        rows = store.rows(table, columns=["row_id", "uuid", value]).to_pylist()
        return work, sorted(rows, key=lambda r: r["row_id"])

    made = {step: run(step) for step in ("clip_embeddings", "clip_captions")}
    assert_small_records(executor.returned, {"clip_embeddings", "clip_captions"})  # (test_batches: the rest)
    assert (
        made["clip_embeddings"][0]["videos_embedded"] == VIDEOS
        and made["clip_captions"][0]["videos_captioned"] == VIDEOS
    )
    for step, key in (("clip_embeddings", "videos_embedded"), ("clip_captions", "videos_captioned")):
        work, rows = run(step)  # the same clips, model and code: copied, nothing through the model
        assert work == {
            "tasks_stored": VIDEOS,
            "tasks_reused": VIDEOS,
            "videos_reused_whole": VIDEOS,
            key: 0,
        }, work
        assert rows == made[step][1] and rows

    # The clips made again with another quality: what was made of the old clips is made again.
    settings.options = settings.options.model_copy(update={"crf": 30})
    run_step("clips", "b", settings, RayExecutor())
    work, rows = run("clip_embeddings")
    assert work["videos_embedded"] == VIDEOS and work["tasks_reused"] == 0, work
