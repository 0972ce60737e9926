"""Base of the stages that run a model over the clips of several videos at once (embedding, captioning)."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

from curator_core.models.registry import configured
from curator_core.stage import ProcessingStage, WorkerMetadata
from curator_core.tasks import VideoTask


class ClipModelStage(ProcessingStage[VideoTask, VideoTask]):
    """Loads its model once per worker in `setup` (torch threads matched to the worker's CPUs) and runs it
    over the clips of every task of a `process_batch` call together.

    Subclasses declare the fields `model` (a model id; None: the `role` model of models.json),
    `model_dir` and `device`, the class attributes `role` and `model_class` (whose `load(model_id,
    model_dir, device)` returns an object with a `model_id`), and `run_model`."""

    role: ClassVar[str]
    model_class: ClassVar[type]

    def inputs(self) -> tuple[list[str], list[str]]:
        return [], ["clips"]

    def outputs(self) -> tuple[list[str], list[str]]:
        return [], ["clips"]

    def load_model(self) -> Any:
        model_id = self.model or configured(self.role, self.model_dir)
        return self.model_class.load(model_id, self.model_dir, self.device)

    @abstractmethod
    def run_model(self, tasks: list[VideoTask]) -> None: ...

    def setup(self, worker_metadata: WorkerMetadata | None = None) -> None:
        import torch

        if worker_metadata is not None:
            torch.set_num_threads(max(1, round(worker_metadata.num_cpus)))
        self._model = self.load_model()

    @property
    def model_id(self) -> str:
        return self._model.model_id

    def process(self, task: VideoTask) -> VideoTask:
        return self.process_batch([task])[0]

    def process_batch(self, tasks: list[VideoTask]) -> list[VideoTask]:
        if not hasattr(self, "_model"):
            self.setup(None)
        self.run_model(tasks)
        return tasks
