"""`nemo_curator.stages.video.io.clip_writer`: NeMo"s parameters mapped onto our stages (see _video_stages.py)."""

from curator_core.compat.nemo._video_stages import ClipWriterStage

__all__ = ["ClipWriterStage"]
