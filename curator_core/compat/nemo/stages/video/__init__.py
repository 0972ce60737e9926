"""`nemo_curator.stages.video`."""
