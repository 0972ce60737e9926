"""`nemo_curator.stages.video.embedding.cosmos_embed1`: accepted, and an error naming the supported alternative when the
pipeline is built."""

from curator_core.compat.nemo._video_stages import unsupported_embedding

CosmosEmbed1FrameCreationStage = unsupported_embedding("CosmosEmbed1FrameCreationStage", "cosmos-embed1")
CosmosEmbed1EmbeddingStage = unsupported_embedding("CosmosEmbed1EmbeddingStage", "cosmos-embed1")

__all__ = ["CosmosEmbed1FrameCreationStage", "CosmosEmbed1EmbeddingStage"]
