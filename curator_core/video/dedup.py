"""Semantic deduplication over clip embeddings, on CPU (numpy), within a batch and against the store.

Clips are ranked (aesthetic score, then duration, both descending); walking down the ranking, a clip whose
cosine similarity to a clip already kept is at least `1 - eps` is a duplicate of that clip. Against the
store, each remaining clip's nearest neighbour from other batches (ANN) is checked the same way. Decisions
are recorded in the `clip_duplicates` table of the batch: which clip duplicates which, how similar, why.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from curator_core.store.records import Lineage
from curator_core.store.schemas import CLIP_DUPLICATES
from curator_core.store.store import ClipStore, embeddings_table_name, sql_literal


@dataclass(frozen=True)
class Duplicate:
    uuid: str
    duplicate_of: str
    similarity: float
    reason: str


def find_duplicates(uuids: list[str], vectors: np.ndarray, ranks: list[tuple], eps: float) -> list[Duplicate]:
    """Greedy dedup of unit `vectors` in rank order (higher rank tuples are better and kept first)."""
    order = sorted(range(len(uuids)), key=lambda i: ranks[i], reverse=True)
    kept: list[int] = []
    kept_vectors = np.zeros((0, vectors.shape[1] if vectors.ndim == 2 else 1), np.float32)
    out: list[Duplicate] = []
    for i in order:
        if len(kept):
            sims = kept_vectors @ vectors[i]
            best = int(np.argmax(sims))
            if sims[best] >= 1.0 - eps:
                j = kept[best]
                reason = f"cosine {sims[best]:.4f} >= {1 - eps:.4f}; kept the better-ranked clip {ranks[j]} over {ranks[i]}"
                out.append(Duplicate(uuids[i], uuids[j], float(sims[best]), reason))
                continue
        kept.append(i)
        kept_vectors = np.vstack([kept_vectors, vectors[i][None]])
    return out


def dedup_batch(
    store: ClipStore, batch_key: str, model_id: str, eps: float, lineage: Lineage
) -> list[Duplicate]:
    """Find the batch's duplicates (within the batch, then against other batches) and record them."""
    where = f"batch_key = {sql_literal(batch_key)}"
    emb = store.rows(embeddings_table_name(model_id), where).to_pylist()
    clips = {r["uuid"]: r for r in store.rows("clips", where).to_pylist()}
    emb = [e for e in emb if e["uuid"] in clips]
    if not emb:
        store.replace_batch("clip_duplicates", batch_key, [], CLIP_DUPLICATES)
        return []
    uuids = [e["uuid"] for e in emb]
    vectors = np.asarray([e["vector"] for e in emb], np.float32)
    ranks = [
        (dict(clips[u]["scores"] or []).get("aesthetic", 0.0), clips[u]["duration_s"] or 0.0) for u in uuids
    ]
    found = find_duplicates(uuids, vectors, ranks, eps)
    dup = {d.uuid for d in found}
    for u, v in zip(uuids, vectors, strict=True):
        if u in dup:
            continue
        hits = store.search_vector(model_id, v, k=2, where=f"batch_key != {sql_literal(batch_key)}")
        if hits and hits[0]["score"] >= 1.0 - eps:
            found.append(
                Duplicate(
                    u,
                    hits[0]["uuid"],
                    hits[0]["score"],
                    f"cosine {hits[0]['score']:.4f} to a clip of an earlier batch",
                )
            )
    rows = [
        {
            "row_id": d.uuid,
            "uuid": d.uuid,
            "duplicate_of": d.duplicate_of,
            "similarity": d.similarity,
            "reason": d.reason,
            **lineage.columns(clips[d.uuid]["source_uri"], clips[d.uuid]["content_hash"]),
            "model_id": model_id,
        }
        for d in found
    ]
    store.replace_batch("clip_duplicates", batch_key, rows, CLIP_DUPLICATES)
    return found
