"""`nemo_curator.models`."""
