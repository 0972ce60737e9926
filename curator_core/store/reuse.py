"""Resuming a step (issue #14): a video that an earlier write of the same step, parameters and code
already stored (a killed run of the step, or its committed run) is copied into this write instead of
being decoded and encoded again; a video stored in part has only its missing segments made.

Runs per video on the workers, after probing (the content hash must match) and before any decoding.
The earlier write's rows count only where its records (store.task_records) account for every one of
them and their media still exist; anything less, and the video is made again. Reads see the tables as
they were when the step started, so that this run's own appends never slow them down.
"""

from __future__ import annotations

import json
import logging
import posixpath
from collections import defaultdict
from dataclasses import dataclass, field
from typing import ClassVar

import pyarrow as pa

from curator_core.resources import Resources
from curator_core.stage import ProcessingStage
from curator_core.store import schemas
from curator_core.store.commits import append_rows, sql_literal
from curator_core.store.records import Lineage
from curator_core.store.store import file_exists, worker_store
from curator_core.store.task_records import TABLE, unique_rows
from curator_core.tasks import VideoTask
from curator_core.video.transcoding import REUSED_SEGMENTS

logger = logging.getLogger(__name__)


@dataclass
class ReuseStage(ProcessingStage[VideoTask, VideoTask]):
    """Copies what an earlier write of `lineage`'s step stored for a video into write `commit_id`:
    the rows of `tables` and the records. A video stored whole leaves the pipeline here; one stored in
    part goes on with `task.metadata[REUSED_SEGMENTS]` naming the segments to skip.

    `versions`: table -> version when the step started (reads are pinned there)."""

    store_uri: str = ""
    commit_id: str = ""
    lineage: Lineage | None = None
    tables: tuple[str, ...] = ()
    versions: dict[str, int] = field(default_factory=dict)
    name: str = "reuse_stored"
    fans_out: ClassVar[bool] = True
    resources: Resources = Resources(cpus=0.25)

    def process(self, task: VideoTask) -> list[VideoTask]:
        video = task.data
        if self.lineage is None or TABLE not in self.versions:
            return [task]
        by_commit: dict[str, list[dict]] = defaultdict(list)
        for row in self._read(TABLE, self._earlier(video.input_path)).to_pylist():
            by_commit[row["commit_id"]].append(row)
        for commit_id, rows in sorted(by_commit.items(), key=lambda kv: -len(kv[1])):
            records = list({r["row_id"]: r for r in rows}.values())
            if {r["content_hash"] for r in records} != {video.content_hash}:
                continue  # the file changed since
            counts = {r["segment_count"] for r in records}
            if len(counts) != 1 or not self._copy(commit_id, video.input_path, records):
                continue
            done = sorted({r["segment_index"] for r in records})
            if len(done) >= counts.pop():
                return []  # stored whole: nothing left to make
            task.metadata[REUSED_SEGMENTS] = {"count": records[0]["segment_count"], "done": done}
            return [task]
        return [task]

    def _earlier(self, source: str) -> str:
        lin = self.lineage
        return " AND ".join(
            [
                f"batch_key = {sql_literal(lin.batch_key)}",
                f"pipeline = {sql_literal(lin.pipeline)}",
                f"code_version = {sql_literal(lin.code_version)}",
                f"params_hash = {sql_literal(lin.params_hash)}",
                f"source_uri = {sql_literal(source)}",
                f"commit_id != {sql_literal(self.commit_id)}",
            ]
        )

    def _read(self, name: str, where: str) -> pa.Table:
        table = worker_store(self.store_uri).db.open_table(name)
        table.checkout(self.versions[name])
        return table.search().where(where).limit(None).to_arrow()

    def _copy(self, commit_id: str, source: str, records: list[dict]) -> bool:
        """Copy `source`'s rows of write `commit_id` into this write, when its records account for them
        all and their files exist. Returns whether it did."""
        where = f"commit_id = {sql_literal(commit_id)} AND source_uri = {sql_literal(source)}"
        staged: dict[str, pa.Table] = {}
        for name in self.tables:
            want = sum(json.loads(r["rows_json"] or "{}").get(name, 0) for r in records)
            rows = unique_rows(self._read(name, where)) if name in self.versions and want else None
            if (rows.num_rows if rows is not None else 0) != want:
                return False
            if rows is not None:
                staged[name] = rows
        files = [f for r in records for f in r["files"] or []]
        clips = staged.get("clips")
        if clips is not None:
            files += [u for c in ("media_uri", "preview_uri") for u in clips.column(c).to_pylist() if u]
        if not all(file_exists(f) for f in files):
            return False
        store = worker_store(self.store_uri)
        for name, rows in staged.items():  # rows first, then the records that vouch for them
            append_rows(store, name, rows, rows.schema, self.lineage.batch_key, self.commit_id)
        copies = [{**r, "reused_from": r["reused_from"] or commit_id} for r in records]
        record_table = pa.Table.from_pylist(copies, schema=schemas.STEP_TASKS)
        append_rows(store, TABLE, record_table, schemas.STEP_TASKS, self.lineage.batch_key, self.commit_id)
        logger.info("%s: reused %d stored task(s) of write %s", posixpath.basename(source), len(records),
                    commit_id)  # fmt: skip
        return True
