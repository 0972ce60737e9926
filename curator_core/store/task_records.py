"""What each task of a step stored, recorded durably beside its rows (issue #14: resume, lost nodes).

The row writer (store.row_writer) appends a task's rows, then one record of the task to `step_tasks`:
its segment, the rows it wrote per table, its failures and the metadata files it wrote. A record exists
only once its rows do, so the records of a write say which tasks are complete:

- a step killed part way and run again reuses the videos an earlier write of the same step, parameters
  and code stored (store.reuse) instead of decoding and encoding them again;
- the driver reads a step's failures, files and durations from the records, not from what the pipeline
  returns, so the reused tasks and the new ones are reported alike;
- a task that Ray ran twice (its worker died after writing) wrote its rows twice: `reconcile` finds the
  sources whose row counts differ from their records and keeps one copy of each row, before the commit.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from curator_core.store import schemas
from curator_core.store.commits import append_rows, sql_literal
from curator_core.store.records import Lineage, task_failure_rows
from curator_core.tasks import VideoTask

TABLE = "step_tasks"
FAILURE_FIELDS = ("row_id", "stage", "input", "exception_type", "message")
METADATA_FILES = ("clips_table", "video_summary")  # task.metadata keys of files the clip writer wrote
SCAN_BATCH = 8192

logger = logging.getLogger(__name__)


def segment_of(task: VideoTask) -> tuple[int, int]:
    """(index, count) of the task's segment of its video; a video in one piece is (0, 1)."""
    return task.data.segment or (0, 1)


def task_key(task: VideoTask) -> str:
    """A task's key, the same on every run: its source, segment and first clip."""
    video = task.data
    clips = video.clips + video.filtered_clips
    first = min((c.uuid for c in clips), default="")
    index, count = segment_of(task)
    return f"{video.input_path}#{index}/{count}#{first}"


def record_row(task: VideoTask, lineage: Lineage, rows: dict[str, int], clips: int, clip_s: float) -> dict:
    """The step_tasks row of a task that wrote `rows` (table -> count)."""
    video = task.data
    index, count = segment_of(task)
    failures = [{k: r[k] for k in FAILURE_FIELDS} for r in task_failure_rows(task, lineage)]
    return {
        "row_id": task_key(task),
        "segment_index": index,
        "segment_count": count,
        "rows_json": json.dumps(rows, sort_keys=True),
        "clips": clips,
        "clip_s": clip_s,
        "duration_s": video.metadata.duration_s if video.metadata else None,
        "files": [task.metadata[k] for k in METADATA_FILES if task.metadata.get(k)],
        "failures_json": json.dumps(failures) if failures else None,
        "reused_from": None,
        **lineage.columns(video.input_path, video.content_hash),
    }


def write_record(store, task: VideoTask, lineage: Lineage, commit_id: str, rows: dict[str, int],
                 clips: int, clip_s: float) -> None:  # fmt: skip
    row = record_row(task, lineage, rows, clips, clip_s)
    append_rows(store, TABLE, [row], schemas.STEP_TASKS, lineage.batch_key, commit_id)


def _scan(store, name: str, where: str, columns: list[str]):
    """Record batches of a table's raw rows (writes in flight included), a few thousand at a time."""
    if name not in store.table_names():
        return
    query = store.db.open_table(name).search().where(where).select(columns).limit(None)
    yield from query.to_batches(SCAN_BATCH)


def _of_commit(commit_id: str, lineage: Lineage | None = None) -> str:
    where = f"commit_id = {sql_literal(commit_id)}"
    return where + (f" AND pipeline = {sql_literal(lineage.pipeline)}" if lineage else "")


@dataclass
class StepRecords:
    """What the tasks of one write stored, summed on the driver from their records."""

    tasks: int = 0
    reused: int = 0  # tasks copied from an earlier write (store.reuse)
    clips: int = 0
    clip_s: float = 0.0
    video_s: float = 0.0  # durations of the distinct source videos this write made something of
    files: list[str] = field(default_factory=list)
    failure_rows: list[dict] = field(default_factory=list)


def read_records(store, commit_id: str, lineage: Lineage) -> StepRecords:
    """The records of write `commit_id` of `lineage`'s step, streamed (each task counted once)."""
    out = StepRecords()
    seen: set[str] = set()
    durations: dict[str, float] = {}
    columns = [
        "row_id",
        "source_uri",
        "clips",
        "clip_s",
        "duration_s",
        "files",
        "failures_json",
        "reused_from",
    ]
    for batch in _scan(store, TABLE, _of_commit(commit_id, lineage), columns):
        for row in batch.to_pylist():
            if row["row_id"] in seen:
                continue
            seen.add(row["row_id"])
            out.tasks += 1
            out.reused += row["reused_from"] is not None
            out.clips += row["clips"] or 0
            out.clip_s += row["clip_s"] or 0.0
            if row["duration_s"] and row["reused_from"] is None:
                durations[row["source_uri"]] = row["duration_s"]
            out.files += row["files"] or []
            for failure in json.loads(row["failures_json"] or "[]"):
                out.failure_rows.append({**failure, **lineage.columns(row["source_uri"], None)})
    out.video_s = sum(durations.values())
    return out


def expected_rows(store, commit_id: str, lineage: Lineage) -> tuple[dict[str, Counter], set[str]]:
    """Per table, the rows each source's records say were written under `commit_id`; and the sources
    with a task recorded twice."""
    expected: dict[str, Counter] = {}
    seen: set[str] = set()
    twice: set[str] = set()
    for batch in _scan(store, TABLE, _of_commit(commit_id, lineage), ["row_id", "source_uri", "rows_json"]):
        for row in batch.to_pylist():
            if row["row_id"] in seen:
                twice.add(row["source_uri"])
                continue
            seen.add(row["row_id"])
            for name, n in json.loads(row["rows_json"] or "{}").items():
                expected.setdefault(name, Counter())[row["source_uri"]] += n
    return expected, twice


def reconcile(store, commit_id: str, lineage: Lineage, tables: list[str]) -> int:
    """Before the commit point: keep one copy of every row (and record) that tasks run twice wrote
    twice under `commit_id`. A cheap count settles the common case; only then are the sources whose
    counts differ read, one at a time. Returns the duplicate rows removed."""
    expected, twice = expected_rows(store, commit_id, lineage)
    removed = 0
    for name in tables:
        if name not in store.table_names():
            continue
        want = expected.get(name, Counter())
        total = store.db.open_table(name).count_rows(f"commit_id = {sql_literal(commit_id)}")
        if total == sum(want.values()) and not twice:
            continue
        have: Counter = Counter()
        for batch in _scan(store, name, f"commit_id = {sql_literal(commit_id)}", ["source_uri"]):
            have.update(batch.column(0).to_pylist())
        for source in sorted({s for s in have | want if have[s] != want[s]} | twice, key=str):
            removed += dedupe(store, name, commit_id, source)
            left = store.db.open_table(name).count_rows(_source(commit_id, source))
            if left != want[source]:  # rows of a task whose record was never written: kept, and said
                logger.warning("%s: %s has %d rows under write %s, its records say %d",
                               name, source, left, commit_id, want[source])  # fmt: skip
    for source in sorted(twice, key=str):
        dedupe(store, TABLE, commit_id, source)
    return removed


def _source(commit_id: str, source: str | None) -> str:
    where = f"commit_id = {sql_literal(commit_id)} AND "
    return where + ("source_uri IS NULL" if source is None else f"source_uri = {sql_literal(source)}")


def dedupe(store, name: str, commit_id: str, source: str | None) -> int:
    """Keep one of each row_id among one source's rows of write `commit_id` in table `name`."""
    table = store.db.open_table(name)
    rows = table.search().where(_source(commit_id, source)).limit(None).to_arrow()
    first = unique_rows(rows)
    if first.num_rows == rows.num_rows:
        return 0
    table.delete(_source(commit_id, source))
    append_rows(store, name, first, table.schema, rows.column("batch_key")[0].as_py(), commit_id)
    return rows.num_rows - first.num_rows


def unique_rows(rows: pa.Table) -> pa.Table:
    """The first row of each row_id."""
    ids = rows.column("row_id").combine_chunks()
    return rows.take(pc.index_in(pc.unique(ids), value_set=ids))
