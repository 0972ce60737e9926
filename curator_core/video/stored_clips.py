"""Reading a batch's kept clips back from the clip store, so later steps (embedding, captioning) run on
what an earlier run wrote, in another run, process or cluster."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import ClassVar

import fsspec

from curator_core.resources import Resources
from curator_core.stage import CompositeStage, ProcessingStage
from curator_core.store.store import ClipStore, sql_literal
from curator_core.tasks import Clip, EmptyTask, Video, VideoTask


@dataclass
class StoredClipListingStage(ProcessingStage[EmptyTask, VideoTask]):
    """One VideoTask per source video of the batch, holding its kept clips (ids, spans, media URIs). Its
    `content_hash` is a fingerprint of those clips (ids, media, and the parameters that made them), so
    that a later run reuses what was made of them only while they are the same (store.reuse)."""

    store_uri: str = ""
    batch_key: str = ""
    dataset_name: str = "clips"
    name: str = "stored_clip_listing"
    fans_out: ClassVar[bool] = True
    resources: Resources = Resources(cpus=0.25)

    def outputs(self) -> tuple[list[str], list[str]]:
        return [], ["input_path", "clips"]

    def process(self, task: EmptyTask) -> list[VideoTask]:
        where = f"batch_key = {sql_literal(self.batch_key)} AND kept = true"
        rows = ClipStore(self.store_uri).rows("clips", where).to_pylist()
        videos: dict[str, Video] = {}
        digests: dict[str, hashlib._Hash] = {}
        for row in sorted(rows, key=lambda r: (r["source_uri"], r["span_start_s"])):
            video = videos.setdefault(row["source_uri"], Video(input_path=row["source_uri"]))
            clip = Clip(
                source=row["source_uri"], span=(row["span_start_s"], row["span_end_s"]), uuid=row["uuid"]
            )
            clip.metadata["media_uri"] = row["media_uri"]
            clip.metadata["preview_uri"] = row["preview_uri"]
            clip.scores.update(dict(row["scores"] or []))
            video.clips.append(clip)
            made = (
                row["uuid"],
                row["media_uri"],
                row["media_bytes"],
                row["code_version"],
                row["params_hash"],
            )
            digests.setdefault(row["source_uri"], hashlib.sha256()).update(repr(made).encode())
        for source, video in videos.items():
            video.content_hash = "clips:" + digests[source].hexdigest()[:32]
        return [VideoTask(dataset_name=self.dataset_name, data=v) for v in videos.values()]


@dataclass
class ClipMediaLoadStage(ProcessingStage[VideoTask, VideoTask]):
    """Loads each clip's encoded media from its URI (local path or fsspec URL)."""

    name: str = "clip_media_load"
    resources: Resources = Resources(cpus=0.25)
    error_key: ClassVar[str] = "media_load"

    def inputs(self) -> tuple[list[str], list[str]]:
        return [], ["clips"]

    def outputs(self) -> tuple[list[str], list[str]]:
        return [], ["clips"]

    def process(self, task: VideoTask) -> VideoTask:
        for clip in task.data.clips:
            uri = clip.metadata.get("media_uri")
            try:
                with fsspec.open(uri, "rb") as handle:
                    clip.encoded_data = handle.read()
            except (OSError, ValueError, TypeError) as exc:
                clip.errors[self.error_key] = f"cannot read {uri}: {type(exc).__name__}: {exc}"
        return task


@dataclass
class StoredClipReader(CompositeStage[EmptyTask, VideoTask]):
    """The kept clips of one batch of the clip store, with their media loaded."""

    store_uri: str = ""
    batch_key: str = ""
    name: str = "stored_clip_reader"
    after_listing: ProcessingStage | None = None  # before the media load (a step's store.reuse)

    def decompose(self) -> list[ProcessingStage]:
        middle = [self.after_listing] if self.after_listing else []
        return [StoredClipListingStage(self.store_uri, self.batch_key), *middle, ClipMediaLoadStage()]
