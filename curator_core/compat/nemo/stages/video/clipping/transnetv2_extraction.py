"""`nemo_curator.stages.video.clipping.transnetv2_extraction`: NeMo"s parameters mapped onto our stages (see _video_stages.py)."""

from curator_core.compat.nemo._video_stages import TransNetV2ClipExtractionStage

__all__ = ["TransNetV2ClipExtractionStage"]
