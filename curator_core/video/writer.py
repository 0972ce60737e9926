"""Writing results under an output root (local path or fsspec URL).

Layout (no part of a path comes from user file names):
  clips/<clip uuid>.mp4, previews/<clip uuid>.webp
  metadata/clips/<video id>[.seg<i>].parquet   one row per clip, kept or filtered
  metadata/videos/<video id>[.seg<i>].json     per-video summary: source, metadata, errors, counts
"""

from __future__ import annotations

import dataclasses
import json
import posixpath
from dataclasses import dataclass

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from curator_core.resources import Resources
from curator_core.stage import ProcessingStage
from curator_core.tasks import Clip, Video, VideoTask
from curator_core.video.io import source_id

CLIP_SCHEMA = pa.schema(
    [
        ("uuid", pa.string()),
        ("video_id", pa.string()),
        ("source", pa.string()),
        ("span_start_s", pa.float64()),
        ("span_end_s", pa.float64()),
        ("duration_s", pa.float64()),
        ("kept", pa.bool_()),
        ("filtered_by", pa.string()),
        ("media_uri", pa.string()),
        ("media_bytes", pa.int64()),
        ("preview_uri", pa.string()),
        ("num_frames", pa.int64()),
        ("scores", pa.map_(pa.string(), pa.float64())),
        ("errors", pa.map_(pa.string(), pa.string())),
    ]
)


def _join(root: str, *parts: str) -> str:
    return posixpath.join(root.rstrip("/"), *parts)


@dataclass
class ClipWriterStage(ProcessingStage[VideoTask, VideoTask]):
    """Writes clip media, previews and metadata records; with `drop_media_after_write`, the encoded bytes
    leave the task once they are on storage (the task keeps their URIs)."""

    output_root: str = "outputs"
    drop_media_after_write: bool = True
    name: str = "clip_writer"
    resources: Resources = Resources(cpus=0.25)

    def inputs(self) -> tuple[list[str], list[str]]:
        return [], ["input_path"]

    def process(self, task: VideoTask) -> VideoTask:
        video = task.data
        fs, root = fsspec.core.url_to_fs(self.output_root)
        for clip in video.clips:
            self._write_media(fs, root, clip)
        video_id = source_id(video.input_path)
        suffix = f".seg{video.segment[0]}" if video.segment else ""
        rows = [self._row(c, video_id, True) for c in video.clips]
        rows += [self._row(c, video_id, False) for c in video.filtered_clips]
        clips_path = _join(root, "metadata", "clips", f"{video_id}{suffix}.parquet")
        fs.makedirs(posixpath.dirname(clips_path), exist_ok=True)
        with fs.open(clips_path, "wb") as handle:
            pq.write_table(pa.Table.from_pylist(rows, schema=CLIP_SCHEMA), handle)
        summary_path = _join(root, "metadata", "videos", f"{video_id}{suffix}.json")
        fs.makedirs(posixpath.dirname(summary_path), exist_ok=True)
        with fs.open(summary_path, "w") as handle:
            json.dump(self._summary(video, video_id, clips_path), handle, indent=2)
        task.metadata["clips_table"] = clips_path
        task.metadata["video_summary"] = summary_path
        return task

    def _write_media(self, fs, root: str, clip: Clip) -> None:
        if clip.encoded_data:
            path = _join(root, "clips", f"{clip.uuid}.mp4")
            fs.makedirs(posixpath.dirname(path), exist_ok=True)
            fs.pipe_file(path, clip.encoded_data)
            clip.metadata["media_uri"] = _uri(fs, path)
            clip.metadata["media_bytes"] = len(clip.encoded_data)
            if self.drop_media_after_write:
                clip.encoded_data = None
        preview = clip.metadata.pop("preview_webp", None)
        if preview:
            path = _join(root, "previews", f"{clip.uuid}.webp")
            fs.makedirs(posixpath.dirname(path), exist_ok=True)
            fs.pipe_file(path, preview)
            clip.metadata["preview_uri"] = _uri(fs, path)

    @staticmethod
    def _row(clip: Clip, video_id: str, kept: bool) -> dict:
        return {
            "uuid": clip.uuid,
            "video_id": video_id,
            "source": clip.source,
            "span_start_s": clip.span[0],
            "span_end_s": clip.span[1],
            "duration_s": clip.duration_s,
            "kept": kept,
            "filtered_by": clip.metadata.get("filtered_by") or (None if kept else "error"),
            "media_uri": clip.metadata.get("media_uri"),
            "media_bytes": clip.metadata.get("media_bytes"),
            "preview_uri": clip.metadata.get("preview_uri"),
            "num_frames": clip.metadata.get("num_frames"),
            "scores": list(clip.scores.items()),
            "errors": list(clip.errors.items()),
        }

    @staticmethod
    def _summary(video: Video, video_id: str, clips_path: str) -> dict:
        return {
            "video_id": video_id,
            "source": video.input_path,
            "segment": list(video.segment) if video.segment else None,
            "metadata": dataclasses.asdict(video.metadata) if video.metadata else None,
            "errors": video.errors,
            "num_clips": len(video.clips),
            "num_filtered_clips": len(video.filtered_clips),
            "clips_table": clips_path,
        }


def _uri(fs, path: str) -> str:
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return path if protocol in ("file", "local") else fs.unstrip_protocol(path)
