"""`nemo_curator.backends`."""
