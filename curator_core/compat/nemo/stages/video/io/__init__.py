"""`nemo_curator.stages.video.io`."""
