"""`nemo_curator.stages.video.caption.caption_generation`: NeMo"s parameters mapped onto our stages (see _video_stages.py)."""

from curator_core.compat.nemo._video_stages import CaptionGenerationStage

__all__ = ["CaptionGenerationStage"]
