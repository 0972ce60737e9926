"""`nemo_curator.tasks.video`: ours, which also answer to NeMo's field names (`Video.input_video`,
`Clip.buffer`, `Clip.source_video`, `Clip.motion_score_global_mean`, `Clip.aesthetic_score`)."""

from curator_core.tasks import Clip, Video, VideoMetadata, VideoTask

__all__ = ["Clip", "Video", "VideoMetadata", "VideoTask"]
