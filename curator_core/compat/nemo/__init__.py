"""NeMo Curator code runs here after replacing the import prefix `nemo_curator` with
`curator_core.compat.nemo` and changing nothing else.

The modules mirror NeMo Curator's paths for the public names its video docs and tutorials use; the
names are ours where the contract is the same (`ProcessingStage`, `Pipeline`, `Resources`, tasks) and
NeMo-parameterised stages mapped onto ours where it is not (`_video_stages.py`). What differs is
listed in docs/nemo_migration.md.
"""
