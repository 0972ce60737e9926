"""The data that flows through a pipeline: tasks and the video/clip records they carry.

Data only: no I/O and no model-specific fields. Scores, embeddings and captions are generic
mappings keyed by score name or model id, so new models never change these classes.
Times are PTS seconds everywhere a span is stored.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np

T = TypeVar("T")

# Namespace for deterministic clip ids: uuid5(namespace, f"{source}|{start:.6f}|{end:.6f}").
CLIP_UUID_NAMESPACE = uuid.UUID("6f1e0d5c-64a0-4c7e-9d0b-0c5c1a8f2e11")


@dataclass
class StagePerf:
    """How long one stage spent on one task, and where."""

    stage: str
    process_time_s: float
    worker_id: str = ""
    num_items_in: int = 1
    num_items_out: int = 1


@dataclass
class Task(Generic[T]):
    """One unit of work: a payload plus bookkeeping.

    `task_id` is assigned by the framework: initial tasks get their index, a task produced by a
    stage inherits its parent's id, with `.<n>` appended when a stage fans one task out into many.
    Users never have to pass it.
    """

    dataset_name: str
    data: T
    task_id: str = ""
    stage_perf: list[StagePerf] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class EmptyTask(Task[None]):
    """The single seed task of a pipeline whose first stage produces its own inputs (e.g. a reader).
    `EmptyTask()` needs no arguments."""

    dataset_name: str = "empty"
    data: None = None


@dataclass
class FailedTask:
    """A task that raised in a stage: it leaves the pipeline here, with the reason, and the run goes on."""

    stage: str
    task_id: str
    dataset_name: str
    error_type: str
    message: str
    traceback: str = ""
    task: Any = None  # the input task as it entered the failing stage, when it could be kept
    source: str | None = None  # the input file it came from, when known (a report names it, not the id)

    def __post_init__(self) -> None:
        if self.source is None:
            self.source = getattr(getattr(self.task, "data", None), "input_path", None)

    def __str__(self) -> str:
        return f"[{self.stage}] task {self.task_id}: {self.error_type}: {self.message}"


@dataclass
class VideoMetadata:
    """What probing a video tells us. Durations in seconds; bit rate in bits per second."""

    width: int | None = None
    height: int | None = None
    avg_fps: float | None = None
    is_vfr: bool | None = None
    num_frames: int | None = None
    duration_s: float | None = None
    video_codec: str | None = None
    pixel_format: str | None = None
    bit_depth: int | None = None
    bit_rate_bps: int | None = None
    rotation_deg: int = 0
    sample_aspect_ratio: tuple[int, int] = (1, 1)
    audio_codec: str | None = None
    size_bytes: int | None = None

    @property
    def display_size(self) -> tuple[int, int] | None:
        """Width and height as shown: SAR applied to the width, then rotated by ±90 if needed."""
        if self.width is None or self.height is None:
            return None
        num, den = self.sample_aspect_ratio
        w = round(self.width * num / den) if num and den else self.width
        h = self.height
        return (h, w) if self.rotation_deg % 180 else (w, h)


@dataclass(frozen=True)
class FrameKey:
    """Typed key for a clip's extracted frames: the rate and size they were sampled at."""

    fps: float
    height: int | None = None  # None keeps the source height
    width: int | None = None

    def __str__(self) -> str:
        size = f"{self.width or '-'}x{self.height or '-'}"
        return f"fps{self.fps:g}@{size}"


@dataclass
class CaptionWindow:
    """A window of frames within a clip and the captions models wrote for it (keyed by model id)."""

    start_frame: int  # indices into the clip's frames under the captioning FrameKey; end exclusive
    end_frame: int
    prompt_id: str = "default"
    prompt: str = ""
    captions: dict[str, str] = field(default_factory=dict)
    enhanced_captions: dict[str, str] = field(default_factory=dict)


@dataclass
class Clip:
    """A span of a source video and everything computed about it."""

    source: str
    span: tuple[float, float]  # (start, end) in PTS seconds of the source
    uuid: str = ""
    encoded_data: bytes | None = None
    extracted_frames: dict[FrameKey, np.ndarray] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)
    embeddings: dict[str, np.ndarray] = field(default_factory=dict)
    caption_windows: list[CaptionWindow] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.uuid:
            self.uuid = clip_uuid(self.source, self.span)

    @property
    def duration_s(self) -> float:
        return self.span[1] - self.span[0]

    # NeMo Curator's names for the same fields (curator_core.compat.nemo), so NeMo users' stages run.
    @property
    def buffer(self) -> bytes | None:
        return self.encoded_data

    @buffer.setter
    def buffer(self, value: bytes | None) -> None:
        self.encoded_data = value

    @property
    def source_video(self) -> str:
        return self.source

    @property
    def motion_score_global_mean(self) -> float | None:
        return self.scores.get("motion_global_mean")

    @property
    def aesthetic_score(self) -> float | None:
        return self.scores.get("aesthetic")


def clip_uuid(source: str, span: tuple[float, float]) -> str:
    """Deterministic clip id from its source and span, so re-runs write the same ids."""
    return str(uuid.uuid5(CLIP_UUID_NAMESPACE, f"{source}|{span[0]:.6f}|{span[1]:.6f}"))


@dataclass
class Video:
    """One input video: where it is, what it is, and the clips cut from it."""

    input_path: str
    source_bytes: bytes | None = None
    metadata: VideoMetadata | None = None
    clips: list[Clip] = field(default_factory=list)
    filtered_clips: list[Clip] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    # Clips whose spans were assigned to this task when a long video is split across workers.
    segment: tuple[int, int] | None = None
    content_hash: str | None = None  # of the input file (size, first and last MiB), read on the worker

    @property
    def input_video(self) -> str:
        """NeMo Curator's name for `input_path`."""
        return self.input_path


@dataclass
class VideoTask(Task[Video]):
    """A task that carries one video."""


__all__ = [
    "CaptionWindow",
    "Clip",
    "EmptyTask",
    "FailedTask",
    "FrameKey",
    "StagePerf",
    "Task",
    "Video",
    "VideoMetadata",
    "VideoTask",
    "clip_uuid",
]
