"""Stages written as NeMo Curator's docs describe them (fresh code, NeMo's conventions), importing only
from `curator_core.compat.nemo` where NeMo code imports from `nemo_curator`. Importable by Ray workers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from curator_core.compat.nemo.models.base import ModelInterface
from curator_core.compat.nemo.stages.base import CompositeStage, ProcessingStage
from curator_core.compat.nemo.stages.resources import Resources
from curator_core.compat.nemo.tasks import Task, _EmptyTask
from curator_core.compat.nemo.tasks.video import VideoTask


@dataclass
class TextTask(Task[str]):
    pass


class SentenceSource(ProcessingStage[_EmptyTask, TextTask]):
    """A source stage: the seed task in, one task per sentence out."""

    def __init__(self, sentences: list[str]):
        self.name = "sentence_source"
        self.sentences = sentences

    def inputs(self):
        return [], []

    def outputs(self):
        return ["data"], []

    def process(self, task):
        return [TextTask(task_id=f"s{i}", dataset_name="text", data=s) for i, s in enumerate(self.sentences)]


@dataclass
class WordCountStage(ProcessingStage[TextTask, TextTask]):
    """The custom-stage tutorial's shape: dataclass fields, a batch method, None for filtered."""

    min_words: int = 2
    name: str = "word_count"
    resources: Resources = Resources(cpus=0.5)
    batch_size: int = 4

    def inputs(self):
        return ["data"], []

    def outputs(self):
        return ["data"], []

    def process(self, task):
        raise NotImplementedError("process_batch handles this stage")

    def process_batch(self, tasks):
        out = []
        for task in tasks:
            words = len(task.data.split())
            if words < self.min_words:
                out.append(None)
            else:
                task.metadata["words"] = words
                out.append(task)
        return out


class TwoTextSteps(CompositeStage[TextTask, TextTask]):
    def __init__(self):
        super().__init__()
        self.name = "two_text_steps"

    def decompose(self):
        return [WordCountStage(min_words=1, name="first"), WordCountStage(min_words=1, name="second")]


class BrightnessModel(ModelInterface):
    """The custom-model tutorial's shape: weights from a file, loaded in setup on the worker."""

    def __init__(self, weights_path: str):
        self.weights_path = weights_path
        self.scale = None

    @property
    def model_id_names(self) -> list[str]:
        return ["test/brightness"]

    def setup(self) -> None:
        self.scale = float(np.load(self.weights_path)[0])

    def __call__(self, frames: np.ndarray) -> float:
        return float(frames.mean()) * self.scale


@dataclass
class BrightnessStage(ProcessingStage[VideoTask, VideoTask]):
    weights_path: str = ""
    name: str = "brightness"

    def __post_init__(self) -> None:
        self.resources = Resources(cpus=0.5)

    def setup(self, worker_metadata=None) -> None:
        self.model = BrightnessModel(self.weights_path)
        self.model.setup()

    def inputs(self):
        return ["data"], ["clips"]

    def process(self, task: VideoTask) -> VideoTask:
        for clip in task.data.clips:
            frames = next(iter(clip.extracted_frames.values()))
            clip.scores["brightness"] = self.model(frames)
        return task
