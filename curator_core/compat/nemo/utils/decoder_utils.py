"""`nemo_curator.utils.decoder_utils`."""

from curator_core.compat.nemo._video_stages import FrameExtractionPolicy, FramePurpose

__all__ = ["FrameExtractionPolicy", "FramePurpose"]
