"""`nemo_curator.stages.video.clipping.video_frame_extraction`: NeMo"s parameters mapped onto our stages (see _video_stages.py)."""

from curator_core.compat.nemo._video_stages import VideoFrameExtractionStage

__all__ = ["VideoFrameExtractionStage"]
