"""Reading: list the inputs, then probe each one. Bad inputs are recorded on their task, never raised."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar

from curator_core.resources import Resources, cluster_cpus
from curator_core.stage import CompositeStage, ProcessingStage
from curator_core.tasks import EmptyTask, Video, VideoTask
from curator_core.video.io import (
    DEFAULT_EXTENSIONS,
    VideoInputError,
    list_videos,
    probe,
    resolve_inputs,
    safe_content_hash,
)

logger = logging.getLogger(__name__)

READ_ERROR = "read"
# task.metadata of every listed video (segment sizes follow them): how many videos the listing found, and
# the CPUs of the cluster then (asked once per batch here, not once per video where segments are cut).
BATCH_VIDEOS = "batch_videos"
BATCH_CPUS = "batch_cpus"


@dataclass
class FileListingStage(ProcessingStage[EmptyTask, VideoTask]):
    """Turns the seed task into one VideoTask per input file found under `inputs`."""

    inputs_: tuple[str, ...] = ()
    recursive: bool = True
    extensions: tuple[str, ...] = DEFAULT_EXTENSIONS
    limit: int = 0
    dataset_name: str = "videos"
    glob: str | None = None  # match this pattern under each folder instead of listing its videos
    name: str = "file_listing"
    fans_out: ClassVar[bool] = True
    resources: Resources = Resources(cpus=0.25)

    def outputs(self) -> tuple[list[str], list[str]]:
        return [], ["input_path"]

    def process(self, task: EmptyTask) -> list[VideoTask]:
        paths: list[str] = []
        empty: list[str] = []  # inputs under which nothing was found: each is recorded as a failed input
        for root in self.inputs_:
            found = list_videos(root, self.recursive, self.extensions, glob=self.glob)
            paths.extend(found)
            if not found:
                empty.append(root)
        paths = list(dict.fromkeys(paths))
        if self.limit:
            paths = paths[: self.limit]
        tasks = [VideoTask(dataset_name=self.dataset_name, data=Video(input_path=p)) for p in paths]
        for root in empty:
            video = Video(input_path=root)
            what = f"no file matches {self.glob!r}" if self.glob else "no video file"
            video.errors[READ_ERROR] = f"{what} under this folder (extensions: {' '.join(self.extensions)})"
            tasks.append(VideoTask(dataset_name=self.dataset_name, data=video))
        cpus = cluster_cpus()
        for task in tasks:
            task.metadata.update({BATCH_VIDEOS: len(paths), BATCH_CPUS: cpus})
        return tasks


@dataclass
class VideoReaderStage(ProcessingStage[VideoTask, VideoTask]):
    """Probes each video's metadata with PyAV, streaming from its file or URL."""

    name: str = "video_reader"
    resources: Resources = Resources(cpus=0.5)

    def inputs(self) -> tuple[list[str], list[str]]:
        return [], ["input_path"]

    def outputs(self) -> tuple[list[str], list[str]]:
        return [], ["metadata"]

    def process(self, task: VideoTask) -> VideoTask:
        video = task.data
        if READ_ERROR in video.errors:  # the listing found nothing there: already recorded
            return task
        video.content_hash = safe_content_hash(video.input_path)  # here, in parallel, not on the driver
        try:
            video.metadata = probe(video.input_path)
        except VideoInputError as exc:
            video.errors[READ_ERROR] = exc.reason
            logger.warning("%s", exc)
        except OSError as exc:
            video.errors[READ_ERROR] = f"cannot read ({exc})"
            logger.warning("%s: %s", video.input_path, video.errors[READ_ERROR])
        return task


@dataclass
class VideoReader(CompositeStage[EmptyTask, VideoTask]):
    """List videos under one or more local folders / fsspec URLs, then probe each."""

    inputs_: tuple[str, ...] | list[str] | str = ()
    recursive: bool = True
    extensions: tuple[str, ...] = DEFAULT_EXTENSIONS
    limit: int = 0
    dataset_name: str = "videos"
    glob: str | None = None

    def decompose(self) -> list[ProcessingStage]:
        """Runs on the driver when the pipeline is built: the inputs are resolved and checked here."""
        roots = (self.inputs_,) if isinstance(self.inputs_, str) else tuple(self.inputs_)
        roots = tuple(resolve_inputs(roots))
        return [
            FileListingStage(
                roots, self.recursive, self.extensions, self.limit, self.dataset_name, self.glob
            ),
            VideoReaderStage(),
        ]
