"""The last stage of a pipeline whose results go back to the driver: only small records leave the workers.

A task that reaches the driver keeps its ids, spans, scores, embedding vectors, captions and errors. The
media bytes, decoded frames and per-frame embeddings (1.5 MB a clip in the embeddings step, about 7 MB in
the captions step) stay on the worker, so what the driver holds grows by a few KB per clip, not by the
media.
"""

from __future__ import annotations

from dataclasses import dataclass

from curator_core.resources import Resources
from curator_core.stage import ProcessingStage
from curator_core.tasks import VideoTask

WORKER_ONLY_METADATA = ("frame_embeddings", "preview_webp")  # per-clip metadata too large for the driver


@dataclass
class DropWorkerDataStage(ProcessingStage[VideoTask, VideoTask]):
    """Drops each clip's media bytes, decoded frames and per-frame arrays (and a video's source bytes)."""

    name: str = "drop_worker_data"
    resources: Resources = Resources(cpus=0.1)

    def process(self, task: VideoTask) -> VideoTask:
        return drop_worker_data(task)


def drop_worker_data(task: VideoTask) -> VideoTask:
    """`task` without the media bytes, frames and per-frame arrays its clips (and video) carry."""
    video = task.data
    video.source_bytes = None
    for clip in video.clips + video.filtered_clips:
        clip.encoded_data = None
        clip.extracted_frames = {}
        for key in WORKER_ONLY_METADATA:
            clip.metadata.pop(key, None)
    return task
