"""Writing results under an output root (local path or fsspec URL).

Layout (no part of a path comes from user file names):
  clips/<clip uuid>.mp4, previews/<clip uuid>.webp
  metadata/clips/<video id>[.seg<i>].parquet   one row per clip, kept or filtered
  metadata/videos/<video id>[.seg<i>].json     per-video summary: source, metadata, errors, counts
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import posixpath
from collections.abc import Iterable
from dataclasses import dataclass

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from curator_core.atomic import write_atomic
from curator_core.listing import find_files
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
        ("encoding", pa.string()),  # "smart_cut" or "reencode" (video.smart_cut)
        ("encoding_reason", pa.string()),  # why a clip was re-encoded in full
        ("scores", pa.map_(pa.string(), pa.float64())),
        ("errors", pa.map_(pa.string(), pa.string())),
    ]
)


WRITE_ERROR = "write"
OUTPUT_FOLDERS = ("clips", "previews", "metadata")  # what ClipWriterStage writes under an output root


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
        """Every file appears under its final name only when complete (atomic_open). A video whose media
        cannot be written (a full disk, a refused upload) keeps nothing half-written: what it wrote is
        removed, its clips become filtered with the reason, and the video records the failure."""
        video = task.data
        fs, root = fsspec.core.url_to_fs(self.output_root)
        written: list[str] = []
        try:
            for clip in video.clips:
                written += self._write_media(root, fs, clip)
        except OSError as exc:
            for uri in written:
                with contextlib.suppress(OSError):
                    fs.rm(uri)
            reason = f"writing the clip media failed ({type(exc).__name__}: {exc})"
            video.errors[WRITE_ERROR] = reason
            for clip in video.clips:
                clip.errors[WRITE_ERROR] = reason
                clip.encoded_data = None
                for key in ("media_uri", "media_bytes", "preview_uri"):
                    clip.metadata.pop(key, None)
            video.filtered_clips.extend(video.clips)
            video.clips = []
        video_id = source_id(video.input_path)
        suffix = f".seg{video.segment[0]}" if video.segment else ""
        rows = [self._row(c, video_id, True) for c in video.clips]
        rows += [self._row(c, video_id, False) for c in video.filtered_clips]
        clips_path = _join(root, "metadata", "clips", f"{video_id}{suffix}.parquet")
        table = io.BytesIO()  # one video's rows: small
        pq.write_table(pa.Table.from_pylist(rows, schema=CLIP_SCHEMA), table)
        write_atomic(_uri(fs, clips_path), table.getvalue())
        summary_path = _join(root, "metadata", "videos", f"{video_id}{suffix}.json")
        summary = json.dumps(self._summary(video, video_id, clips_path), indent=2)
        write_atomic(_uri(fs, summary_path), summary.encode())
        task.metadata["clips_table"] = clips_path
        task.metadata["video_summary"] = summary_path
        return task

    def _write_media(self, root: str, fs, clip: Clip) -> list[str]:
        """Writes the clip's media and preview; returns the paths written."""
        written = []
        if clip.encoded_data:
            path = _join(root, "clips", f"{clip.uuid}.mp4")
            write_atomic(_uri(fs, path), clip.encoded_data)
            written.append(path)
            clip.metadata["media_uri"] = _uri(fs, path)
            clip.metadata["media_bytes"] = len(clip.encoded_data)
            if self.drop_media_after_write:
                clip.encoded_data = None
        preview = clip.metadata.pop("preview_webp", None)
        if preview:
            path = _join(root, "previews", f"{clip.uuid}.webp")
            write_atomic(_uri(fs, path), preview)
            written.append(path)
            clip.metadata["preview_uri"] = _uri(fs, path)
        return written

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
            "encoding": clip.metadata.get("encoding"),
            "encoding_reason": clip.metadata.get("encoding_reason"),
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


def prune_outputs(output_root: str, keep: Iterable[str | None]) -> int:
    """Remove the files under the writer's folders of `output_root` that are not in `keep` (URIs or
    paths of what the run wrote): what a run with other settings, or a killed one, left behind. Call it
    once the run's rows are committed. Returns how many files it removed."""
    fs, root = fsspec.core.url_to_fs(output_root)
    wanted = {fs._strip_protocol(uri) for uri in keep if uri}
    if not fs.exists(root):
        return 0
    # the three folders' listings run side by side (curator_core.listing)
    stale = [p for p in find_files(fs, root, only=OUTPUT_FOLDERS) if fs._strip_protocol(p) not in wanted]
    if stale:
        fs.rm(stale)
    return len(stale)
