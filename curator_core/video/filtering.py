"""Aesthetic scoring and filtering of clips over their CLIP frame embeddings."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from curator_core.models.aesthetic import AestheticModel
from curator_core.models.registry import configured
from curator_core.resources import Resources
from curator_core.stage import ProcessingStage, WorkerMetadata
from curator_core.tasks import VideoTask
from curator_core.video.clip_stage import filter_clips

SCORE = "aesthetic"


@dataclass
class AestheticFilterStage(ProcessingStage[VideoTask, VideoTask]):
    """Scores each clip with the LAION aesthetic MLP over the per-frame CLIP embeddings that
    ClipEmbeddingStage left in `clip.metadata["frame_embeddings"][clip_model]`.

    reduction: "min" (a clip is as good as its worst frame) or "mean" over frames.
    threshold: clips scoring below it move to `filtered_clips` (unless score_only).
    model: aesthetic model id (None: models.json's "aesthetic"); its card names the CLIP model it expects.
    """

    threshold: float = 3.5
    reduction: str = "min"
    score_only: bool = False
    model: str | None = None
    model_dir: str | None = None
    name: str = "aesthetic_filter"
    resources: Resources = Resources(cpus=0.5)

    def __post_init__(self) -> None:
        if self.reduction not in ("min", "mean"):
            raise ValueError(f"reduction must be 'min' or 'mean', got {self.reduction!r}")

    def inputs(self) -> tuple[list[str], list[str]]:
        return [], ["clips"]

    def outputs(self) -> tuple[list[str], list[str]]:
        return [], ["clips", "filtered_clips"]

    def setup(self, worker_metadata: WorkerMetadata | None = None) -> None:
        self._model = AestheticModel(self.model or configured("aesthetic", self.model_dir), self.model_dir)

    def process(self, task: VideoTask) -> VideoTask:
        if not hasattr(self, "_model"):
            self.setup(None)
        for clip in task.data.clips:
            frames = clip.metadata.get("frame_embeddings", {}).get(self._model.clip_model)
            if frames is None:
                clip.errors[SCORE] = (
                    f"no frame embeddings of {self._model.clip_model} (add ClipEmbeddingStage)"
                )
                continue
            scores = self._model.score(np.asarray(frames))
            clip.scores[SCORE] = float(scores.min() if self.reduction == "min" else scores.mean())
        # Clips that could not be scored stay, with the reason in their errors.
        filter_clips(
            task.data,
            lambda c: self.score_only or SCORE not in c.scores or c.scores[SCORE] >= self.threshold,
            self.name,
        )
        return task
