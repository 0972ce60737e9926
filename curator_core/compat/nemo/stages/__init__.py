"""`nemo_curator.stages`."""

from curator_core.stage import CompositeStage, ProcessingStage

__all__ = ["CompositeStage", "ProcessingStage"]
