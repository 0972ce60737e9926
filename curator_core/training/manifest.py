"""The dataset across batches: one manifest of every shard of every batch, and a dataset card.

Built from the clip store's `training_shards` table (one row per shard, committed with each batch's
export), never by listing shard folders: a batch whose export failed part way keeps its committed shards.
Written under the shards root, each file atomically:
  manifest.json      batches (counts, rules, models, lineage) and every shard (uri, samples, bytes, sha256)
  manifest.parquet   one row per shard, for tools that read tables
  DATASET_CARD.md    counts, a duration histogram, score distributions (dataset_card_scores.png),
                     models used and selection rules
The files depend on the shards only (no timestamps): rebuilding an unchanged dataset gives the same bytes.
"""

from __future__ import annotations

import base64
import io
import json
import posixpath
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from curator_core.atomic import write_atomic
from curator_core.store import ClipStore
from curator_core.training.stats import duration_labels, merge_stats, score_bin_value

MANIFEST_JSON, MANIFEST_PARQUET = "manifest.json", "manifest.parquet"
CARD, CARD_PLOT = "DATASET_CARD.md", "dataset_card_scores.png"
PARQUET_SCHEMA = pa.schema(
    [("batch_key", pa.string()), ("uri", pa.string()), ("samples", pa.int64()), ("bytes", pa.int64()),
     ("sha256", pa.string()), ("generation", pa.string())]
)  # fmt: skip
SHARD_COLUMNS = [
    "batch_key", "shard_index", "shard_uri", "generation", "samples", "bytes", "content_hash", "parts",
    "model_id", "caption_model", "code_version", "params_hash",
]  # fmt: skip


@dataclass
class Manifest:
    root: str
    batches: list[dict]
    shards: list[dict]
    stats: dict  # merged histograms of every sample (training.stats)

    @property
    def totals(self) -> dict[str, Any]:
        return {
            "batches": len(self.batches),
            "shards": len(self.shards),
            "samples": sum(s["samples"] for s in self.shards),
            "bytes": sum(s["bytes"] for s in self.shards),
            "hours": round(self.stats.get("seconds", 0.0) / 3600, 4),
        }

    def uri(self, name: str) -> str:
        return posixpath.join(self.root.rstrip("/"), name)

    def to_dict(self) -> dict:
        return {"totals": self.totals, "batches": self.batches, "shards": self.shards}


def collect_manifest(store: ClipStore, root: str) -> Manifest:
    """Every committed shard of every batch, grouped by batch, from the store."""
    rows = store.rows("training_shards", columns=[*SHARD_COLUMNS, "rules_json", "stats_json"]).to_pylist()
    rows.sort(key=lambda r: (r["batch_key"], r["shard_index"]))
    batches: dict[str, dict] = {}
    shards, per_batch_stats = [], {}
    for r in rows:
        shard = {
            "batch_key": r["batch_key"],
            "uri": r["shard_uri"],
            "samples": r["samples"],
            "bytes": r["bytes"],
            "sha256": r["content_hash"],
        }
        shards.append(shard)
        batch = batches.setdefault(
            r["batch_key"],
            {
                "batch_key": r["batch_key"],
                "generation": r["generation"],
                "shards": 0,
                "samples": 0,
                "bytes": 0,
                "parts": r["parts"].split(","),
                "embedding_model": r["model_id"],
                "caption_model": r["caption_model"],
                "rules": json.loads(r["rules_json"]),
                "lineage": {"code_version": r["code_version"], "params_hash": r["params_hash"]},
            },
        )
        batch["shards"] += 1
        batch["samples"] += r["samples"]
        batch["bytes"] += r["bytes"]
        per_batch_stats.setdefault(r["batch_key"], []).append(json.loads(r["stats_json"]))
    for key, batch in batches.items():
        batch["seconds"] = round(merge_stats(per_batch_stats[key])["seconds"], 3)
    stats = merge_stats(s for parts in per_batch_stats.values() for s in parts)
    return Manifest(root, list(batches.values()), shards, stats)


def write_manifest(store_uri: str, root: str, storage_options: dict[str, Any] | None = None) -> Manifest:
    """Collect the manifest and write its files (module docstring). Returns what was written."""
    manifest = collect_manifest(ClipStore(store_uri), root)
    write_atomic(
        manifest.uri(MANIFEST_JSON),
        json.dumps(manifest.to_dict(), indent=2, sort_keys=True).encode(),
        storage_options,
    )
    generation = {b["batch_key"]: b["generation"] for b in manifest.batches}
    table = pa.Table.from_pylist(
        [{**s, "generation": generation[s["batch_key"]]} for s in manifest.shards], schema=PARQUET_SCHEMA
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    write_atomic(manifest.uri(MANIFEST_PARQUET), buffer.getvalue(), storage_options)
    write_atomic(manifest.uri(CARD_PLOT), score_plot_png(manifest.stats), storage_options)
    write_atomic(manifest.uri(CARD), dataset_card(manifest, CARD_PLOT).encode(), storage_options)
    return manifest


def dataset_card(manifest: Manifest, plot_ref: str) -> str:
    """The card as markdown; `plot_ref` is where the score plot is (a relative file or a data URI)."""
    t = manifest.totals
    lines = [
        "# Dataset card",
        "",
        f"{t['samples']} clips ({t['hours']} h) in {t['shards']} WebDataset shards "
        f"({human_bytes(t['bytes'])}) from {t['batches']} batches. Each sample: "
        "`<uuid>.mp4` (H.264 clip), `.json` (source, span, fps, size, scores, captions, lineage), "
        "`.txt` (caption), `.npy` (float32 embedding). Shard list: `manifest.json` / `manifest.parquet`.",
        "",
        "## Batches",
        "",
        "| batch | shards | samples | seconds | size | embedding model | caption model |",
        "|---|---|---|---|---|---|---|",
    ]
    for b in manifest.batches:
        lines.append(
            f"| {b['batch_key']} | {b['shards']} | {b['samples']} | {b['seconds']} | "
            f"{human_bytes(b['bytes'])} | {b['embedding_model'] or '-'} | {b['caption_model'] or '-'} |"
        )
    lines += ["", "## Clip durations", "", "| seconds | clips | |", "|---|---|---|"]
    counts = manifest.stats.get("durations", {})
    peak = max(counts.values(), default=1)
    for label in duration_labels():
        n = counts.get(label, 0)
        if n:
            lines.append(f"| {label} | {n} | {'█' * max(1, round(20 * n / peak))} |")
    lines += ["", "## Score distributions", "", f"![score distributions]({plot_ref})", ""]
    models = sorted({m for b in manifest.batches for m in (b["embedding_model"], b["caption_model"]) if m})
    lines += ["## Models", ""] + [f"- `{m}`" for m in models] + [""]
    lines += ["## Selection rules", ""]
    distinct = {json.dumps(b["rules"], sort_keys=True) for b in manifest.batches}
    if len(distinct) == 1:
        lines += ["Every batch: `" + distinct.pop() + "`"]
    for b in manifest.batches if len(distinct) > 1 else []:
        lines.append(f"- {b['batch_key']}: `{json.dumps(b['rules'], sort_keys=True)}`")
    return "\n".join(lines) + "\n"


def score_plot_png(stats: dict, width: int = 720, panel_height: int = 150) -> bytes:
    """One bar chart per score: clips per half-decade bin of the score's value (every bin from the lowest
    to the highest occupied one, so gaps show), each bar labelled with its count, as a PNG."""
    from PIL import Image, ImageDraw, ImageFont

    scores = stats.get("scores", {}) or {"(no scores)": {}}
    font = ImageFont.load_default(size=12)
    image = Image.new("RGB", (width, panel_height * len(scores)), "white")
    draw = ImageDraw.Draw(image)
    for i, (name, bins) in enumerate(sorted(scores.items())):
        top, base = i * panel_height, (i + 1) * panel_height - 24
        draw.text(
            (8, top + 4), f"{name}: {sum(bins.values())} clips (bins: lower edge)", fill="black", font=font
        )
        labels = _contiguous_bins(bins)
        peak = max(bins.values(), default=1)
        bar_w = min(64, (width - 20) // max(1, len(labels)))
        for j, label in enumerate(labels):
            n = bins.get(label, 0)
            h = int((panel_height - 64) * n / peak)
            x = 10 + j * bar_w
            if n:
                draw.rectangle([x, base - h, x + bar_w - 6, base], fill="#4a7bd0")
                draw.text((x, base - h - 14), str(n), fill="black", font=font)
            draw.text((x, base + 4), label, fill="black", font=font)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _contiguous_bins(bins: dict[str, int]) -> list[str]:
    """The occupied bins' labels, with the empty half-decade bins between them filled in, in value order."""
    from curator_core.training.stats import score_bin

    values = sorted(score_bin_value(label) for label in bins)
    if len(values) < 2 or values[0] <= 0:  # zero or negative scores: only the occupied bins
        return sorted(bins, key=score_bin_value)
    labels, value = [], values[0]
    while value <= values[-1] * (1 + 1e-9):
        labels.append(score_bin(value))
        value *= 10**0.5
    return labels


def human_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return f"{n:.2f} TiB"


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()
