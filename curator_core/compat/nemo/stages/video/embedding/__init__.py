"""`nemo_curator.stages.video.embedding`."""
