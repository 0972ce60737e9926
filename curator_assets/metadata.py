"""What the UI shows for a materialization: row count, column schema, timing and throughput, failures
with reasons, a preview table (with thumbnails), the store location and any demo-model warning."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pyarrow as pa

from curator_core.batches import StepSummary
from curator_core.store import schemas
from curator_core.training.manifest import (
    CARD,
    MANIFEST_JSON,
    MANIFEST_PARQUET,
    Manifest,
    dataset_card,
    png_data_uri,
    score_plot_png,
)


def _cell(value) -> str:
    if isinstance(value, str) and value.startswith("data:image/"):
        return f"![thumbnail]({value})"
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(rows: list[dict]) -> str:
    if not rows:
        return "_none_"
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def browser_url(uri: str) -> str:
    """A URL a browser opens: file:// for a local path, the URI itself for anything with a scheme."""
    if "://" in uri:
        return uri
    return Path(uri).resolve().as_uri()


def column_schema(schema: pa.Schema) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[
            dg.TableColumn(f.name, str(f.type), description=schemas.COLUMN_DESCRIPTIONS.get(f.name))
            for f in schema
        ]
    )


def step_metadata(summary: StepSummary, table: str, schema: pa.Schema, run_s: float) -> dict:
    metadata = {
        "dagster/row_count": dg.MetadataValue.int(summary.tables.get(table, 0)),
        "dagster/column_schema": column_schema(schema),
        "pipeline_seconds": dg.MetadataValue.float(round(float(summary.pipeline_s), 3)),
        "step_seconds": dg.MetadataValue.float(round(float(run_s), 3)),
        "video_seconds": dg.MetadataValue.float(round(float(summary.video_seconds), 3)),
        "throughput_video_s_per_s": dg.MetadataValue.float(round(float(summary.throughput), 3)),
        "rows_written": dg.MetadataValue.json(summary.tables),
        "failures": dg.MetadataValue.int(len(summary.failures)),
        "failure_reasons": dg.MetadataValue.md(markdown_table(summary.failures)),
        "preview": dg.MetadataValue.md(markdown_table(summary.preview)),
        "store_uri": dg.MetadataValue.path(summary.store_uri),
        "store_table": dg.MetadataValue.text(table),
    }
    details = summary.details
    if details.get("gallery_uri"):
        metadata["gallery"] = dg.MetadataValue.url(browser_url(details["gallery_uri"]))
    if details.get("output_folder"):
        metadata["output_folder"] = dg.MetadataValue.path(details["output_folder"])
    if details.get("landing_folder"):
        metadata["landing_folder"] = dg.MetadataValue.path(details["landing_folder"])
    if summary.faults:  # what died: nodes lost, actors restarted, tasks retried or lost after every retry
        metadata["faults"] = dg.MetadataValue.json(summary.faults)
    if "stale_outputs_removed" in details:  # what a re-run no longer produced: files and derived rows
        metadata["stale_outputs_removed"] = dg.MetadataValue.json(details["stale_outputs_removed"])
    if summary.models:
        metadata["models"] = dg.MetadataValue.json(summary.models)
    if summary.ray_job_id:
        metadata["ray_job_id"] = dg.MetadataValue.text(summary.ray_job_id)
    if summary.ray_dashboard:
        metadata["ray_dashboard"] = dg.MetadataValue.url(summary.ray_dashboard)
    metadata["demo_models"] = dg.MetadataValue.bool(bool(summary.notes))
    if summary.notes:
        metadata["notes"] = dg.MetadataValue.md("\n".join(f"- **{n}**" for n in summary.notes))
    return metadata


def shard_metadata(summary: StepSummary, run_s: float) -> dict:
    """The step's metadata plus what a training team needs: where the shards are and what was left out."""
    d = summary.details
    metadata = step_metadata(summary, "training_shards", schemas.TRAINING_SHARDS, run_s)
    listed = "\n".join(f"- `{uri}`" for uri in d["shard_uris"])
    if d["shards"] > len(d["shard_uris"]):
        listed += f"\n- ... {d['shards'] - len(d['shard_uris'])} more in `{d['index_uri']}`"
    metadata.update(
        {
            "shard_count": dg.MetadataValue.int(d["shards"]),
            "samples": dg.MetadataValue.int(d["samples"]),
            "bytes": dg.MetadataValue.int(d["bytes"]),
            "candidate_clips": dg.MetadataValue.int(d["candidates"]),
            "dropped_by_rule": dg.MetadataValue.json(d["dropped"]),
            "shards_folder": dg.MetadataValue.path(d["root"]),
            "index": dg.MetadataValue.path(d["index_uri"]),
            "shard_uris": dg.MetadataValue.md(listed or "_no shards_"),
            "generation": dg.MetadataValue.text(d["generation"]),
            "embedding_model": dg.MetadataValue.text(d["embedding_model"] or "none"),
        }
    )
    return metadata


def manifest_metadata(manifest: Manifest) -> dict:
    t = manifest.totals
    card = dataset_card(manifest, png_data_uri(score_plot_png(manifest.stats)))
    return {
        "dagster/row_count": dg.MetadataValue.int(t["shards"]),
        "batches": dg.MetadataValue.int(t["batches"]),
        "samples": dg.MetadataValue.int(t["samples"]),
        "bytes": dg.MetadataValue.int(t["bytes"]),
        "hours": dg.MetadataValue.float(float(t["hours"])),
        "manifest_json": dg.MetadataValue.path(manifest.uri(MANIFEST_JSON)),
        "manifest_parquet": dg.MetadataValue.path(manifest.uri(MANIFEST_PARQUET)),
        "dataset_card_file": dg.MetadataValue.path(manifest.uri(CARD)),
        "dataset_card": dg.MetadataValue.md(card),
    }
