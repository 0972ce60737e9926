"""Rows written where the data is (issue #14): the last stage of a step's pipeline appends each task's
rows to the clip store under the step's pending commit (store.commits), on the worker that made them,
then a record of the task (store.task_records), and sends the driver only counts.

The driver opens the commit before the pipeline runs and makes it visible once the pipeline is done, so
what it holds no longer grows with the clips: it reads the step's failures and files from the records,
instead of getting every clip's row, vector and caption. Existence checks of media files run here too,
one task's files at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from curator_core.resources import Resources
from curator_core.stage import ProcessingStage
from curator_core.store import schemas
from curator_core.store.commits import append_rows, embeddings_table_name
from curator_core.store.records import Lineage, caption_rows, clip_rows, embedding_rows
from curator_core.store.store import worker_store
from curator_core.store.task_records import write_record
from curator_core.tasks import VideoTask
from curator_core.video.results import drop_worker_data

STORED = "stored"  # task.metadata key: what the stage wrote, {"rows": {table: n}, "clips": n, "clip_s": s}
CLIPS, EMBEDDINGS, CAPTIONS = "clips", "embeddings", "captions"


@dataclass
class RowWriterStage(ProcessingStage[VideoTask, VideoTask]):
    """Appends the task's rows of one kind (clips, embeddings of `model_id`, captions) to the store at
    `store_uri`, tagged with `commit_id` (hidden until the driver commits), then the task's record
    (with `lineage`), and keeps only counts on the task."""

    store_uri: str = ""
    batch_key: str = ""
    commit_id: str = ""
    kind: str = CLIPS
    lineage: Lineage | None = None
    model_id: str | None = None
    name: str = "row_writer"
    resources: Resources = Resources(cpus=0.25)

    def __post_init__(self) -> None:
        if self.kind not in (CLIPS, EMBEDDINGS, CAPTIONS):
            raise ValueError(f"kind must be {CLIPS}, {EMBEDDINGS} or {CAPTIONS}, got {self.kind!r}")
        if self.kind == EMBEDDINGS and not self.model_id:
            raise ValueError("writing embeddings needs the model_id that made them")

    def process(self, task: VideoTask) -> VideoTask:
        # Not opened in `setup`: a stage with per-worker hooks runs in an actor pool of its own (a fresh
        # process per step), where this one fuses with the writer on its warm workers.
        store = worker_store(self.store_uri)
        video = task.data
        name, rows, schema = self._rows(task)
        if self.kind == CLIPS:
            store.check_media(rows, per_file=True)
        if rows:
            append_rows(store, name, rows, schema, self.batch_key, self.commit_id)
        clips = video.clips if self.kind != CLIPS else video.clips + video.filtered_clips
        counts = {"rows": {name: len(rows)}, "clips": len(clips), "clip_s": sum(c.duration_s for c in clips)}
        if self.lineage is not None:  # after the rows: a record says its task's rows are all there
            write_record(store, task, self.lineage, self.commit_id, counts["rows"], counts["clips"],
                         counts["clip_s"])  # fmt: skip
        task.metadata[STORED] = counts
        drop_worker_data(task)
        video.clips, video.filtered_clips = [], []  # the driver reads failures from the records
        return task

    def _rows(self, task: VideoTask) -> tuple[str, list[dict], pa.Schema | None]:
        lineage = self.lineage
        if self.kind == CLIPS:
            hashes = {task.data.input_path: task.data.content_hash}
            return "clips", clip_rows([task], lineage, hashes), schemas.CLIPS
        if self.kind == CAPTIONS:
            return "clip_captions", caption_rows([task], lineage), schemas.CLIP_CAPTIONS
        rows = embedding_rows([task], self.model_id, lineage)
        schema = schemas.clip_embeddings(len(rows[0]["vector"])) if rows else None
        return embeddings_table_name(self.model_id), rows, schema
