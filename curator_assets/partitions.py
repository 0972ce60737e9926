"""Upload batches: one dynamic partition per batch folder in the landing area, shared by every asset."""

from __future__ import annotations

import dagster as dg

upload_batches = dg.DynamicPartitionsDefinition(name="upload_batches")

# Backfills keep Dagster's default, one run per partition (no backfill_policy, a beta parameter that warned
# at every import): a failed batch never blocks, or is retried with, the others.
