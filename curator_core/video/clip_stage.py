"""Base for stages that work on each kept clip of a video on its own, from its encoded bytes."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from typing import ClassVar

import av

from curator_core.stage import ProcessingStage
from curator_core.tasks import Clip, Video, VideoTask


class ClipStage(ProcessingStage[VideoTask, VideoTask]):
    """Calls `process_clip` for every clip that has encoded media. A clip whose media cannot be decoded
    gets the reason under `clip.errors[error_key]`; the other clips and the video go on."""

    error_key: ClassVar[str] = "clip"
    recoverable: ClassVar[tuple[type[Exception], ...]] = (av.error.FFmpegError,)

    def inputs(self) -> tuple[list[str], list[str]]:
        return [], ["clips"]

    def outputs(self) -> tuple[list[str], list[str]]:
        return [], ["clips"]

    def process(self, task: VideoTask) -> VideoTask:
        for clip in task.data.clips:
            if not clip.encoded_data:
                continue
            try:
                self.process_clip(clip)
            except self.recoverable as exc:
                clip.errors[self.error_key] = f"{type(exc).__name__}: {exc}"
        return task

    @abstractmethod
    def process_clip(self, clip: Clip) -> None: ...


def filter_clips(video: Video, keep: Callable[[Clip], bool], filtered_by: str) -> None:
    """Move the clips that `keep` rejects to `video.filtered_clips`, marked with the filter's name."""
    kept = []
    for clip in video.clips:
        if keep(clip):
            kept.append(clip)
        else:
            clip.metadata["filtered_by"] = filtered_by
            video.filtered_clips.append(clip)
    video.clips = kept
