"""`nemo_curator.stages.video.embedding.internvideo2`: accepted, and an error naming the supported alternative when the
pipeline is built."""

from curator_core.compat.nemo._video_stages import unsupported_embedding

InternVideo2FrameCreationStage = unsupported_embedding("InternVideo2FrameCreationStage", "internvideo2")
InternVideo2EmbeddingStage = unsupported_embedding("InternVideo2EmbeddingStage", "internvideo2")

__all__ = ["InternVideo2FrameCreationStage", "InternVideo2EmbeddingStage"]
