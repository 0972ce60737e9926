"""Training-ready output: the kept clips of a batch that pass selection rules, written as WebDataset tar
shards by the workers, and a dataset manifest across batches (Dagster-free)."""
