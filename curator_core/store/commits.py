"""One commit point for a batch's rows in several tables (issue #19: a step's `clips` and `failures`, or
`videos` and `failures`, used to commit one after the other, and a kill between them left them from two
different runs).

LanceDB commits one table at a time, so the store keeps a small log table, `batch_commits`, of the
writes in flight, and every row carries the `commit_id` of the write that made it:

1. `pending`: the write is logged, then its rows are appended to each of its tables under its
   commit_id. Readers hide rows of pending commits, so nothing of it shows yet.
2. The commit point: one update of the log row flips it to `cleaning`, naming the (table, scope) pairs
   it wrote. From then on readers hide the rows it replaces (the batch's rows within each scope that do
   not carry its commit_id), so they see the new rows of every table at once.
3. The replaced rows are deleted, then the log row. The log holds only writes in flight, so the filter
   readers add stays short however many batches the store holds.

A write killed before its commit point leaves pending rows nobody sees; one killed after it leaves a
`cleaning` row whose deletes any later write of the batch finishes. A reader reads the log before and
after its data and reads again when the log moved in between, so it never mixes two log states.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from curator_core.store import schemas

if TYPE_CHECKING:
    from curator_core.store.store import ClipStore

logger = logging.getLogger(__name__)

LOG_TABLE = "batch_commits"
LOG_SCHEMA = pa.schema(
    [
        pa.field("commit_id", pa.string(), nullable=False),
        pa.field("batch_key", pa.string(), nullable=False),
        pa.field("owner", pa.string()),  # the step (or table and scope) the write belongs to
        pa.field("state", pa.string()),  # "pending" | "cleaning"
        pa.field("tables_json", pa.string()),  # {table: scope predicate or ""}, set at the commit point
        pa.field("started_at", pa.timestamp("us", tz="UTC")),
    ]
)
PENDING, CLEANING = "pending", "cleaning"
READ_ATTEMPTS = 20  # reads retried while the log keeps moving under them


EMBEDDINGS_PREFIX = "clip_embeddings__"


def sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def embeddings_table_name(model_id: str) -> str:
    return EMBEDDINGS_PREFIX + re.sub(r"[^A-Za-z0-9_]+", "_", model_id).strip("_")


def both(*predicates: str | None) -> str | None:
    """The predicates that are set, joined with AND."""
    parts = [f"({p})" for p in predicates if p]
    return " AND ".join(parts) or None


def _batch(batch_key: str, scope: str) -> str:
    return f"batch_key = {sql_literal(batch_key)}" + (f" AND ({scope})" if scope else "")


def _not_this_commit(commit_id: str) -> str:
    return f"(commit_id IS NULL OR commit_id != {sql_literal(commit_id)})"


def retry_commit(what: str, table: Any, action: Callable[[Any], Any], attempts: int = 20) -> Any:
    """Run `action(table)`, a commit, retrying the conflicts concurrent writers cause. Before each retry
    the handle moves to the table's latest version: a commit that conflicts with a concurrent overwrite
    (a racing create, see ClipStore.open) fails again on the version it was built on, however often."""
    for attempt in range(attempts + 1):
        try:
            return action(table)
        except Exception as exc:
            text = f"{type(exc).__name__} {exc}".lower()
            retryable = any(w in text for w in ("conflict", "retryable", "concurrent", "commit"))
            if attempt == attempts or not retryable:
                raise
            delay = min(2.0, 0.05 * 2**attempt) * (0.5 + random.random())
            logger.info(
                "commit conflict on %s (attempt %d), retrying in %.2fs: %s", what, attempt + 1, delay, exc
            )
            time.sleep(delay)
            table.checkout_latest()
    raise AssertionError("unreachable")


class CommitLog:
    """The `batch_commits` table of one store: what is in flight, and what readers must hide."""

    def __init__(self, store: ClipStore):
        self.store = store

    def _table(self, create: bool = False):
        if LOG_TABLE in self.store.table_names():
            return self.store.db.open_table(LOG_TABLE)
        return self.store.open(LOG_TABLE, LOG_SCHEMA) if create else None

    def entries(self, batch_key: str | None = None) -> tuple[int | None, list[dict]]:
        """(log version, entries in flight), for one batch or all."""
        table = self._table()
        if table is None:
            return None, []
        query = table.search()
        if batch_key is not None:
            query = query.where(f"batch_key = {sql_literal(batch_key)}")
        return table.version, query.limit(None).to_arrow().to_pylist()

    def version(self) -> int | None:
        table = self._table()
        return None if table is None else table.version

    def add(self, entry: dict) -> None:
        table = self._table(create=True)
        retry_commit(LOG_TABLE, table, lambda t: t.add(pa.Table.from_pylist([entry], schema=LOG_SCHEMA)))

    def mark_cleaning(self, commit_id: str, tables: dict[str, str]) -> None:
        """The commit point: one commit of the log makes every table's new rows visible together."""
        table = self._table()
        retry_commit(
            LOG_TABLE,
            table,
            lambda t: t.update(
                where=f"commit_id = {sql_literal(commit_id)}",
                values={"state": CLEANING, "tables_json": json.dumps(tables, sort_keys=True)},
            ),
        )

    def remove(self, commit_id: str) -> None:
        table = self._table()
        if table is not None:
            retry_commit(LOG_TABLE, table, lambda t: t.delete(f"commit_id = {sql_literal(commit_id)}"))

    def hidden(self, name: str, entries: list[dict]) -> str | None:
        """A predicate for table `name` that keeps only committed rows, given the log's entries."""
        pending = [e["commit_id"] for e in entries if e["state"] == PENDING]
        parts = []
        if pending:
            ids = ", ".join(sql_literal(c) for c in sorted(pending))
            parts.append(f"(commit_id IS NULL OR commit_id NOT IN ({ids}))")
        for entry in entries:
            if entry["state"] != CLEANING:
                continue
            tables = json.loads(entry["tables_json"] or "{}")
            if name in tables:
                parts.append(
                    f"NOT ({_batch(entry['batch_key'], tables[name])} AND {_not_this_commit(entry['commit_id'])})"
                )
        return " AND ".join(parts) or None

    def finish(self, entry: dict, tables: list[str]) -> None:
        """Complete what a write left in flight: delete what a committed write replaced, or the rows of
        one that never reached its commit point; then forget it."""
        existing = set(self.store.table_names())
        if entry["state"] == CLEANING:
            for name, scope in json.loads(entry["tables_json"] or "{}").items():
                if name in tables and name in existing:
                    where = f"{_batch(entry['batch_key'], scope)} AND {_not_this_commit(entry['commit_id'])}"
                    table = self.store.db.open_table(name)
                    retry_commit(name, table, lambda t, w=where: t.delete(w))
        else:
            for name in (t for t in tables if t in existing):
                table = self.store.db.open_table(name)
                where = f"commit_id = {sql_literal(entry['commit_id'])}"
                if table.count_rows(where):
                    retry_commit(name, table, lambda t, w=where: t.delete(w))
        self.remove(entry["commit_id"])


class BatchCommit:
    """Rows of one batch for one or more tables, made visible together when the `with` block ends.

    `owner` names the writer (a step); an earlier write of the same batch and owner that never reached
    its commit point (a killed run) is discarded when this one starts, or with `reuse` once this one
    has committed, so that its rows can be copied meanwhile (store.reuse). One writer per batch and
    owner at a time, as Dagster runs one materialization per partition."""

    def __init__(self, store: ClipStore, batch_key: str, owner: str, reuse: bool = False):
        self.store = store
        self.batch_key = batch_key
        self.owner = owner
        self.reuse = reuse
        self.commit_id = uuid.uuid4().hex
        self.log = CommitLog(store)
        self.written: dict[str, str] = {}  # table -> scope
        self.superseded: list[dict] = []  # earlier pending writes of the owner, discarded after this one

    def __enter__(self) -> BatchCommit:
        _, entries = self.log.entries(self.batch_key)
        tables = [t for t in self.store.table_names() if t != LOG_TABLE]
        for entry in entries:
            if entry["state"] == PENDING and entry["owner"] == self.owner and self.reuse:
                self.superseded.append(entry)
            elif entry["state"] == CLEANING or entry["owner"] == self.owner:
                logger.info(
                    "finishing %s write %s of batch %s left by an earlier run",
                    entry["state"],
                    entry["commit_id"],
                    self.batch_key,
                )
                self.log.finish(entry, tables)
        self.log.add(
            {
                "commit_id": self.commit_id,
                "batch_key": self.batch_key,
                "owner": self.owner,
                "state": PENDING,
                "tables_json": None,
                "started_at": datetime.now(UTC),
            }
        )
        return self

    def _claim(self, name: str, scope: str | None) -> None:
        """Record that this write replaces the batch's rows of `name` within `scope` (once per table)."""
        if name in self.written:
            raise ValueError(f"table {name!r} written twice in one commit of batch {self.batch_key!r}")
        self.written[name] = scope or ""

    def replace(
        self,
        name: str,
        rows: pa.Table | pa.RecordBatchReader | list[dict],
        schema: pa.Schema,
        scope: str | None = None,
    ) -> int:
        """Stage `rows` as the batch's rows of table `name` (within `scope`, an SQL predicate on the
        batch's rows this write owns). Hidden until the commit point. Returns the rows staged."""
        self._claim(name, scope)
        return append_rows(self.store, name, rows, schema, self.batch_key, self.commit_id)

    def expect(self, name: str, schema: pa.Schema | None = None, scope: str | None = None) -> None:
        """Table `name` gets this write's rows from elsewhere (workers: store.row_writer, with this
        commit_id): at the commit point they replace the batch's rows within `scope` as `replace` does.
        `schema`: create the table now (so that workers do not race to), where it is known."""
        self._claim(name, scope)
        if schema is not None:
            self.store.open(name, schema)

    def staged(self, name: str, columns: list[str] | None = None, limit: int | None = None) -> pa.Table:
        """Rows this write has staged in `name` so far (visible to it before the commit point)."""
        if name not in self.store.table_names():
            return pa.table({c: [] for c in columns or []})
        query = self.store.db.open_table(name).search().where(f"commit_id = {sql_literal(self.commit_id)}")
        return (query.select(columns) if columns else query).limit(limit).to_arrow()

    def staged_count(self, name: str) -> int:
        if name not in self.store.table_names():
            return 0
        return self.store.db.open_table(name).count_rows(f"commit_id = {sql_literal(self.commit_id)}")

    def __exit__(self, exc_type, exc, tb) -> None:
        entry = {"commit_id": self.commit_id, "batch_key": self.batch_key, "state": PENDING}
        if exc_type is not None:
            try:  # rows nobody saw; a later write of the batch removes them if this fails too
                self.log.finish(entry, list(self.written))
            except Exception:  # noqa: BLE001 - the original error is what the caller must see
                logger.exception("could not remove the staged rows of failed write %s", self.commit_id)
            return
        self.log.mark_cleaning(self.commit_id, self.written)
        self.log.finish(
            {**entry, "state": CLEANING, "tables_json": json.dumps(self.written)}, list(self.written)
        )
        tables = [t for t in self.store.table_names() if t != LOG_TABLE]
        for earlier in self.superseded:
            self.log.finish(earlier, tables)
        for name in self.written:
            compact(self.store, name)

    def write_clips(self, rows: list[dict]) -> int:
        """Clip rows, after checking that every media file they point at exists (no dangling rows)."""
        self.store.check_media(rows)
        return self.replace("clips", rows, schemas.CLIPS)

    def write_embeddings(self, model_id: str, rows: list[dict]) -> int:
        """The batch's embeddings by `model_id` (none: the batch's rows of that model go)."""
        name = embeddings_table_name(model_id)
        if rows:
            schema = schemas.clip_embeddings(len(rows[0]["vector"]))
        elif name in self.store.table_names():
            schema = schemas.clip_embeddings(
                self.store.db.open_table(name).schema.field("vector").type.list_size
            )
        else:
            return 0
        return self.replace(name, [{**row, "model_id": model_id} for row in rows], schema)


COMPACT_FROM = 64  # small fragments past which a table is compacted (workers append one per task)


def compact(store: ClipStore, name: str) -> bool:
    """Merge a table's small fragments (measured: 300 one-task appends made a filtered count 55x slower
    than after compaction). Best effort: a conflict with another batch's write leaves it for the next."""
    if name not in store.table_names():
        return False
    table = store.db.open_table(name)
    try:
        if table.stats()["fragment_stats"]["num_small_fragments"] < COMPACT_FROM:
            return False
        table.optimize()
        return True
    except Exception as exc:  # noqa: BLE001 - compaction is an optimization, never a reason to fail
        logger.warning("could not compact %s (it stays correct, only slower to read): %s", name, exc)
        return False


def _with_created_at(rows: list[dict]) -> list[dict]:
    now = datetime.now(UTC)
    return [{**row, "created_at": row.get("created_at") or now} for row in rows]


class _StagedCount:
    rows = 0


def append_rows(
    store: ClipStore,
    name: str,
    rows: pa.Table | pa.RecordBatchReader | list[dict],
    schema: pa.Schema,
    batch_key: str,
    commit_id: str,
) -> int:
    """Append `rows` of `batch_key` to table `name` under `commit_id` (hidden while that write is
    pending), creating the table with `schema` where needed. Returns the rows appended."""
    if isinstance(rows, list):
        rows = pa.Table.from_pylist(_with_created_at(rows), schema=schema)
    table = store.open(name, schema)
    staged = _StagedCount()
    data = _tagged(rows, schema, batch_key, commit_id, staged)
    if isinstance(data, pa.RecordBatchReader):
        table.add(data)  # a stream cannot be replayed; appends do not conflict with other appends
    elif data.num_rows:
        retry_commit(name, table, lambda t: t.add(data))
    return staged.rows


def _tagged(
    rows: pa.Table | pa.RecordBatchReader,
    schema: pa.Schema,
    batch_key: str,
    commit_id: str,
    count: _StagedCount,
) -> pa.Table | pa.RecordBatchReader:
    """`rows` cast to `schema`, checked (one batch, unique row ids) and tagged with the commit id."""
    ids: set[str] = set()

    def tag(batch: pa.RecordBatch) -> pa.RecordBatch:
        batch = batch.cast(schema)
        keys = set(batch.column(batch.schema.get_field_index("batch_key")).to_pylist()) - {batch_key}
        if keys:
            raise ValueError(f"rows for batch {batch_key!r} carry other batch keys: {sorted(keys)}")
        new = batch.column(batch.schema.get_field_index("row_id")).to_pylist()
        if len(set(new)) != len(new) or ids.intersection(new):
            raise ValueError(f"duplicate row_id values in the rows for batch {batch_key!r}")
        ids.update(new)
        count.rows += batch.num_rows
        index = schema.get_field_index("commit_id")
        return batch.set_column(
            index, schema.field(index), pa.array([commit_id] * batch.num_rows, pa.string())
        )

    if isinstance(rows, pa.RecordBatchReader):
        return pa.RecordBatchReader.from_batches(schema, (tag(b) for b in rows))
    table = rows.cast(schema)
    batches = [tag(b) for b in table.combine_chunks().to_batches()] if table.num_rows else []
    return pa.Table.from_batches(batches, schema=schema)


def consistent_read(store: ClipStore, name: str, read: Callable[[str | None], Any]) -> Any:
    """`read(predicate)` with the predicate that hides uncommitted and replaced rows of `name`, repeated
    when a commit moved the log while it read (so the data and the predicate belong together)."""
    if "commit_id" not in store.db.open_table(name).schema.names:
        return read(None)  # a table of an older store, not migrated yet: no write of this code made it
    log = CommitLog(store)
    for _ in range(READ_ATTEMPTS):
        version, entries = log.entries()
        result = read(log.hidden(name, entries))
        if log.version() == version:
            return result
    raise RuntimeError(f"{name}: the commit log kept changing during {READ_ATTEMPTS} reads; try again")
