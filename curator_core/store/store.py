"""ClipStore: LanceDB tables written one batch (Dagster partition) at a time, atomically.

Writing batch B replaces B's rows in one or more tables at one commit point (store.commits): readers see
the old B or the new B in every table, never half and never a mix of two runs; rows of other batches are
never touched; a write that fails before its commit point leaves the previous rows. Concurrent writers
of different batches conflict only at commit, and a conflicting commit is retried. Read through
ClipStore (`rows`, `count`, `search_vector`): it hides the rows of writes in flight.
"""

from __future__ import annotations

import functools
import logging
import posixpath
from collections.abc import Iterable
from typing import Any

import fsspec
import lancedb
import pyarrow as pa
import pyarrow.parquet as pq

from curator_core import storage
from curator_core.store import schemas
from curator_core.store.commits import (
    EMBEDDINGS_PREFIX,
    BatchCommit,
    both,
    consistent_read,
    embeddings_table_name,
    retry_commit,
    sql_literal,
)

logger = logging.getLogger(__name__)

CLIP_DERIVED_TABLES = ("clip_captions", "clip_duplicates")  # rows keyed by a clip's uuid (with embeddings)
DELETE_CHUNK = 1000  # uuids per delete predicate
# Lance keeps the metadata of every table version a connection has read, up to 1 GiB by default. Each
# append is a version with one more fragment, so a worker that appends a fragment per task held
# O(appends^2) bytes (measured: +106 MiB after 300 tasks' appends to two tables; with a 16 MiB cache, +24
# MiB). Bounded here; the index cache (filled only by vector search) keeps Lance's default.
METADATA_CACHE_BYTES = 64 << 20


def _put_back_what_a_racing_create_removed(name: str, table) -> None:
    """LanceDB's create is not exclusive: two processes that both find a table missing both create it,
    and the later create lands as an overwrite of the earlier (measured: 10 of 400 races of two threads
    on a fresh directory). Overwriting the empty version 1 loses nothing (and the other writer's next
    commit retries on the new version, commits.retry_commit); when others committed in between, their rows
    (version - 1) are appended again, here, by the create that removed them."""
    ours = table.version
    table.checkout(ours - 1)
    removed = table.to_arrow()
    table.checkout_latest()
    if removed.num_rows:
        logger.warning("%s: a racing create replaced %d rows; appending them again", name, removed.num_rows)
        retry_commit(name, table, lambda t: t.add(removed))


class SchemaMismatchError(RuntimeError):
    """A table on disk does not have the schema this code declares: migrate it explicitly."""


class ClipStore:
    """Tables `videos`, `clips`, `clip_captions`, `failures` and one `clip_embeddings__<model>` per model.

    uri: a local directory (default) or an object-store URI LanceDB understands (s3://..., gs://...).
    index_threshold: rows past which `search` builds a vector index (IVF_FLAT: exact distances, recall
    measured 1.0 at 100k x 512; IVF_PQ without refinement measured 0.34).
    """

    def __init__(self, uri: str, index_threshold: int = 50_000):
        self.uri = uri
        self.index_threshold = index_threshold
        # An object-store URI reaches the store the rest of the run uses (curator_core.storage).
        options = storage.current().lancedb_options() if "://" in uri else None
        self.session = lancedb.Session(metadata_cache_size_bytes=METADATA_CACHE_BYTES)
        self.db = lancedb.connect(uri, storage_options=options, session=self.session)

    # --- tables ---------------------------------------------------------------------------------------
    def table_names(self) -> list[str]:
        return sorted(self.db.list_tables().tables)

    def open(self, name: str, schema: pa.Schema | None = None):
        """Open (or create, when `schema` is given) a table, checking its schema against the declaration."""
        if name in self.table_names():
            table = self.db.open_table(name)
            if schema is not None:
                self._check_schema(name, table.schema, schema)
            return table
        if schema is None:
            raise KeyError(
                f"no table {name!r} in {self.uri} (tables: {', '.join(self.table_names()) or 'none'})"
            )
        try:
            table = self.db.create_table(name, schema=schema)
        except Exception as exc:  # another process created it first
            if name in self.table_names():
                return self.open(name, schema)
            raise exc
        if table.version > 2:
            _put_back_what_a_racing_create_removed(name, table)
        return table

    @staticmethod
    def _check_schema(name: str, actual: pa.Schema, declared: pa.Schema) -> None:
        have = {f.name: f.type for f in actual}
        want = {f.name: f.type for f in declared}
        if have != want:
            missing = sorted(set(want) - set(have))
            extra = sorted(set(have) - set(want))
            changed = sorted(k for k in set(want) & set(have) if want[k] != have[k])
            raise SchemaMismatchError(
                f"table {name!r} does not match this code's schema (missing {missing}, unexpected {extra}, "
                f"changed types {changed}). Migrate it explicitly: ClipStore(uri).migrate()"
            )

    def migrate(self) -> list[str]:
        """Add declared columns that existing tables lack (filled with nulls). Returns what changed."""
        changes = []
        for name, declared in self._declared_schemas().items():
            table = self.db.open_table(name)
            have = {f.name for f in table.schema}
            new = [f for f in declared if f.name not in have]
            if new:
                table.add_columns([f.with_nullable(True) for f in new])
                changes.append(f"{name}: added {', '.join(f.name for f in new)}")
        return changes

    def _declared_schemas(self) -> dict[str, pa.Schema]:
        out = {n: s for n, s in schemas.TABLES.items() if n in self.table_names()}
        for name in self.table_names():
            if name.startswith(EMBEDDINGS_PREFIX):
                vector = self.db.open_table(name).schema.field("vector").type
                out[name] = schemas.clip_embeddings(vector.list_size)
        return out

    # --- writes ---------------------------------------------------------------------------------------
    def commit(self, batch_key: str, owner: str, reuse: bool = False) -> BatchCommit:
        """A write of batch `batch_key`'s rows to one or more tables that readers see all at once, when
        the `with` block ends without an error (store.commits). `owner`: the step writing. `reuse`:
        keep what an earlier, killed write of the owner staged until this one commits (store.reuse)."""
        return BatchCommit(self, batch_key, owner, reuse)

    def replace_batch(
        self,
        name: str,
        batch_key: str,
        rows: pa.Table | pa.RecordBatchReader | list[dict],
        schema: pa.Schema,
        scope: str | None = None,
    ) -> int:
        """Make the rows of `batch_key` in table `name` exactly `rows`, in one commit. Returns the row count.

        `scope`: an SQL predicate narrowing which of the batch's rows this write owns (e.g. the failures
        of one pipeline); the batch's rows outside it are left alone.

        `rows` may be a RecordBatchReader to stream a large batch; if it fails part way, nothing is
        committed."""
        with self.commit(batch_key, f"{name}:{scope or ''}") as commit:
            return commit.replace(name, rows, schema, scope)

    def check_media(self, rows: list[dict], per_file: bool = False) -> None:
        """FileNotFoundError when a clip row points at a media file that does not exist. `per_file`: one
        request per file (a worker checking its task's few clips) instead of listing their folders, which
        hold the whole batch's clips (a listing per task would cost O(clips) each)."""
        wanted = [
            (row.get("uuid"), c, row[c]) for row in rows for c in ("media_uri", "preview_uri") if row.get(c)
        ]
        uris = [uri for _, _, uri in wanted]
        present = {u for u in uris if file_exists(u)} if per_file else existing(uris)
        for uuid, column, uri in wanted:
            if uri not in present:
                raise FileNotFoundError(f"clip {uuid}: {column} {uri} does not exist; rows not written")

    def write_clips(self, batch_key: str, rows: list[dict]) -> int:
        """Clip rows, after checking that every media file they point at exists (no dangling rows)."""
        with self.commit(batch_key, "clips") as commit:
            return commit.write_clips(rows)

    def write_embeddings(self, batch_key: str, model_id: str, rows: list[dict]) -> int:
        with self.commit(batch_key, embeddings_table_name(model_id)) as commit:
            return commit.write_embeddings(model_id, rows)

    def delete_rows(self, name: str, batch_key: str) -> int:
        if name not in self.table_names():
            return 0
        table = self.db.open_table(name)
        count = table.count_rows(f"batch_key = {sql_literal(batch_key)}")
        table.delete(f"batch_key = {sql_literal(batch_key)}")
        return count

    def delete_stale_clip_rows(self, batch_key: str, uuids: set[str]) -> dict[str, int]:
        """Rows of the tables derived from clips (embeddings, captions, duplicates) whose clip is no longer
        among the batch's `uuids`: after `clips` is re-made with other settings, nothing points at a clip
        that does not exist. Returns the rows deleted per table."""
        deleted: dict[str, int] = {}
        batch = f"batch_key = {sql_literal(batch_key)}"
        for name in self.table_names():
            if not (name.startswith(EMBEDDINGS_PREFIX) or name in CLIP_DERIVED_TABLES):
                continue
            table = self.db.open_table(name)
            have = table.search().where(batch).select(["uuid"]).limit(None).to_arrow().column("uuid")
            stale = sorted(set(have.to_pylist()) - uuids)
            for start in range(0, len(stale), DELETE_CHUNK):
                chunk = ", ".join(sql_literal(u) for u in stale[start : start + DELETE_CHUNK])
                table.delete(f"{batch} AND uuid IN ({chunk})")
            if stale:
                deleted[name] = len(stale)
        return deleted

    def delete_batch(self, batch_key: str) -> dict[str, int]:
        """Remove a batch's rows from every table (those of writes in flight too) and its clip media files."""
        deleted: dict[str, int] = {}
        if "clips" in self.table_names():
            clips = self.db.open_table("clips")
            media = (
                clips.search()
                .where(f"batch_key = {sql_literal(batch_key)}")
                .select(["media_uri", "preview_uri"])
                .limit(None)
                .to_arrow()
            )
            removed = 0
            for column in ("media_uri", "preview_uri"):
                for uri in media.column(column).to_pylist():
                    if uri and file_exists(uri):
                        fs, path = fsspec.core.url_to_fs(uri)
                        fs.rm(path)
                        removed += 1
            deleted["media_files"] = removed
        for name in self.table_names():
            deleted[name] = self.delete_rows(name, batch_key)
        return deleted

    # --- reads ----------------------------------------------------------------------------------------
    def rows(
        self, name: str, where: str | None = None, columns: list[str] | None = None, limit: int | None = None
    ) -> pa.Table:
        """The rows of a table (optionally filtered, only some columns, at most `limit`); an empty table
        when it does not exist yet."""
        if name not in self.table_names():
            declared = schemas.TABLES.get(name)
            empty = declared.empty_table() if declared is not None else pa.table({})
            return empty.select(columns) if columns and declared is not None else empty

        def read(hidden: str | None) -> pa.Table:
            query = self.db.open_table(name).search()
            if both(where, hidden):
                query = query.where(both(where, hidden))
            if columns:
                query = query.select(columns)
            return query.limit(limit).to_arrow()

        return consistent_read(self, name, read)

    def count(self, name: str, where: str | None = None) -> int:
        """Rows of a table (optionally filtered) without reading them; 0 when it does not exist yet."""
        if name not in self.table_names():
            return 0
        return consistent_read(
            self, name, lambda hidden: self.db.open_table(name).count_rows(both(where, hidden))
        )

    def embedding_models(self) -> list[str]:
        out = []
        for name in self.table_names():
            if name.startswith(EMBEDDINGS_PREFIX):
                ids = self.rows(name, columns=["model_id"], limit=1)
                if ids.num_rows:
                    out.append(ids.column("model_id")[0].as_py())
        return out

    def ensure_index(self, name: str) -> bool:
        """Build an IVF_FLAT index once a table passes `index_threshold` rows. Returns whether one exists."""
        table = self.db.open_table(name)
        if table.list_indices():
            return True
        rows = table.count_rows()
        if rows < self.index_threshold:
            return False
        partitions = max(1, min(1024, int(rows**0.5)))
        table.create_index(
            metric="cosine", vector_column_name="vector", index_type="IVF_FLAT", num_partitions=partitions
        )
        return True

    def search_vector(
        self, model_id: str, vector: Iterable[float], k: int = 10, where: str | None = None, nprobes: int = 32
    ) -> list[dict[str, Any]]:
        """Nearest clips to `vector` (cosine) among clips embedded by `model_id`, joined with their clip rows
        and first caption. `where` filters on clip columns (e.g. "batch_key = 'b1' AND duration_s > 2")."""
        name = embeddings_table_name(model_id)
        self.ensure_index(name)
        table = self.db.open_table(name)
        allowed = None
        if where:
            allowed = set(self.rows("clips", where).column("uuid").to_pylist())
            if not allowed:
                return []
        only = (
            None
            if allowed is None
            else "uuid IN (" + ", ".join(sql_literal(u) for u in sorted(allowed)) + ")"
        )

        def read(hidden: str | None) -> list[dict]:
            query = table.search(list(vector), vector_column_name="vector").metric("cosine").nprobes(nprobes)
            if both(only, hidden):
                query = query.where(both(only, hidden), prefilter=True)
            return query.limit(k).to_list()

        hits = consistent_read(self, name, read)
        if not hits:
            return []
        uuids = [h["uuid"] for h in hits]
        in_list = ", ".join(sql_literal(u) for u in uuids)
        clips = {r["uuid"]: r for r in self.rows("clips", f"uuid IN ({in_list})").to_pylist()}
        captions: dict[str, str] = {}
        rows = self.rows("clip_captions", f"uuid IN ({in_list})").to_pylist()
        for r in sorted(rows, key=lambda r: (r["window"], r["kind"] != "enhanced")):
            captions.setdefault(r["uuid"], r["text"])  # the first window's caption, enhanced if there is one
        results = []
        for hit in hits:
            clip = clips.get(hit["uuid"], {})
            results.append(
                {
                    "uuid": hit["uuid"],
                    "score": 1.0 - float(hit["_distance"]),
                    "video": clip.get("source_uri"),
                    "span": [clip.get("span_start_s"), clip.get("span_end_s")],
                    "media_uri": clip.get("media_uri"),
                    "caption": captions.get(hit["uuid"]),
                }
            )
        return results

    def export(self, name: str, path: str) -> int:
        table = self.rows(name)
        with fsspec.open(path, "wb") as handle:
            pq.write_table(table, handle)
        return table.num_rows


@functools.cache
def worker_store(uri: str) -> ClipStore:
    """One connection per worker process, for stages that read or write the store from the workers."""
    return ClipStore(uri)


def file_exists(uri: str) -> bool:
    fs, path = fsspec.core.url_to_fs(uri)
    return fs.exists(path)


LIST_FROM = 8  # URIs in one folder from which one listing is cheaper than a request per file


def existing(uris: Iterable[str]) -> set[str]:
    """The URIs among `uris` that exist. Folders holding many of them are listed once (on object
    storage a listing answers 1,000 keys a request) instead of one request per file: 1 M clips cost
    about 2,000 listing requests where per-file checks took 2 M."""
    by_folder: dict[str, list[str]] = {}
    for uri in uris:
        by_folder.setdefault(posixpath.dirname(uri), []).append(uri)
    present: set[str] = set()
    for folder, members in by_folder.items():
        if len(members) < LIST_FROM:
            present.update(u for u in members if file_exists(u))
            continue
        fs, path = fsspec.core.url_to_fs(folder)
        try:
            listed = {fs._strip_protocol(p) for p in fs.ls(path, detail=False)}
        except FileNotFoundError:
            continue
        present.update(u for u in members if fs._strip_protocol(u) in listed)
    return present
