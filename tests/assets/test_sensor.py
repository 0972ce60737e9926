"""The upload sensor on a real instance: new batch -> one partition + one run request; re-tick -> nothing;
size-stable uploads without a marker; paging; 10,000 files within the tick budget."""

from __future__ import annotations

import json
import os
import time

import dagster as dg

from curator_assets.partitions import upload_batches
from curator_assets.resources import CuratorSettings
from curator_assets.sensors import LandedBatch, decide, new_upload_batches, scan_landing


def _tick(instance, landing, cursor=None) -> dg.SensorResult:
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"curator": CuratorSettings(landing=str(landing))}
    )
    return new_upload_batches(context)


def _apply(instance, result: dg.SensorResult) -> None:
    """What the daemon does with a tick's result: add the requested partitions."""
    for request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))


def _write(folder, name="v.mp4", size=100, mtime=None):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(b"x" * size)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def test_a_ready_batch_gives_one_partition_and_one_run_then_nothing(tmp_path):
    landing = tmp_path / "landing"
    _write(landing / "batch-1")
    (landing / "batch-1" / "_READY").touch()
    with dg.instance_for_test() as instance:
        first = _tick(instance, landing)
        assert [(r.run_key, r.partition_key) for r in first.run_requests] == [("batch-1", "batch-1")]
        (add,) = first.dynamic_partitions_requests
        assert add.partitions_def_name == upload_batches.name and list(add.partition_keys) == ["batch-1"]
        _apply(instance, first)
        again = _tick(instance, landing, first.cursor)
        assert again.run_requests == [] and not again.dynamic_partitions_requests
        # Even a lost cursor never requests a batch that already is a partition.
        assert _tick(instance, landing, None).run_requests == []


def test_a_batch_without_marker_is_requested_once_its_files_stop_changing(tmp_path):
    landing = tmp_path / "landing"
    _write(landing / "upload", size=100)
    with dg.instance_for_test() as instance:
        first = _tick(instance, landing)
        assert first.run_requests == []  # seen once: maybe still uploading
        _write(landing / "upload", "w.mp4", size=50)  # it grew
        second = _tick(instance, landing, first.cursor)
        assert second.run_requests == []
        third = _tick(instance, landing, second.cursor)  # unchanged since the last tick
        assert [r.partition_key for r in third.run_requests] == ["upload"]
        _apply(instance, third)
        assert _tick(instance, landing, third.cursor).run_requests == []


def test_cursor_is_a_high_water_mark_not_a_growing_list():
    batches = [LandedBatch(f"b{i:04d}", float(i), "s", True) for i in range(300)]
    decision = decide(batches, None, known=set(), max_batches=1000)
    assert len(decision.requested) == 300
    state = json.loads(decision.cursor)
    assert state == {"mark": [299.0, "b0299"], "done": [], "pending": {}}
    # A pending batch holds the mark back; batches after it are remembered only until it finishes.
    pending = [LandedBatch("slow", 10.5, "s1", False)]
    first = decide(batches + pending, None, set(), max_batches=1000)
    state = json.loads(first.cursor)
    assert (
        state["mark"] == [10.0, "b0010"] and len(state["done"]) == 289 and state["pending"] == {"slow": "s1"}
    )
    second = decide(batches + pending, first.cursor, set(), max_batches=1000)
    assert second.requested == ["slow"] and json.loads(second.cursor)["done"] == []


def test_ten_thousand_files_page_across_ticks_within_the_time_budget(tmp_path):
    landing = tmp_path / "landing"
    now = time.time() - 3600
    for b in range(100):  # 100 batches x 100 files
        folder = landing / f"batch-{b:03d}"
        for f in range(100):
            _write(folder, f"clip-{f:03d}.mp4", size=10, mtime=now + b)
        (folder / "_READY").touch()
        os.utime(folder / "_READY", (now + b, now + b))
    assert sum(len(files) for _, _, files in os.walk(landing)) == 10_100
    requested: list[str] = []
    ticks = []
    with dg.instance_for_test() as instance:
        cursor = None
        for _ in range(5):
            t0 = time.perf_counter()
            result = _tick(instance, landing, cursor)
            ticks.append(time.perf_counter() - t0)
            _apply(instance, result)
            cursor = result.cursor
            requested += [r.partition_key for r in result.run_requests]
        assert requested == [f"batch-{b:03d}" for b in range(100)]  # in upload order, 25 per tick
        assert len(instance.get_dynamic_partitions(upload_batches.name)) == 100
    # Dagster's default sensor budget is 60 s; a tick here lists 10k files once.
    assert max(ticks) < 30, ticks


def test_scan_counts_files_and_ignores_loose_files(tmp_path):
    landing = tmp_path / "landing"
    _write(landing, "loose.mp4")
    _write(landing / "b" / "nested", "deep.mp4", size=7)
    (batch,) = scan_landing(str(landing))
    assert batch.name == "b" and batch.signature.startswith("1:7:") and not batch.ready
    assert scan_landing(str(tmp_path / "missing")) == []
