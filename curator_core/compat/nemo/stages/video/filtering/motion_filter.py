"""`nemo_curator.stages.video.filtering.motion_filter`: NeMo"s parameters mapped onto our stages (see _video_stages.py)."""

from curator_core.compat.nemo._video_stages import MotionFilterStage, MotionVectorDecodeStage

__all__ = ["MotionFilterStage", "MotionVectorDecodeStage"]
