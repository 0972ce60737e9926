"""Curating one upload batch, step by step: `raw_videos` (inventory and probe), `clips` (split, transcode,
filter, preview, write), `clip_embeddings` and `clip_captions` (on the stored clips). Each step builds its
pipeline, runs it on Ray, replaces the batch's rows in the clip store and returns a JSON-able summary.

Dagster-free: the Dagster assets call `run_step` in-process on local Ray, or submit
`python -m curator_assets.remote_step` as a Ray job that calls it on a cluster.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import posixpath
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import fsspec

from curator_core import __version__, storage
from curator_core.executors.base import RunResult
from curator_core.executors.ray import RayExecutor, ensure_ray
from curator_core.gallery import Gallery, write_gallery
from curator_core.models import registry
from curator_core.pipeline import Pipeline
from curator_core.progress import Progress
from curator_core.store import ClipStore, schemas, task_records
from curator_core.store.commits import BatchCommit, compact
from curator_core.store.records import (
    Lineage,
    failure_rows,
    params_hash,
    raised_failure_rows,
    video_rows,
)
from curator_core.store.reuse import ReuseStage
from curator_core.store.row_writer import CAPTIONS, CLIPS, EMBEDDINGS, RowWriterStage
from curator_core.store.store import embeddings_table_name, sql_literal
from curator_core.store.task_records import StepRecords
from curator_core.tasks import VideoTask
from curator_core.training.options import ShardOptions
from curator_core.training.shards import export_shards
from curator_core.training.stats import merge_stats
from curator_core.video.model_stage import ClipModelStage
from curator_core.video.pipelines import CurationOptions, caption_stages, embedding_stages, split_pipeline
from curator_core.video.preview import thumbnail_jpeg
from curator_core.video.reader import READ_ERROR, VideoReader
from curator_core.video.stored_clips import StoredClipReader
from curator_core.video.writer import prune_outputs

logger = logging.getLogger(__name__)

STEPS = ("raw_videos", "clips", "clip_embeddings", "clip_captions", "training_shards")
# A batch key names one folder under the landing area and the output roots: one safe path segment.
BATCH_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=+@-]{0,199}$")
BATCH_KEY_RULE = "letters, digits and . _ = + @ -, starting with a letter or digit, at most 200 characters"


class BatchInputError(ValueError):
    """A batch that cannot be processed as named: an unsafe key, or a landing folder that is not there."""


def check_batch_key(batch_key: str) -> str:
    """`batch_key` when it is one safe path segment, else BatchInputError naming the rule."""
    if not BATCH_KEY.match(batch_key or ""):
        raise BatchInputError(f"batch key {batch_key!r} is not one safe path segment ({BATCH_KEY_RULE})")
    return batch_key


PREVIEW_ROWS = 8


@dataclass
class BatchSettings:
    """Where a batch comes from and goes to, and the knobs of its pipelines (all with working defaults).

    landing: the folder or fsspec URI whose subfolders are upload batches.
    output_root: clip media go under <output_root>/<batch>/ (clips/, previews/, metadata/).
    store_uri: the clip store (LanceDB: a local folder or s3://, gs://...).
    shards_root: WebDataset shards go under <shards_root>/<batch>/, the dataset manifest at its top.
    """

    landing: str = "state/landing"
    output_root: str = "state/outputs"
    store_uri: str = "state/store"
    shards_root: str = "state/shards"
    options: CurationOptions = field(default_factory=CurationOptions)
    shard_options: ShardOptions = field(default_factory=ShardOptions)
    storage: dict[str, Any] = field(default_factory=dict)  # a StorageConfig; empty: the process's own

    def apply_storage(self) -> None:
        """Make the batch's storage configuration this process's (and its Ray workers')."""
        storage.configure(storage.StorageConfig(**self.storage))

    def batch_uri(self, batch_key: str) -> str:
        return posixpath.join(self.landing.rstrip("/"), batch_key)

    def to_json(self) -> str:
        return json.dumps(
            {
                **dataclasses.asdict(self),
                "options": self.options.model_dump(),
                "shard_options": self.shard_options.model_dump(),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> BatchSettings:
        data = json.loads(text)
        return cls(
            **{
                **data,
                "options": CurationOptions(**data["options"]),
                "shard_options": ShardOptions(**data.get("shard_options", {})),
            }
        )


@dataclass
class StepSummary:
    """What a step did, for the console and the Dagster UI."""

    step: str
    batch_key: str
    store_uri: str
    tables: dict[str, int]  # table -> rows of this batch written
    failures: list[dict[str, str]]  # stage, input, reason
    pipeline_s: float  # the pipeline's own wall time (Ray start-up excluded)
    video_seconds: float  # seconds of video processed
    preview: list[dict[str, Any]]  # a few rows to show, with a data-URI thumbnail where there is media
    notes: list[str]
    models: dict[str, str] = field(default_factory=dict)  # role -> model id used
    ray_job_id: str | None = None  # set when the step ran as a submitted Ray job
    ray_dashboard: str | None = None  # the dashboard of the cluster it ran on (or of its job), when known
    details: dict[str, Any] = field(default_factory=dict)  # what is particular to the step (JSON-able)
    faults: dict[str, int] = field(default_factory=dict)  # nodes lost, actors restarted, tasks retried, lost

    @property
    def throughput(self) -> float:
        """Seconds of video processed per second of pipeline time."""
        return self.video_seconds / self.pipeline_s if self.pipeline_s > 0 else 0.0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def run_step(
    step: str,
    batch_key: str,
    settings: BatchSettings,
    executor=None,
    report: Callable[[str], None] | None = None,
) -> StepSummary:
    """Run one step for one batch and record it in the store. `report` gets progress lines while the
    step's pipeline runs (default: this module's logger)."""
    if step not in STEPS:
        raise ValueError(f"unknown step {step!r}; steps: {', '.join(STEPS)}")
    check_batch_key(batch_key)
    settings.apply_storage()
    executor = executor or RayExecutor()
    report = report or logger.info
    run = _Run(executor, report)
    summary = _STEP_FUNCTIONS[step](batch_key, settings, run)
    summary.faults = run.faults
    return summary


@dataclass
class _Run:
    """How a step runs its pipeline: on which executor, reporting progress where."""

    executor: Any
    report: Callable[[str], None]
    faults: dict[str, int] = field(default_factory=dict)  # summed over the step's pipelines

    def execute(
        self, pipeline: Pipeline, progress: Progress | None = None, skip: bool = False
    ) -> tuple[RunResult, float]:
        """Run `pipeline`, reporting progress. `skip`: the batch has nothing for it (no kept clips), so
        no worker starts and no model loads; the step still replaces the batch's rows with none."""
        if skip:
            self.report(f"{pipeline.name}: nothing to do (the batch has no kept clips)")
            return RunResult([], [], {}, 0.0), 0.0
        if isinstance(self.executor, RayExecutor):
            ensure_ray(self.executor.num_cpus, self.executor.address, runtime_env=self.executor.runtime_env)
        progress = progress or Progress(pipeline.name, self.report)
        self.executor.on_output = progress.update
        t0 = time.perf_counter()
        try:
            result = pipeline.execute(self.executor)
        finally:
            self.executor.on_output = None
        for key, count in result.faults.items():
            self.faults[key] = self.faults.get(key, 0) + count
        progress.finish()
        return result, time.perf_counter() - t0


def _lineage(step: str, batch_key: str, *configs: Any, model_id: str | None = None) -> Lineage:
    return Lineage(batch_key, step, f"{__version__}/{step}", params_hash(*configs), model_id)


def _video_tasks(result: RunResult) -> list[VideoTask]:
    return [t for t in result.outputs if isinstance(t, VideoTask)]


def _failures(
    rows: list[dict], reported: frozenset[str] = frozenset()
) -> tuple[list[dict], list[dict[str, str]]]:
    """Failure rows to write, and the same as summary entries. `reported`: files whose read failure an
    earlier step of the batch recorded already, so that each failure is recorded once."""
    rows = [r for r in rows if not (r["stage"] == READ_ERROR and r["input"] in reported)]
    return rows, [{"stage": r["stage"], "input": r["input"], "reason": r["message"]} for r in rows]


def _expect_records(commit: BatchCommit, lineage: Lineage) -> None:
    """The step's workers record each task they store (store.task_records), in the step's scope (of
    one model, where the step has one per model)."""
    model = f" AND model_id = {sql_literal(lineage.model_id)}" if lineage.model_id else ""
    commit.expect(task_records.TABLE, schemas.STEP_TASKS, lineage.scope + model)


def _stored(store: ClipStore, commit: BatchCommit, lineage: Lineage, result: RunResult,
            tables: list[str]) -> tuple[StepRecords, list[dict]]:  # fmt: skip
    """Once the pipeline is done: one copy of each row in `tables` (a task run twice wrote its rows
    twice), what the tasks stored, and the failure rows (recorded ones and tasks that raised)."""
    task_records.reconcile(store, commit.commit_id, lineage, tables)
    records = task_records.read_records(store, commit.commit_id, lineage)
    return records, records.failure_rows + raised_failure_rows(result, lineage)


def _pinned_versions(store: ClipStore, names: list[str]) -> dict[str, int]:
    """Versions of the tables a reusing step reads, compacted first: what an earlier, killed run
    appended one task at a time is read in a few fragments, and this run's appends stay out of sight."""
    versions = {}
    for name in names:
        if name in store.table_names():
            compact(store, name)
            versions[name] = store.db.open_table(name).version
    return versions


def _write_failures(commit: BatchCommit, rows: list[dict], lineage: Lineage) -> int:
    return commit.replace("failures", rows, schemas.FAILURES, lineage.scope)


def _raw_videos(batch_key: str, settings: BatchSettings, run: _Run) -> StepSummary:
    fs, folder = fsspec.core.url_to_fs(settings.batch_uri(batch_key))
    if not fs.isdir(folder):
        raise BatchInputError(
            f"batch {batch_key!r}: its landing folder {settings.batch_uri(batch_key)} does not exist "
            f"(upload the batch's videos there, or remove the partition)"
        )
    pipeline = Pipeline("raw_videos", [VideoReader([settings.batch_uri(batch_key)])])
    result, seconds = run.execute(pipeline)
    lineage = _lineage("raw_videos", batch_key, {"landing": settings.batch_uri(batch_key)})
    store = ClipStore(settings.store_uri)
    rows = video_rows(_video_tasks(result), lineage)
    failure_table, failures = _failures(failure_rows(result, lineage))
    with store.commit(batch_key, "raw_videos") as commit:  # videos and failures: one commit point
        tables = {
            "videos": commit.replace("videos", rows, schemas.VIDEOS),
            "failures": _write_failures(commit, failure_table, lineage),
        }
    preview, total = [], 0.0
    for row in rows:
        meta = json.loads(row["metadata_json"]) if row["metadata_json"] else {}
        total += meta.get("duration_s") or 0.0
        preview.append(
            {
                "video": posixpath.basename(row["source_uri"]),
                "status": row["status"],
                "duration_s": round(meta.get("duration_s") or 0.0, 2),
                "size": f"{meta.get('width')}x{meta.get('height')}" if meta else "",
                "codec": meta.get("video_codec"),
                "error": row["error"] or "",
            }
        )
    return StepSummary(
        "raw_videos",
        batch_key,
        settings.store_uri,
        tables,
        failures,
        seconds,
        total,
        preview,
        [],
        details={"landing_folder": settings.batch_uri(batch_key)},
    )


def _clips(batch_key: str, settings: BatchSettings, run: _Run) -> StepSummary:
    options = settings.options.model_copy(update={"embed": False, "caption": False})
    output_root = posixpath.join(settings.output_root.rstrip("/"), batch_key)
    store = ClipStore(settings.store_uri)
    listed = store.count("videos", f"batch_key = {sql_literal(batch_key)}")  # by raw_videos, when it ran
    # The output root and the landing folder count among the parameters: rows reused by a later run
    # (store.reuse) must point at the media that run would write.
    where = {"output": output_root, "landing": settings.batch_uri(batch_key)}
    lineage = _lineage("clips", batch_key, options, where)
    batch = f"batch_key = {sql_literal(batch_key)}"
    with store.commit(batch_key, "clips", reuse=True) as commit:  # clips and failures: one commit point
        commit.expect("clips", schemas.CLIPS)  # the workers write the rows (store.row_writer)
        _expect_records(commit, lineage)
        rows_stage = RowWriterStage(settings.store_uri, batch_key, commit.commit_id, CLIPS, lineage)
        versions = _pinned_versions(store, ["clips", task_records.TABLE])
        reuse = ReuseStage(settings.store_uri, commit.commit_id, lineage, ("clips",), versions)
        pipeline = split_pipeline([settings.batch_uri(batch_key)], output_root, options, rows_stage, reuse)
        pipeline.name = "clips"
        result, seconds = run.execute(pipeline, Progress("clips", run.report, total=listed or None))
        records, failure_list = _stored(store, commit, lineage, result, ["clips"])
        unreadable = store.rows("videos", f"{batch} AND status = 'failed'", ["source_uri"])
        failure_table, failures = _failures(
            failure_list, frozenset(unreadable.column("source_uri").to_pylist())
        )
        tables = {
            "clips": commit.staged_count("clips"),
            "failures": _write_failures(commit, failure_table, lineage),
        }
    # Once committed, what this run no longer produces goes: media of an earlier run with other settings
    # (or of a killed one), and the derived rows of clips that no longer exist.
    media = store.rows("clips", batch, ["uuid", "media_uri", "preview_uri"])
    written = [u for c in ("media_uri", "preview_uri") for u in media.column(c).to_pylist() if u]
    removed = {"files": prune_outputs(output_root, written + records.files)}
    removed.update(store.delete_stale_clip_rows(batch_key, set(media.column("uuid").to_pylist())))
    del media, written
    gallery = write_gallery(store, batch_key, settings.output_root)
    preview = [
        {
            "thumbnail": _thumbnail(row["media_uri"]),
            "clip": row["uuid"],
            "video": posixpath.basename(row["source_uri"]),
            "span_s": f"{row['span_start_s']:.2f}-{row['span_end_s']:.2f}",
            "kept": row["kept"],
            "filtered_by": row["filtered_by"] or "",
            "motion": round(dict(row["scores"]).get("motion_global_mean", float("nan")), 5),
        }
        for row in _preview_clips(store, batch)
    ]
    return StepSummary(
        "clips",
        batch_key,
        settings.store_uri,
        tables,
        failures,
        seconds,
        records.video_s,
        preview,
        [],
        details={
            **_gallery_details(gallery, output_root),
            "stale_outputs_removed": removed,
            "work": _work(result, records, "segments_encoded", "clip_encode"),
        },
    )


def _work(result: RunResult, records: StepRecords, made: str, stage: str) -> dict[str, int]:
    """What a step made (`made`: the tasks `stage` took in) and what it reused from an earlier run
    (store.reuse)."""
    stats = result.stage_stats
    return {
        "tasks_stored": records.tasks,
        "tasks_reused": records.reused,
        "videos_reused_whole": stats["reuse_stored"].filtered if "reuse_stored" in stats else 0,
        made: stats[stage].tasks_in if stage in stats else 0,
    }


def _preview_clips(store: ClipStore, batch: str) -> list[dict]:
    """A few of the batch's clips, kept ones first: read back from the store, not held by the driver."""
    rows = store.rows("clips", f"{batch} AND kept", limit=PREVIEW_ROWS).to_pylist()
    if len(rows) < PREVIEW_ROWS:
        rows += store.rows("clips", f"{batch} AND NOT kept", limit=PREVIEW_ROWS - len(rows)).to_pylist()
    return sorted(rows, key=lambda r: (not r["kept"], r["source_uri"], r["span_start_s"]))


def _gallery_details(gallery: Gallery, output_root: str) -> dict[str, Any]:
    return {
        "output_folder": output_root,
        "gallery_uri": gallery.uri,
        "kept": gallery.kept,
        "filtered": gallery.filtered,
    }


def _reusing_reader(
    settings: BatchSettings, batch_key: str, commit: BatchCommit, lineage: Lineage, table: str
) -> StoredClipReader:
    """The batch's stored clips, less the videos whose `table` rows an earlier write of the step made
    from the same clips with the same model and code (store.reuse): those are copied, not made again."""
    versions = _pinned_versions(ClipStore(settings.store_uri), [table, task_records.TABLE])
    reuse = ReuseStage(settings.store_uri, commit.commit_id, lineage, (table,), versions)
    return StoredClipReader(settings.store_uri, batch_key, after_listing=reuse)


def _stored_clip_progress(step: str, store: ClipStore, batch_key: str, report) -> Progress:
    kept = store.count("clips", f"batch_key = {sql_literal(batch_key)} AND kept")
    return Progress(step, report, total=kept or None, unit="clips", clips_are_inputs=True)


def _models(stages: list) -> dict[str, str]:
    """role -> model id of the pipeline's model stages."""
    return {s.role: s.model for s in stages if isinstance(s, ClipModelStage)}


def _model_notes(models: dict[str, str], directory: str) -> list[str]:
    return [
        f"{role} model {model_id} has RANDOM weights (a demo model): its output means nothing"
        for role, model_id in models.items()
        if registry.read_card(model_id, directory).get("random")
    ]


def _clip_embeddings(batch_key: str, settings: BatchSettings, run: _Run) -> StepSummary:
    o = settings.options
    directory = registry.location(o.model_dir)
    model_stages = embedding_stages(o)
    models = _models(model_stages)
    model_id = models["embedding"]
    store = ClipStore(settings.store_uri)
    progress = _stored_clip_progress("clip_embeddings", store, batch_key, run.report)
    made_with = {"model": model_id, "aesthetic": o.aesthetic, "aesthetic_threshold": o.aesthetic_threshold}
    lineage = _lineage("clip_embeddings", batch_key, made_with, model_id=model_id)
    table = embeddings_table_name(model_id)
    with store.commit(batch_key, "clip_embeddings", reuse=True) as commit:  # embeddings and failures
        commit.expect(table)  # the workers write the vectors (store.row_writer)
        _expect_records(commit, lineage)
        rows_stage = RowWriterStage(
            settings.store_uri, batch_key, commit.commit_id, EMBEDDINGS, lineage, model_id
        )
        reader = _reusing_reader(settings, batch_key, commit, lineage, table)
        stages = [reader, *model_stages, rows_stage]
        result, seconds = run.execute(Pipeline("clip_embeddings", stages), progress, skip=not progress.total)
        records, failure_list = _stored(store, commit, lineage, result, [table])
        failure_table, failures = _failures(failure_list)
        tables = {
            table: commit.staged_count(table),
            "failures": _write_failures(commit, failure_table, lineage),
        }
        rows = commit.staged(table, ["uuid", "vector"], limit=PREVIEW_ROWS).to_pylist()
    preview = [
        {
            "clip": r["uuid"],
            "dim": len(r["vector"]),
            "first values": str([round(v, 3) for v in r["vector"][:4]]),
        }
        for r in rows
    ]
    return StepSummary(
        "clip_embeddings",
        batch_key,
        settings.store_uri,
        tables,
        failures,
        seconds,
        records.clip_s,
        preview,
        _model_notes(models, directory),
        models,
        details={"work": _work(result, records, "videos_embedded", "row_writer")},
    )


def _clip_captions(batch_key: str, settings: BatchSettings, run: _Run) -> StepSummary:
    o = settings.options
    directory = registry.location(o.model_dir)
    model_stages = caption_stages(o)
    models = _models(model_stages)
    store = ClipStore(settings.store_uri)
    progress = _stored_clip_progress("clip_captions", store, batch_key, run.report)
    lineage = _lineage("clip_captions", batch_key, o, model_id=models["captioning"])
    with store.commit(batch_key, "clip_captions", reuse=True) as commit:  # captions and failures
        commit.expect("clip_captions", schemas.CLIP_CAPTIONS)  # the workers write them (store.row_writer)
        _expect_records(commit, lineage)
        rows_stage = RowWriterStage(settings.store_uri, batch_key, commit.commit_id, CAPTIONS, lineage)
        reader = _reusing_reader(settings, batch_key, commit, lineage, "clip_captions")
        stages = [reader, *model_stages, rows_stage]
        result, seconds = run.execute(Pipeline("clip_captions", stages), progress, skip=not progress.total)
        records, failure_list = _stored(store, commit, lineage, result, ["clip_captions"])
        failure_table, failures = _failures(failure_list)
        tables = {
            "clip_captions": commit.staged_count("clip_captions"),
            "failures": _write_failures(commit, failure_table, lineage),
        }
        columns = ["uuid", "window", "kind", "text"]
        rows = commit.staged("clip_captions", columns, limit=PREVIEW_ROWS).to_pylist()
    gallery = write_gallery(store, batch_key, settings.output_root)  # now with the captions
    preview = [
        {"clip": r["uuid"], "window": r["window"], "kind": r["kind"], "text": _short(r["text"])} for r in rows
    ]
    return StepSummary(
        "clip_captions",
        batch_key,
        settings.store_uri,
        tables,
        failures,
        seconds,
        records.clip_s,
        preview,
        _model_notes(models, directory),
        models,
        details={
            **_gallery_details(gallery, posixpath.join(settings.output_root.rstrip("/"), batch_key)),
            "work": _work(result, records, "videos_captioned", "row_writer"),
        },
    )


SHARD_URIS_LISTED = 100  # shard URIs a summary carries (the batch's index.json lists them all)


def _training_shards(batch_key: str, settings: BatchSettings, run: _Run) -> StepSummary:
    export = export_shards(
        settings.store_uri, batch_key, settings.shards_root, settings.shard_options, run.executor
    )
    stats = merge_stats(s.stats for s in export.shards)
    preview = [
        {
            "shard": posixpath.basename(s.uri),
            "samples": s.samples,
            "MiB": round(s.bytes / 2**20, 2),
            "sha256": s.sha256[:16],
        }
        for s in export.shards[:PREVIEW_ROWS]
    ]
    notes = []
    if not export.samples:
        drops = ", ".join(f"{rule}: {n}" for rule, n in export.dropped.items() if n) or "no clips"
        notes.append(f"no clip of batch {batch_key} passed the selection rules ({drops}): no shards")
    details = {
        "root": export.root,
        "index_uri": export.index_uri,
        "generation": export.generation,
        "shard_uris": [s.uri for s in export.shards[:SHARD_URIS_LISTED]],
        "shards": len(export.shards),
        "samples": export.samples,
        "bytes": export.bytes,
        "candidates": export.candidates,
        "dropped": export.dropped,
        "embedding_model": export.embedding_model,
        "removed_stale_shards": len(export.removed),
    }
    models = {"embedding": export.embedding_model} if export.embedding_model else {}
    return StepSummary(
        "training_shards",
        batch_key,
        settings.store_uri,
        {"training_shards": len(export.shards)},
        export.failures,
        export.pipeline_s,
        stats["seconds"],
        preview,
        notes,
        models,
        details=details,
    )


def _short(text: str, limit: int = 80, word: int = 30) -> str:
    """A caption for a preview cell: one line, at most `limit` characters, and a break opportunity (a
    zero-width space) every `word` characters of a long token, so the cell wraps instead of overflowing."""
    text = " ".join(text.split())
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return " ".join("\u200b".join(t[i : i + word] for i in range(0, len(t), word)) for t in text.split(" "))


def _thumbnail(uri: str | None) -> str:
    if not uri:
        return ""
    try:
        return "data:image/jpeg;base64," + base64.b64encode(thumbnail_jpeg(uri)).decode()
    except Exception as exc:  # noqa: BLE001 - a preview must never fail the step
        logger.warning("no thumbnail for %s: %s", uri, exc)
        return ""


_STEP_FUNCTIONS = {
    "raw_videos": _raw_videos,
    "clips": _clips,
    "clip_embeddings": _clip_embeddings,
    "clip_captions": _clip_captions,
    "training_shards": _training_shards,
}
