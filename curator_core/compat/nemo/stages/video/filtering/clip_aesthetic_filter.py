"""`nemo_curator.stages.video.filtering.clip_aesthetic_filter`: NeMo"s parameters mapped onto our stages (see _video_stages.py)."""

from curator_core.compat.nemo._video_stages import ClipAestheticFilterStage

__all__ = ["ClipAestheticFilterStage"]
