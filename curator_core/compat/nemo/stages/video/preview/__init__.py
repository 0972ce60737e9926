"""`nemo_curator.stages.video.preview`."""
