"""Turning a pipeline run into store rows with lineage, and writing them batch by batch."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from curator_core.executors.base import RunResult
from curator_core.store.store import ClipStore, sql_literal
from curator_core.tasks import Clip, VideoTask
from curator_core.video.io import source_id


@dataclass(frozen=True)
class Lineage:
    """Where rows came from: the batch, the pipeline and code version, and the parameters used."""

    batch_key: str
    pipeline: str
    code_version: str
    params_hash: str
    model_id: str | None = None

    @property
    def scope(self) -> str:
        """The rows of a batch this pipeline owns in shared tables (failures)."""
        return f"pipeline = {sql_literal(self.pipeline)}"

    def columns(self, source_uri: str | None, content_hash: str | None) -> dict[str, Any]:
        return {
            "batch_key": self.batch_key,
            "source_uri": source_uri,
            "content_hash": content_hash,
            "pipeline": self.pipeline,
            "code_version": self.code_version,
            "params_hash": self.params_hash,
            "model_id": self.model_id,
        }


def params_hash(*configs: Any) -> str:
    """A stable hash of stage configurations (dataclasses or dicts), for lineage."""
    parts = [
        dataclasses.asdict(c)
        if dataclasses.is_dataclass(c)
        else c.model_dump()
        if isinstance(c, BaseModel)
        else c
        for c in configs
    ]
    blob = json.dumps([type(c).__name__ for c in configs] + parts, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def video_rows(tasks: list[VideoTask], lineage: Lineage) -> list[dict]:
    """One row per input video (its segments merged)."""
    merged: dict[str, dict] = {}
    for task in tasks:
        video = task.data
        vid = source_id(video.input_path)
        row = merged.get(vid)
        if row is None:
            row = merged[vid] = {
                "row_id": vid,
                "video_id": vid,
                "metadata_json": json.dumps(dataclasses.asdict(video.metadata)) if video.metadata else None,
                "num_clips": 0,
                "_errors": {},
                **lineage.columns(video.input_path, video.content_hash),
            }
        row["num_clips"] += len(video.clips)
        row["_errors"].update(video.errors)
    for row in merged.values():
        errors = row.pop("_errors")
        row["status"] = "failed" if errors.get("read") else ("partial" if errors else "ok")
        row["error"] = "; ".join(f"{k}: {v}" for k, v in sorted(errors.items())) or None
    return list(merged.values())


def clip_rows(tasks: list[VideoTask], lineage: Lineage, hashes: dict[str, str | None]) -> list[dict]:
    rows = []
    for task in tasks:
        video = task.data
        for clip, kept in [(c, True) for c in video.clips] + [(c, False) for c in video.filtered_clips]:
            rows.append(_clip_row(clip, kept, video.input_path, lineage, hashes.get(video.input_path)))
    return rows


def _clip_row(clip: Clip, kept: bool, source: str, lineage: Lineage, chash: str | None) -> dict:
    return {
        "row_id": clip.uuid,
        "uuid": clip.uuid,
        "video_id": source_id(source),
        "span_start_s": clip.span[0],
        "span_end_s": clip.span[1],
        "duration_s": clip.duration_s,
        "media_uri": clip.metadata.get("media_uri") if kept else None,
        "media_bytes": clip.metadata.get("media_bytes") if kept else None,
        "preview_uri": clip.metadata.get("preview_uri") if kept else None,
        "kept": kept,
        "filtered_by": clip.metadata.get("filtered_by") or (None if kept else "error"),
        "scores": list(clip.scores.items()),
        **lineage.columns(source, chash),
    }


def failure_rows(result: RunResult, lineage: Lineage) -> list[dict]:
    """The failures rows of a run: what its output tasks carry, and the tasks that raised."""
    rows = [row for task in result.outputs for row in task_failure_rows(task, lineage)]
    return rows + raised_failure_rows(result, lineage)


def task_failure_rows(task: VideoTask, lineage: Lineage) -> list[dict]:
    """The failures rows of one task: the errors of its video and of its clips."""
    rows = []
    for stage, message in task.data.errors.items():
        rows.append(
            {
                "row_id": f"{lineage.pipeline}:{stage}:{task.data.input_path}:{task.data.segment}",
                "stage": stage,
                "input": task.data.input_path,
                "exception_type": "VideoError",
                "message": message,
                **lineage.columns(task.data.input_path, None),
            }
        )
    for clip in task.data.clips + task.data.filtered_clips:
        for stage, message in clip.errors.items():
            rows.append(
                {
                    "row_id": f"{lineage.pipeline}:{stage}:{clip.uuid}",
                    "stage": stage,
                    "input": f"{task.data.input_path} [{clip.span[0]:.3f}-{clip.span[1]:.3f}s]",
                    "exception_type": "ClipError",
                    "message": message,
                    **lineage.columns(task.data.input_path, None),
                }
            )
    return rows


def raised_failure_rows(result: RunResult, lineage: Lineage) -> list[dict]:
    """The failures rows of the tasks that raised (or whose worker kept dying)."""
    rows = []
    for failure in result.failures:
        source = failure.source
        rows.append(
            {
                "row_id": f"{lineage.pipeline}:{failure.stage}:{failure.task_id}",
                "stage": failure.stage,
                "input": source or failure.task_id,
                "exception_type": failure.error_type,
                "message": failure.message,
                **lineage.columns(source, None),
            }
        )
    return rows


def embedding_rows(tasks: list[VideoTask], model_id: str, lineage: Lineage) -> list[dict]:
    rows = []
    for task in tasks:
        for clip in task.data.clips:
            vector = clip.embeddings.get(model_id)
            if vector is not None:
                rows.append(
                    {
                        "row_id": clip.uuid,
                        "uuid": clip.uuid,
                        "vector": vector.astype("float32").tolist(),
                        **lineage.columns(task.data.input_path, None),
                        "model_id": model_id,
                    }
                )
    return rows


def caption_rows(tasks: list[VideoTask], lineage: Lineage) -> list[dict]:
    """One row per (clip, window, model, kind): VLM captions and their enhanced rewrites."""
    rows = []
    for task in tasks:
        for clip in task.data.clips:
            for index, window in enumerate(clip.caption_windows):
                for kind, texts in (("caption", window.captions), ("enhanced", window.enhanced_captions)):
                    for model_id, text in texts.items():
                        rows.append(
                            {
                                "row_id": f"{clip.uuid}:{index}:{window.prompt_id}:{kind}:{model_id}",
                                "uuid": clip.uuid,
                                "window": index,
                                "start_frame": window.start_frame,
                                "end_frame": window.end_frame,
                                "prompt_id": window.prompt_id,
                                "kind": kind,
                                "text": text,
                                **lineage.columns(task.data.input_path, None),
                                "model_id": model_id,
                            }
                        )
    return rows


def write_run(store: ClipStore, result: RunResult, lineage: Lineage) -> dict[str, int]:
    """Replace the batch's videos, clips and failures (and captions, embeddings) with this run's, at one
    commit point. Media must already be written."""
    from curator_core.store import schemas

    tasks = [t for t in result.outputs if isinstance(t, VideoTask)]
    videos = video_rows(tasks, lineage)
    hashes = {row["source_uri"]: row["content_hash"] for row in videos}
    with store.commit(lineage.batch_key, lineage.pipeline) as commit:  # every table at one commit point
        counts = {
            "videos": commit.replace("videos", videos, schemas.VIDEOS),
            "clips": commit.write_clips(clip_rows(tasks, lineage, hashes)),
            "failures": commit.replace(
                "failures", failure_rows(result, lineage), schemas.FAILURES, lineage.scope
            ),
        }
        captions = caption_rows(tasks, lineage)
        if captions:
            counts["clip_captions"] = commit.replace("clip_captions", captions, schemas.CLIP_CAPTIONS)
        for model_id in sorted({m for t in tasks for c in t.data.clips for m in c.embeddings}):
            rows = embedding_rows(tasks, model_id, lineage)
            counts[f"embeddings:{model_id}"] = commit.write_embeddings(model_id, rows)
    return counts
