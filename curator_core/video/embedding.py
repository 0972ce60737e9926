"""Clip embeddings with open_clip: frames -> per-frame unit vectors -> one unit vector per clip."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from curator_core.models.open_clip_model import OpenClipModel
from curator_core.resources import Resources
from curator_core.tasks import Clip, FrameKey, VideoTask
from curator_core.video.model_stage import ClipModelStage

logger = logging.getLogger(__name__)


@dataclass
class ClipEmbeddingStage(ClipModelStage):
    """Embeds every clip's frames (from ClipFrameExtractionStage, under `frame_key`) with an open_clip
    model from the model directory and stores the clip embedding under the model id.

    model: a model id ("open_clip/<name>"); None uses the "embedding" model of models.json.
    reduction: "mean" of the unit frame embeddings, re-normalised (or "first" frame).
    batch_size: clips (tasks) per process_batch call; frames of all of them go through the model together.
    """

    model: str | None = None
    model_dir: str | None = None
    frame_key: FrameKey = field(default_factory=lambda: FrameKey(fps=1.0, height=224, width=224))
    reduction: str = "mean"
    frames_per_forward: int = 32
    device: str | None = None
    name: str = "clip_embedding"
    batch_size: int = 4
    resources: Resources = Resources(cpus=1.0)
    role: ClassVar[str] = "embedding"
    model_class: ClassVar[type] = OpenClipModel

    def run_model(self, tasks: list[VideoTask]) -> None:
        clips: list[Clip] = []
        stacks: list[np.ndarray] = []
        for task in tasks:
            for clip in task.data.clips:
                frames = clip.extracted_frames.get(self.frame_key)
                if frames is None or not len(frames):
                    clip.errors["embedding"] = (
                        f"no frames under {self.frame_key} (add ClipFrameExtractionStage)"
                    )
                    continue
                clips.append(clip)
                stacks.append(frames)
        if clips:
            frame_embeddings = self._model.encode_images(np.concatenate(stacks), self.frames_per_forward)
            start = 0
            for clip, frames in zip(clips, stacks, strict=True):
                per_frame = frame_embeddings[start : start + len(frames)]
                start += len(frames)
                vector = per_frame.mean(axis=0) if self.reduction == "mean" else per_frame[0]
                clip.embeddings[self.model_id] = (vector / np.linalg.norm(vector)).astype(np.float32)
                # Kept for frame-level consumers (aesthetic scoring); not written to the store.
                clip.metadata.setdefault("frame_embeddings", {})[self.model_id] = per_frame
                clip.metadata["embedding_random_weights"] = self._model.random_weights
