"""`nemo_curator.stages.video.filtering.motion_vector_backend`: NeMo"s parameters mapped onto our stages (see _video_stages.py)."""

from curator_core.compat.nemo._video_stages import MotionVectorDecodeStage

__all__ = ["MotionVectorDecodeStage"]
