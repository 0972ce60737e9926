"""`nemo_curator.stages.video.caption.caption_enhancement`: NeMo"s parameters mapped onto our stages (see _video_stages.py)."""

from curator_core.compat.nemo._video_stages import CaptionEnhancementStage

__all__ = ["CaptionEnhancementStage"]
