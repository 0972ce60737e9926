"""`nemo_curator.stages.video.filtering`."""
