"""`nemo_curator.stages.video.clipping`."""
