"""Asset checks, evaluated against the clip store right after each materialization of a batch:
every video readable, every input processed, clip ids unique, clip files exist and decode, every kept
clip has an embedding (finite, unit-norm) and a caption, shards complete.

Checks are partitioned like their assets (one result per batch, so a broken batch stays red whatever
other batches do). Severity: WARN when some of a batch's inputs failed (the count and the reasons are in
the result), ERROR when outputs are broken or nothing of the batch could be used."""

from __future__ import annotations

import warnings
from collections import Counter

import av
import dagster as dg
import fsspec
import numpy as np

from curator_assets.partitions import upload_batches
from curator_core.store import ClipStore
from curator_core.store.store import embeddings_table_name, sql_literal

DECODE_SAMPLE = 200  # clips fully decoded per check (all of them in batches up to this size)


def _batch(batch_key: str) -> str:
    return f"batch_key = {sql_literal(batch_key)}"


def kept_clip_ids(store: ClipStore, batch_key: str) -> set[str]:
    rows = store.rows("clips", f"{_batch(batch_key)} AND kept = true")
    return set(rows.column("uuid").to_pylist())


def _spec(name: str, asset: str, description: str, blocking: bool = False) -> dg.AssetCheckSpec:
    """A check with one result per upload batch (Dagster 1.13 marks partitioned checks as a preview: the
    warning is silenced here, where the choice is made, and nowhere else). A blocking check that fails
    with ERROR fails its step, so the run stops there instead of running the batch's later steps."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Specifying a partitions_def on an AssetCheckSpec")
        return dg.AssetCheckSpec(
            name, asset=asset, description=description, partitions_def=upload_batches, blocking=blocking
        )


MAX_REASONS = 20  # failures listed by name in a check result
RAW_CHECKS = [
    _spec(
        "every_video_readable",
        "raw_videos",
        "every file of the batch opens and probes as a video; WARN when some do not (count, share and "
        "reasons), ERROR when none does (blocking: the batch's later steps do not run)",
        blocking=True,
    ),
]
CLIP_CHECKS = [
    _spec("clip_ids_unique", "clips", "no clip id appears twice in the store"),
    _spec("clip_files_exist_and_decode", "clips", "every kept clip's file exists and decodes"),
    _spec(
        "every_input_processed",
        "clips",
        "every video of the batch was split and transcoded; WARN with the count and reasons of those that failed",
    ),
]
EMBEDDING_CHECKS = [
    _spec("every_kept_clip_has_an_embedding", "clip_embeddings", "one vector per kept clip"),
    _spec("embeddings_finite_unit_norm", "clip_embeddings", "no NaN/inf; L2 norm 1 +- 1e-3"),
]
CAPTION_CHECKS = [
    _spec("every_kept_clip_has_a_caption", "clip_captions", "a caption for every kept clip"),
]


def _readable_description(rows: list[dict], bad: list[dict]) -> str | None:
    if not rows:
        return "the batch's landing folder holds no video file"
    if len(bad) == len(rows):
        return f"none of the {len(rows)} files could be read; {bad[0]['source_uri']}: {bad[0]['error']}"
    return f"{len(bad)} of {len(rows)} files could not be read" if bad else None


def raw_video_checks(store: ClipStore, batch_key: str) -> list[dg.AssetCheckResult]:
    rows = store.rows("videos", _batch(batch_key), columns=["source_uri", "status", "error"]).to_pylist()
    bad = sorted((r for r in rows if r["status"] == "failed"), key=lambda r: r["source_uri"])
    readable = len(rows) - len(bad)
    return [
        dg.AssetCheckResult(
            check_name="every_video_readable",
            asset_key="raw_videos",
            passed=not bad and readable > 0,
            severity=dg.AssetCheckSeverity.WARN if readable else dg.AssetCheckSeverity.ERROR,
            description=_readable_description(rows, bad),
            metadata={
                "files": len(rows),
                "readable": readable,
                "failed": len(bad),
                "failed_share": round(len(bad) / len(rows), 4) if rows else 1.0,
                "reasons": {r["source_uri"]: r["error"] or "" for r in bad[:MAX_REASONS]},
            },
        )
    ]


def clip_input_checks(failures: list[dict[str, str]]) -> list[dg.AssetCheckResult]:
    """The clips step's failed inputs (files `every_video_readable` reports are not among them)."""
    return _input_checks(failures, "clips", "every_input_processed")


def _input_checks(failures: list[dict[str, str]], asset: str, check_name: str) -> list[dg.AssetCheckResult]:
    """WARN with the count and reasons of the step's failed inputs (each named once)."""
    reasons: dict[str, str] = {}
    for failure in failures:
        reasons.setdefault(failure["input"], f"{failure['stage']}: {failure['reason']}")
    return [
        dg.AssetCheckResult(
            check_name=check_name,
            asset_key=asset,
            passed=not reasons,
            severity=dg.AssetCheckSeverity.WARN,
            description=f"{len(reasons)} inputs failed" if reasons else None,
            metadata={"failed": len(reasons), "reasons": dict(sorted(reasons.items())[:MAX_REASONS])},
        )
    ]


def clip_checks(store: ClipStore, batch_key: str) -> list[dg.AssetCheckResult]:
    batch_rows = store.rows("clips", _batch(batch_key)).to_pylist()
    # This batch's ids anywhere in the store (a query on the batch's ids, not a scan of every clip).
    ids = sorted({r["uuid"] for r in batch_rows})
    in_store = (
        store.rows("clips", "uuid IN (" + ", ".join(sql_literal(u) for u in ids) + ")")
        .column("uuid")
        .to_pylist()
        if ids
        else []
    )
    repeated = sorted(u for u, n in Counter(in_store).items() if n > 1)
    rows = [r for r in batch_rows if r["kept"]]
    missing, undecodable = [], []
    for i, row in enumerate(sorted(rows, key=lambda r: r["uuid"])):
        fs, path = fsspec.core.url_to_fs(row["media_uri"] or "")
        if not row["media_uri"] or not fs.exists(path):
            missing.append(row["uuid"])
        elif i < DECODE_SAMPLE and not _decodes(fs, path):
            undecodable.append(row["uuid"])
    return [
        dg.AssetCheckResult(
            check_name="clip_ids_unique",
            asset_key="clips",
            passed=not repeated,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={"batch_clip_ids": len(ids), "repeated_ids": repeated[:20]},
        ),
        dg.AssetCheckResult(
            check_name="clip_files_exist_and_decode",
            asset_key="clips",
            passed=not missing and not undecodable,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={
                "kept_clips": len(rows),
                "decoded": min(len(rows), DECODE_SAMPLE),
                "missing": missing[:20],
                "undecodable": undecodable[:20],
            },
        ),
    ]


def _decodes(fs, path: str) -> bool:
    try:
        with fs.open(path, "rb") as handle, av.open(handle) as container:
            frames = sum(1 for _ in container.decode(video=0))
        return frames > 0
    except (av.error.FFmpegError, IndexError, ValueError):
        return False


def embedding_checks(store: ClipStore, batch_key: str, model_id: str) -> list[dg.AssetCheckResult]:
    kept = kept_clip_ids(store, batch_key)
    rows = store.rows(embeddings_table_name(model_id), _batch(batch_key))
    have = set(rows.column("uuid").to_pylist()) if rows.num_rows else set()
    vectors = (
        np.array(rows.column("vector").to_pylist(), dtype=np.float32) if rows.num_rows else np.zeros((0, 1))
    )
    finite = bool(np.isfinite(vectors).all())
    norms = np.linalg.norm(vectors, axis=1) if len(vectors) else np.ones(0)
    off = int((np.abs(norms - 1.0) > 1e-3).sum())
    return [
        _every_kept_clip_has("every_kept_clip_has_an_embedding", "clip_embeddings", kept, have),
        dg.AssetCheckResult(
            check_name="embeddings_finite_unit_norm",
            asset_key="clip_embeddings",
            passed=finite and off == 0,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={"vectors": len(vectors), "all_finite": finite, "norm_off_by_more_than_1e-3": off},
        ),
    ]


def caption_checks(store: ClipStore, batch_key: str) -> list[dg.AssetCheckResult]:
    kept = kept_clip_ids(store, batch_key)
    rows = store.rows("clip_captions", f"{_batch(batch_key)} AND kind = 'caption'")
    have = set(rows.column("uuid").to_pylist()) if rows.num_rows else set()
    return [_every_kept_clip_has("every_kept_clip_has_a_caption", "clip_captions", kept, have)]


def _every_kept_clip_has(check_name: str, asset: str, kept: set[str], have: set[str]) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=check_name,
        asset_key=asset,
        passed=kept <= have,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"kept_clips": len(kept), "covered": len(have & kept), "missing": sorted(kept - have)[:20]},
    )


SHARD_VERIFY_SAMPLE = 20  # shards read back in full per check (every shard's size is checked)
SHARD_CHECKS = [
    _spec(
        "shards_open_and_complete",
        "training_shards",
        "every shard the batch's index lists exists with its size and is in the store; up to "
        f"{SHARD_VERIFY_SAMPLE} are read back in full: they open, match their sha256, hold the listed "
        "sample count, and every sample has all its parts",
    ),
]


def shard_checks(store: ClipStore, index_uri: str) -> list[dg.AssetCheckResult]:
    from curator_core.training.shards import read_index, verify_shards

    index = read_index(index_uri)
    listed = {s["uri"] for s in index["shards"]}
    rows = store.rows("training_shards", _batch(index["batch_key"]), columns=["shard_uri"])
    not_in_store = sorted(listed - set(rows.column("shard_uri").to_pylist()))
    problems = {uri: p[:5] for uri, p in verify_shards(index, read_back=SHARD_VERIFY_SAMPLE).items() if p}
    return [
        dg.AssetCheckResult(
            check_name="shards_open_and_complete",
            asset_key="training_shards",
            passed=not (problems or not_in_store),
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={
                "shards": len(listed),
                "read_back": min(len(listed), SHARD_VERIFY_SAMPLE),
                "samples": index["samples"],
                "parts": ", ".join(index["parts"]),
                "not_in_store": not_in_store[:20],
                "problems": dict(sorted(problems.items())[:20]),
            },
        )
    ]
