"""Upload batches: one dynamic partition per batch folder in the landing area, shared by every asset."""

from __future__ import annotations

import dagster as dg

upload_batches = dg.DynamicPartitionsDefinition(name="upload_batches")

# One run per partition: a failed batch never blocks, or is retried with, the others.
BACKFILL_POLICY = dg.BackfillPolicy.multi_run(max_partitions_per_run=1)
