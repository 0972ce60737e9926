"""What the UI shows for a materialization: row count, column schema, timing and throughput, failures
with reasons, a preview table (with thumbnails), the store location and any demo-model warning."""

from __future__ import annotations

import dagster as dg
import pyarrow as pa

from curator_core.batches import StepSummary


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


def column_schema(schema: pa.Schema) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(f.name, str(f.type)) for f in schema])


def step_metadata(summary: StepSummary, table: str, schema: pa.Schema, run_s: float) -> dict:
    metadata = {
        "dagster/row_count": dg.MetadataValue.int(summary.tables.get(table, 0)),
        "dagster/column_schema": column_schema(schema),
        "pipeline_seconds": dg.MetadataValue.float(round(summary.pipeline_s, 3)),
        "step_seconds": dg.MetadataValue.float(round(run_s, 3)),
        "video_seconds": dg.MetadataValue.float(round(summary.video_seconds, 3)),
        "throughput_video_s_per_s": dg.MetadataValue.float(round(summary.throughput, 3)),
        "rows_written": dg.MetadataValue.json(summary.tables),
        "failures": dg.MetadataValue.int(len(summary.failures)),
        "failure_reasons": dg.MetadataValue.md(markdown_table(summary.failures)),
        "preview": dg.MetadataValue.md(markdown_table(summary.preview)),
        "store_uri": dg.MetadataValue.path(summary.store_uri),
        "store_table": dg.MetadataValue.text(table),
    }
    if summary.models:
        metadata["models"] = dg.MetadataValue.json(summary.models)
    if summary.ray_job_id:
        metadata["ray_job_id"] = dg.MetadataValue.text(summary.ray_job_id)
    metadata["demo_models"] = dg.MetadataValue.bool(bool(summary.notes))
    if summary.notes:
        metadata["notes"] = dg.MetadataValue.md("\n".join(f"- **{n}**" for n in summary.notes))
    return metadata
