"""`nemo_curator.utils`."""
