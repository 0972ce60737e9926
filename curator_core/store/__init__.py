"""The clip store: LanceDB tables with lineage, atomic per-batch writes and vector search."""

from curator_core.store.store import ClipStore, SchemaMismatchError, embeddings_table_name

__all__ = ["ClipStore", "SchemaMismatchError", "embeddings_table_name"]
