"""Splitting videos into clip spans (PTS seconds): at a fixed stride, or at detected shot changes."""

from __future__ import annotations

import logging
from abc import abstractmethod
from dataclasses import dataclass, field

from curator_core.resources import Resources
from curator_core.stage import ProcessingStage, WorkerMetadata
from curator_core.tasks import Clip, VideoTask
from curator_core.video.shots import ContentShotDetector, ShotDetector, Transition, VideoDecodeError
from curator_core.video.smart_cut import DECODED_WHOLE

logger = logging.getLogger(__name__)

SPLIT_ERROR = "split"


def fixed_stride_spans(
    duration_s: float, clip_len_s: float, clip_stride_s: float, min_clip_length_s: float, limit_clips: int = 0
) -> list[tuple[float, float]]:
    """Spans [start, min(start + len, duration)) every `clip_stride_s`; a tail shorter than the minimum
    is dropped."""
    if clip_len_s <= 0 or clip_stride_s <= 0:
        raise ValueError("clip_len_s and clip_stride_s must be > 0")
    spans: list[tuple[float, float]] = []
    start = 0.0
    while start < duration_s - 1e-9:
        end = min(start + clip_len_s, duration_s)
        if end - start >= min_clip_length_s - 1e-9:
            spans.append((round(start, 6), round(end, 6)))
        if limit_clips and len(spans) >= limit_clips:
            break
        start += clip_stride_s
    return spans


class SplittingStage(ProcessingStage[VideoTask, VideoTask]):
    """Base of the splitters: a probed video gets the clips of `spans(task)`; videos that failed to read
    pass through untouched."""

    def inputs(self) -> tuple[list[str], list[str]]:
        return [], ["metadata"]

    def outputs(self) -> tuple[list[str], list[str]]:
        return [], ["clips"]

    def process(self, task: VideoTask) -> VideoTask:
        video = task.data
        if video.errors or video.metadata is None:
            return task
        video.clips = [Clip(source=video.input_path, span=span) for span in self.spans(task)]
        if not video.clips and not video.errors:  # recorded, never silently lost
            video.errors[SPLIT_ERROR] = self.no_clips_reason(task)
        return task

    def no_clips_reason(self, task: VideoTask) -> str:
        duration = task.data.metadata.duration_s
        length = f"{duration:.2f} s" if duration else "unknown length"
        return f"no clip: the video ({length}) holds no span of at least {self.min_length:g} s"

    @property
    @abstractmethod
    def min_length(self) -> float:
        """The shortest clip kept, seconds."""

    @abstractmethod
    def spans(self, task: VideoTask) -> list[tuple[float, float]]:
        """Clip spans in PTS seconds of the source."""


@dataclass
class FixedStrideSplittingStage(SplittingStage):
    """Clips of `clip_len_s` seconds every `clip_stride_s` seconds; tails under `min_clip_length_s` dropped;
    at most `limit_clips` per video (0: no limit)."""

    clip_len_s: float = 10.0
    clip_stride_s: float = 10.0
    min_clip_length_s: float = 2.0
    limit_clips: int = 0
    name: str = "fixed_stride_splitting"
    resources: Resources = Resources(cpus=0.25)

    @property
    def min_length(self) -> float:
        return self.min_clip_length_s

    def spans(self, task: VideoTask) -> list[tuple[float, float]]:
        video = task.data
        if not video.metadata.duration_s:
            return []
        return fixed_stride_spans(
            video.metadata.duration_s,
            self.clip_len_s,
            self.clip_stride_s,
            self.min_clip_length_s,
            self.limit_clips,
        )


def shot_spans(
    transitions: list[Transition],
    duration_s: float,
    min_length_s: float,
    max_length_s: float | None,
    max_length_mode: str,
    crop_s: float,
) -> list[tuple[float, float]]:
    """Shots between transitions. A hard cut starts a shot at its first new frame; a gradual transition
    (or a gap that damage left) is left out of both neighbouring shots. `crop_s` is trimmed off both ends
    of each shot."""
    bounds: list[tuple[float, float]] = []
    start = 0.0
    for t in sorted(transitions, key=lambda t: t.start_pts_s):
        bounds.append((start, t.start_pts_s))
        start = t.start_pts_s if t.kind == "hard" else t.end_pts_s
    bounds.append((start, duration_s))
    spans: list[tuple[float, float]] = []
    for a, b in bounds:
        a, b = a + crop_s, b - crop_s
        if b - a < min_length_s - 1e-9:
            continue
        if max_length_s and b - a > max_length_s:
            if max_length_mode == "truncate":
                spans.append((a, a + max_length_s))
                continue
            pieces = fixed_stride_spans(b - a, max_length_s, max_length_s, min_length_s)
            spans.extend((a + s, a + e) for s, e in pieces)
            continue
        spans.append((a, b))
    return [(round(a, 6), round(b, 6)) for a, b in spans]


@dataclass
class ShotSplittingStage(SplittingStage):
    """Clips are the shots between detected transitions (PTS seconds, so VFR files are exact).

    min_length_s / max_length_s: shots outside are dropped / cut down (`max_length_mode`: "truncate" keeps
    the first max_length_s, "stride" cuts the shot into consecutive pieces). crop_s: seconds trimmed off
    both ends of each shot (to stay clear of the cut).
    """

    min_length_s: float = 2.0
    max_length_s: float | None = 60.0
    max_length_mode: str = "stride"
    crop_s: float = 0.0
    detector: ShotDetector = field(default_factory=ContentShotDetector)
    name: str = "shot_splitting"
    resources: Resources = Resources(cpus=1.0)

    @property
    def min_length(self) -> float:
        return self.min_length_s

    def no_clips_reason(self, task: VideoTask) -> str:
        cuts = len(task.metadata.get("transitions") or [])
        return (
            f"{super().no_clips_reason(task)} between its {cuts} detected transitions"
            if cuts
            else (super().no_clips_reason(task))
        )

    def __post_init__(self) -> None:
        if self.max_length_mode not in ("truncate", "stride"):
            raise ValueError(f"max_length_mode must be 'truncate' or 'stride', got {self.max_length_mode!r}")

    def setup(self, worker_metadata: WorkerMetadata | None = None) -> None:
        if worker_metadata is not None:
            self.detector.use_cpus(worker_metadata.num_cpus)

    def spans(self, task: VideoTask) -> list[tuple[float, float]]:
        video = task.data
        try:
            result = self.detector.detect_path(video.input_path)
        except VideoDecodeError as exc:
            video.errors["shot_detection"] = str(exc)
            return []
        duration = result.duration_s or video.metadata.duration_s or 0.0
        if result.damage is not None and result.decode_error:
            video.errors["decode"] = result.damage.summary(result.num_frames, video.metadata.num_frames)
        else:
            task.metadata[DECODED_WHOLE] = True  # smart cut need not decode what it copies again
        task.metadata["transitions"] = [t.to_dict() for t in result.transitions]
        gaps = [Transition("gap", -1, -1, a, b, 1.0) for a, b in result.gaps]  # no clip spans lost frames
        return shot_spans(
            result.transitions + gaps,
            duration,
            self.min_length_s,
            self.max_length_s,
            self.max_length_mode,
            self.crop_s,
        )
