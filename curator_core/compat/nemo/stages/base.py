"""`nemo_curator.stages.base`: the same contract as ours (curator_core.stage)."""

from curator_core.stage import CompositeStage, NodeInfo, ProcessingStage, WorkerMetadata

__all__ = ["CompositeStage", "NodeInfo", "ProcessingStage", "WorkerMetadata"]
