"""Table schemas, declared once. Every row carries lineage; `row_id` is each table's unique key."""

from __future__ import annotations

import pyarrow as pa

LINEAGE_FIELDS = [
    pa.field("batch_key", pa.string(), nullable=False),  # the Dagster partition / upload batch
    pa.field("source_uri", pa.string()),
    pa.field("content_hash", pa.string()),  # of the source video
    pa.field("pipeline", pa.string()),
    pa.field("code_version", pa.string()),
    pa.field("params_hash", pa.string()),  # hash of the stage parameters that made the row
    pa.field("model_id", pa.string()),  # where a model was used
    pa.field("created_at", pa.timestamp("us", tz="UTC")),
    pa.field("commit_id", pa.string()),  # the write that made the row (store.commits)
]


def _schema(*fields: pa.Field) -> pa.Schema:
    return pa.schema([pa.field("row_id", pa.string(), nullable=False), *fields, *LINEAGE_FIELDS])


VIDEOS = _schema(
    pa.field("video_id", pa.string()),
    pa.field("status", pa.string()),  # "ok" | "failed"
    pa.field("error", pa.string()),
    pa.field("metadata_json", pa.string()),
    pa.field("num_clips", pa.int64()),
)

CLIPS = _schema(
    pa.field("uuid", pa.string()),
    pa.field("video_id", pa.string()),
    pa.field("span_start_s", pa.float64()),
    pa.field("span_end_s", pa.float64()),
    pa.field("duration_s", pa.float64()),
    pa.field("media_uri", pa.string()),
    pa.field(
        "media_bytes", pa.int64()
    ),  # recorded when written: exports plan shards without a request per file
    pa.field("preview_uri", pa.string()),
    pa.field("kept", pa.bool_()),
    pa.field("filtered_by", pa.string()),
    pa.field("scores", pa.map_(pa.string(), pa.float64())),
)

CLIP_CAPTIONS = _schema(
    pa.field("uuid", pa.string()),
    pa.field("window", pa.int64()),  # index of the caption window within the clip
    pa.field("start_frame", pa.int64()),
    pa.field("end_frame", pa.int64()),
    pa.field("prompt_id", pa.string()),
    pa.field("kind", pa.string()),  # "caption" (VLM) | "enhanced" (rewritten by a text LM)
    pa.field("text", pa.string()),
)

CLIP_DUPLICATES = _schema(
    pa.field("uuid", pa.string()),
    pa.field("duplicate_of", pa.string()),
    pa.field("similarity", pa.float64()),
    pa.field("reason", pa.string()),
)

FAILURES = _schema(
    pa.field("stage", pa.string()),
    pa.field("input", pa.string()),
    pa.field("exception_type", pa.string()),
    pa.field("message", pa.string()),
)


TRAINING_SHARDS = _schema(  # one row per WebDataset shard of a batch; content_hash is the shard's sha256
    pa.field("shard_index", pa.int64()),
    pa.field("shard_uri", pa.string()),
    pa.field("generation", pa.string()),  # hash of the rules and the selected clips: part of the name
    pa.field("samples", pa.int64()),
    pa.field("bytes", pa.int64()),
    pa.field("parts", pa.string()),  # extensions every sample carries, comma-separated
    pa.field("caption_model", pa.string()),
    pa.field("rules_json", pa.string()),  # the ShardOptions used
    pa.field("stats_json", pa.string()),  # mergeable histograms of durations and scores (training.stats)
)


STEP_TASKS = _schema(  # one row per task a step stored (store.task_records): what a resumed step reuses
    pa.field("segment_index", pa.int64()),
    pa.field("segment_count", pa.int64()),
    pa.field("rows_json", pa.string()),  # {table: rows the task wrote}
    pa.field("clips", pa.int64()),
    pa.field("clip_s", pa.float64()),
    pa.field("duration_s", pa.float64()),  # of the source video, where probed
    pa.field("files", pa.list_(pa.string())),  # metadata files the task wrote besides its clips' media
    pa.field("failures_json", pa.string()),  # the task's failures: [{row_id, stage, input, type, message}]
    pa.field("reused_from", pa.string()),  # the earlier write that made the rows it copied; null: made here
)


def clip_embeddings(dim: int) -> pa.Schema:
    """Embeddings of one model: the vector column is sized for that model."""
    return _schema(pa.field("uuid", pa.string()), pa.field("vector", pa.list_(pa.float32(), dim)))


# What each column holds, for people reading a table (the Dagster UI shows these beside the schema).
COLUMN_DESCRIPTIONS: dict[str, str] = {
    "row_id": "unique key of the row in its table",
    "batch_key": "the upload batch (Dagster partition) the row belongs to",
    "source_uri": "the source video the row derives from",
    "content_hash": "hash of the source video's content (of the shard, in training_shards)",
    "pipeline": "the step that wrote the row",
    "code_version": "version of the code that wrote the row",
    "params_hash": "hash of the parameters the row was made with",
    "model_id": "the model that made the row, where one was used",
    "created_at": "when the row was written (UTC)",
    "commit_id": "the write that made the row: rows of one write become visible together",
    "video_id": "id of the source video within the batch",
    "status": "ok, partial (some errors) or failed",
    "error": "why the video could not be used (stage: reason; source_uri names the file)",
    "metadata_json": "probed metadata of the video (size, fps, codec, duration, ...)",
    "num_clips": "clips cut from the video",
    "uuid": "the clip's id: UUID5 of its source and span, the same on every re-run",
    "span_start_s": "start of the clip in the source, seconds (PTS)",
    "span_end_s": "end of the clip in the source, seconds (PTS)",
    "duration_s": "length of the clip, seconds",
    "media_uri": "the clip's MP4 (kept clips only)",
    "media_bytes": "size of the clip's MP4 in bytes, recorded when it was written",
    "preview_uri": "the clip's animated WebP preview",
    "kept": "whether the clip passed every filter",
    "filtered_by": "the filter that dropped the clip (null when kept)",
    "scores": "scores by name: motion_global_mean, motion_patch_min, aesthetic, ...",
    "window": "index of the caption window within the clip",
    "start_frame": "first frame of the window (at the captioning frame rate)",
    "end_frame": "end of the window, exclusive",
    "prompt_id": "the prompt variant the caption was written for",
    "kind": "caption (by the VLM) or enhanced (rewritten by the text model)",
    "text": "the caption",
    "duplicate_of": "the kept clip this one duplicates",
    "similarity": "cosine similarity to the clip it duplicates",
    "reason": "why the clip counts as a duplicate",
    "stage": "the stage where the input failed",
    "input": "the file or clip that failed",
    "exception_type": "type of the error",
    "message": "the error message",
    "vector": "unit-norm embedding of the clip",
    "shard_index": "position of the shard in the batch's index",
    "shard_uri": "where the shard is",
    "generation": "hash of the rules and the selected clips, part of the shard's name",
    "samples": "samples (clips) in the shard",
    "bytes": "size of the shard in bytes",
    "parts": "extensions every sample carries",
    "caption_model": "the model of the samples' captions",
    "rules_json": "the selection rules and sizes (ShardOptions) used",
    "stats_json": "histograms of the samples' durations and scores",
    "segment_index": "which segment of its video the task was (0 for a video in one piece)",
    "segment_count": "segments its video was cut into",
    "rows_json": "rows the task wrote, by table",
    "clips": "clips the task stored",
    "clip_s": "seconds of clips the task stored",
    "files": "metadata files the task wrote besides its clips' media",
    "failures_json": "the task's failures, as failures rows without lineage",
    "reused_from": "the earlier write that made the task's rows, when they were copied (null: made here)",
}

TABLES: dict[str, pa.Schema] = {
    "videos": VIDEOS,
    "clips": CLIPS,
    "clip_captions": CLIP_CAPTIONS,
    "clip_duplicates": CLIP_DUPLICATES,
    "failures": FAILURES,
    "training_shards": TRAINING_SHARDS,
    "step_tasks": STEP_TASKS,
}
