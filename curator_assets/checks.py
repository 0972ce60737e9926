"""Asset checks, evaluated against the clip store right after each materialization of a batch:
clip ids unique, clip files exist and decode, every kept clip has an embedding (finite, unit-norm) and a
caption."""

from __future__ import annotations

from collections import Counter

import av
import dagster as dg
import fsspec
import numpy as np

from curator_core.store import ClipStore
from curator_core.store.store import embeddings_table_name, sql_literal

DECODE_SAMPLE = 200  # clips fully decoded per check (all of them in batches up to this size)


def _batch(batch_key: str) -> str:
    return f"batch_key = {sql_literal(batch_key)}"


def kept_clip_ids(store: ClipStore, batch_key: str) -> set[str]:
    rows = store.rows("clips", f"{_batch(batch_key)} AND kept = true")
    return set(rows.column("uuid").to_pylist())


CLIP_CHECKS = [
    dg.AssetCheckSpec("clip_ids_unique", asset="clips", description="no clip id appears twice in the store"),
    dg.AssetCheckSpec(
        "clip_files_exist_and_decode", asset="clips", description="every kept clip's file exists and decodes"
    ),
]
EMBEDDING_CHECKS = [
    dg.AssetCheckSpec(
        "every_kept_clip_has_an_embedding", asset="clip_embeddings", description="one vector per kept clip"
    ),
    dg.AssetCheckSpec(
        "embeddings_finite_unit_norm", asset="clip_embeddings", description="no NaN/inf; L2 norm 1 +- 1e-3"
    ),
]
CAPTION_CHECKS = [
    dg.AssetCheckSpec(
        "every_kept_clip_has_a_caption", asset="clip_captions", description="a caption for every kept clip"
    ),
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
            metadata={"batch_clip_ids": len(ids), "repeated_ids": repeated[:20]},
        ),
        dg.AssetCheckResult(
            check_name="clip_files_exist_and_decode",
            asset_key="clips",
            passed=not missing and not undecodable,
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
        metadata={"kept_clips": len(kept), "covered": len(have & kept), "missing": sorted(kept - have)[:20]},
    )


SHARD_VERIFY_SAMPLE = 20  # shards read back in full per check (every shard's size is checked)
SHARD_CHECKS = [
    dg.AssetCheckSpec(
        "shards_open_and_complete",
        asset="training_shards",
        description="every shard the batch's index lists exists with its size and is in the store; up to "
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
