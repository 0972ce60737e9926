"""`nemo_curator.stages.video.caption`."""
