"""`new_upload_batches`: turns each finished upload batch in the landing area into a partition and a run.

A batch is a subfolder of the landing location (local folder or fsspec URI). It is finished when it
holds a `_READY` marker, or when its files (count, bytes, newest mtime) did not change between two ticks.

The cursor is a high-water mark over (finish time, name) of the batches, plus two small maps that only
hold batches above the mark: the ones already requested, and the pending ones' last signatures. The mark
advances over every batch below the oldest pending one, so the cursor stays small however many batches
have landed. Batches that already are partitions are never requested again. At most `max_batches_per_tick`
batches are requested per tick; the rest follow on later ticks.
"""

import json
import posixpath
import time
from dataclasses import dataclass

import dagster as dg
import fsspec

from curator_assets.partitions import upload_batches
from curator_assets.resources import CuratorSettings
from curator_core.batches import BATCH_KEY, BATCH_KEY_RULE
from curator_core.listing import find_files
from curator_core.storage import configure

READY_MARKER = "_READY"
MAX_BATCHES_PER_TICK = 25


@dataclass(frozen=True)
class LandedBatch:
    name: str
    finished_at: float  # the _READY marker's mtime, else the newest file's mtime
    signature: str  # files, bytes, newest mtime: unchanged across two ticks means the upload is done
    ready: bool

    @property
    def order(self) -> tuple[float, str]:
        return (self.finished_at, self.name)


def scan_landing(landing: str) -> list[LandedBatch]:
    """Every batch folder under `landing` with its state, from one recursive listing of each."""
    fs, root = fsspec.core.url_to_fs(landing)
    root = root.rstrip("/")
    if not fs.exists(root):
        return []
    stats: dict[str, list] = {}
    for path, info in find_files(fs, root).items():  # the batch folders are listed side by side
        rel = posixpath.relpath(path, root)
        batch, _, name = rel.partition("/")
        if not name:  # a file directly under landing is not a batch
            continue
        entry = stats.setdefault(batch, [0, 0, 0.0, None])
        mtime = _mtime(info)
        if name == READY_MARKER:
            entry[3] = mtime
            continue
        entry[0] += 1
        entry[1] += int(info.get("size") or 0)
        entry[2] = max(entry[2], mtime)
    return [
        LandedBatch(
            name=batch,
            finished_at=ready if ready is not None else newest,
            signature=f"{count}:{size}:{newest:.3f}",
            ready=ready is not None,
        )
        for batch, (count, size, newest, ready) in stats.items()
    ]


def _mtime(info: dict) -> float:
    value = info.get("mtime") or info.get("LastModified") or info.get("last_modified") or info.get("updated")
    if value is None:
        return 0.0
    return value.timestamp() if hasattr(value, "timestamp") else float(value)


@dataclass
class Decision:
    requested: list[str]
    cursor: str
    skipped: dict[str, str]  # batch -> why it was left out


def decide(
    batches: list[LandedBatch],
    cursor: str | None,
    known: set[str],
    max_batches: int = MAX_BATCHES_PER_TICK,
) -> Decision:
    """Which batches to request now, and the next cursor (pure: testable without Dagster)."""
    state = json.loads(cursor) if cursor else {}
    mark = tuple(state.get("mark", (float("-inf"), "")))
    done = set(state.get("done", []))
    pending = dict(state.get("pending", {}))
    requested: list[str] = []
    skipped: dict[str, str] = {}
    new_pending: dict[str, str] = {}
    for batch in sorted((b for b in batches if b.order > mark), key=lambda b: b.order):
        if batch.name in done:
            continue
        if not BATCH_KEY.match(batch.name):
            skipped[batch.name] = f"folder name is not a valid partition key ({BATCH_KEY_RULE})"
            done.add(batch.name)
            continue
        if batch.name in known:
            done.add(batch.name)
            continue
        finished = batch.ready or pending.get(batch.name) == batch.signature
        if finished and len(requested) < max_batches:
            requested.append(batch.name)
            done.add(batch.name)
        else:
            new_pending[batch.name] = batch.signature
    # Advance the mark over the batches, in order, that need nothing more.
    for batch in sorted((b for b in batches if b.order > mark), key=lambda b: b.order):
        if batch.name not in done:
            break
        mark = batch.order
    above = {b.name for b in batches if b.order > mark}
    next_state = {"mark": list(mark), "done": sorted(done & above), "pending": new_pending}
    return Decision(requested, json.dumps(next_state), skipped)


@dg.sensor(
    name="new_upload_batches",
    job_name="curate_batch",
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Adds a partition and requests a curate_batch run for each finished upload batch.",
)
def new_upload_batches(context: dg.SensorEvaluationContext, curator: CuratorSettings) -> dg.SensorResult:
    t0 = time.perf_counter()
    configure(curator.storage_config())
    batches = scan_landing(curator.landing_uri())
    known = set(context.instance.get_dynamic_partitions(upload_batches.name))
    decision = decide(batches, context.cursor, known)
    for name, why in decision.skipped.items():
        context.log.warning(f"batch folder {name!r} skipped: {why}")
    context.log.info(
        f"{len(batches)} batch folders, {len(decision.requested)} new in {time.perf_counter() - t0:.2f} s"
    )
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=name, partition_key=name) for name in decision.requested],
        dynamic_partitions_requests=[upload_batches.build_add_request(decision.requested)]
        if decision.requested
        else [],
        cursor=decision.cursor,
    )
