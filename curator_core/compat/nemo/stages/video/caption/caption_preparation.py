"""`nemo_curator.stages.video.caption.caption_preparation`: NeMo"s parameters mapped onto our stages (see _video_stages.py)."""

from curator_core.compat.nemo._video_stages import CaptionPreparationStage

__all__ = ["CaptionPreparationStage"]
