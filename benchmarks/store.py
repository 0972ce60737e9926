"""Clip store at scale (issue: clip store). Prints figures; not a test.

100k 512-d embedding rows written in 20 batches of 5k (rows/s), IVF_FLAT index build time, query p50/p95
and recall@10 against exact search at 100k rows, and the cost of replacing one 5k batch in the 100k table.
Run: .venv/bin/python benchmarks/store.py [--rows 100000] [--dim 512] [--queries 100]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np

from curator_core.store import ClipStore, embeddings_table_name

MODEL = "bench/random-512"


def rows_for(batch: int, vectors: np.ndarray, offset: int) -> list[dict]:
    return [
        {"row_id": f"c{offset + i}", "uuid": f"c{offset + i}", "vector": v, "batch_key": f"b{batch}"}
        for i, v in enumerate(vectors)
    ]


def make_data(kind: str, rows: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    """ "uniform": i.i.d. Gaussian directions, the worst case for any partitioned index (no structure).
    "clustered": 1,000 topics with spread around each, closer to real clip embeddings."""
    if kind == "uniform":
        data = rng.normal(size=(rows, dim)).astype(np.float32)
    else:
        centers = rng.normal(size=(1000, dim)).astype(np.float32)
        data = centers[rng.integers(0, 1000, rows)] + 0.5 * rng.normal(size=(rows, dim)).astype(np.float32)
    return data / np.linalg.norm(data, axis=1, keepdims=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args()
    for kind in ("clustered", "uniform"):
        print(f"--- {kind} vectors")
        run(kind, args)


def run(kind: str, args: argparse.Namespace) -> None:
    rng = np.random.default_rng(0)
    data = make_data(kind, args.rows, args.dim, rng)
    with tempfile.TemporaryDirectory() as tmp:
        store = ClipStore(tmp, index_threshold=args.rows)
        t0 = time.perf_counter()
        for b, start in enumerate(range(0, args.rows, args.batch)):
            store.write_embeddings(f"b{b}", MODEL, rows_for(b, data[start : start + args.batch], start))
        insert_s = time.perf_counter() - t0
        print(
            f"insert {args.rows} x {args.dim} in batches of {args.batch}: {args.rows / insert_s:,.0f} rows/s"
        )

        t0 = time.perf_counter()
        store.ensure_index(embeddings_table_name(MODEL))
        print(f"IVF_FLAT index build: {time.perf_counter() - t0:.1f} s")

        queries = data[rng.choice(args.rows, args.queries, replace=False)] + rng.normal(
            scale=0.05, size=(args.queries, args.dim)
        ).astype(np.float32)
        table = store.db.open_table(embeddings_table_name(MODEL))
        exact = [set(f"c{i}" for i in np.argsort(-(data @ (q / np.linalg.norm(q))))[:10]) for q in queries]
        for nprobes in (32, 128):
            latencies, recalls = [], []
            for q, truth in zip(queries, exact, strict=True):
                t0 = time.perf_counter()
                hits = (
                    table.search(q.tolist())
                    .metric("cosine")
                    .nprobes(nprobes)
                    .limit(10)
                    .select(["uuid"])
                    .to_list()
                )
                latencies.append((time.perf_counter() - t0) * 1e3)
                recalls.append(len({h["uuid"] for h in hits} & truth) / 10)
            lat = sorted(latencies)
            print(
                f"query k=10 nprobes={nprobes}: p50 {statistics.median(lat):.1f} ms, "
                f"p95 {lat[int(0.95 * len(lat)) - 1]:.1f} ms, recall@10 {statistics.mean(recalls):.3f}"
            )
        latencies = []
        for q in queries[:20]:
            t0 = time.perf_counter()
            table.search(q.tolist()).metric("cosine").bypass_vector_index().limit(10).select(
                ["uuid"]
            ).to_list()
            latencies.append((time.perf_counter() - t0) * 1e3)
        print(f"exact scan (no index, recall 1.0 by construction): p50 {statistics.median(latencies):.1f} ms")

        new = rng.normal(size=(args.batch, args.dim)).astype(np.float32)
        t0 = time.perf_counter()
        store.write_embeddings("b3", MODEL, rows_for(3, new, 3 * args.batch))
        print(
            f"replace one {args.batch}-row batch in the {args.rows}-row table: {time.perf_counter() - t0:.2f} s"
        )
        assert table.count_rows() == args.rows


if __name__ == "__main__":
    main()
