"""`nemo_curator.stages.video.clipping.clip_extraction_stages`: NeMo"s parameters mapped onto our stages (see _video_stages.py)."""

from curator_core.compat.nemo._video_stages import ClipTranscodingStage, FixedStrideExtractorStage

__all__ = ["ClipTranscodingStage", "FixedStrideExtractorStage"]
