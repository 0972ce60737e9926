"""Task records (store.task_records) on real LanceDB: a task that Ray ran twice, because its worker died
after writing, wrote its rows twice; the commit keeps one copy of each, and its record counts once."""

from __future__ import annotations

from curator_core.store import ClipStore, schemas
from curator_core.store.commits import append_rows
from curator_core.store.records import Lineage, clip_rows
from curator_core.store.task_records import TABLE, read_records, reconcile, write_record
from curator_core.tasks import Clip, Video, VideoTask

LINEAGE = Lineage("b", "clips", "1/clips", "p")


def _task(source: str, segment: tuple[int, int], starts: list[float], error: str | None = None) -> VideoTask:
    video = Video(input_path=source, segment=segment)
    video.clips = [Clip(source=source, span=(s, s + 2.0)) for s in starts]
    if error:
        video.clips[0].errors["motion"] = error
    return VideoTask(dataset_name="b", data=video)


def _store_task(store: ClipStore, task: VideoTask, commit_id: str) -> None:
    """What the row writer does on a worker: the task's rows, then its record."""
    rows = clip_rows([task], LINEAGE, {task.data.input_path: None})
    append_rows(store, "clips", rows, schemas.CLIPS, "b", commit_id)
    write_record(store, task, LINEAGE, commit_id, {"clips": len(rows)}, len(rows), 2.0 * len(rows))


def test_rows_a_retried_task_wrote_twice_are_kept_once_and_its_record_counts_once(tmp_path):
    store = ClipStore(str(tmp_path / "store"))
    tasks = [
        _task("/in/a.mp4", (0, 2), [0.0, 2.0]),
        _task("/in/a.mp4", (1, 2), [30.0], error="could not score"),
        _task("/in/b.mp4", (0, 1), [0.0, 2.0, 4.0]),
    ]
    for task in tasks:
        _store_task(store, task, "c1")
    _store_task(store, tasks[1], "c1")  # its worker died after writing: Ray ran it again
    _store_task(store, tasks[2], "c2")  # another write's rows are left alone
    clips = store.db.open_table("clips")
    assert clips.count_rows("commit_id = 'c1'") == 7

    assert reconcile(store, "c1", LINEAGE, ["clips"]) == 1
    clips = store.db.open_table("clips")  # a handle sees the version it was opened at
    ids = clips.search().where("commit_id = 'c1'").select(["row_id"]).limit(None).to_arrow()
    assert sorted(ids.column("row_id").to_pylist()) == sorted(c.uuid for t in tasks for c in t.data.clips)
    assert store.db.open_table(TABLE).count_rows("commit_id = 'c1'") == 3
    assert clips.count_rows("commit_id = 'c2'") == 3

    records = read_records(store, "c1", LINEAGE)
    assert (records.tasks, records.clips) == (3, 6)
    assert [f["stage"] for f in records.failure_rows] == ["motion"]  # once, naming its file
    assert records.failure_rows[0]["input"].startswith("/in/a.mp4 [30.000-32.000s]")
    assert reconcile(store, "c1", LINEAGE, ["clips"]) == 0  # nothing left to mend
