"""`nemo_curator.stages.video.preview.preview`: NeMo"s parameters mapped onto our stages (see _video_stages.py)."""

from curator_core.compat.nemo._video_stages import PreviewStage

__all__ = ["PreviewStage"]
