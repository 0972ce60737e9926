"""`nemo_curator.stages.video.io.video_reader`: NeMo"s parameters mapped onto our stages (see _video_stages.py)."""

from curator_core.compat.nemo._video_stages import VideoReader

__all__ = ["VideoReader"]
