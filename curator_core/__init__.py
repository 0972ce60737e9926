"""curator_core: the engine. Tasks flow through stages; executors run pipelines of stages on Ray."""

__version__ = "0.1.0"

from curator_core.executors.base import RunResult, StageStats
from curator_core.executors.local import LocalExecutor
from curator_core.executors.ray import RayExecutor
from curator_core.pipeline import Pipeline, PipelineValidationError
from curator_core.resources import Resources
from curator_core.stage import CompositeStage, NodeInfo, ProcessingStage, WorkerMetadata

__all__ = [
    "CompositeStage",
    "LocalExecutor",
    "NodeInfo",
    "Pipeline",
    "PipelineValidationError",
    "ProcessingStage",
    "RayExecutor",
    "Resources",
    "RunResult",
    "StageStats",
    "WorkerMetadata",
]
