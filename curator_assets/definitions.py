"""The one Definitions of the project (workspace.yaml points here; `dagster dev` at the repo root loads it)."""

from __future__ import annotations

import dagster as dg

from curator_assets.assets import ASSETS
from curator_assets.partitions import upload_batches
from curator_assets.resources import CuratorSettings, RayRunner
from curator_assets.sensors import new_upload_batches

# Parallelism lives in Ray: Dagster runs the steps one after another in the run process.
curate_batch = dg.define_asset_job(
    "curate_batch",
    selection=dg.AssetSelection.assets(*ASSETS),
    partitions_def=upload_batches,
    executor_def=dg.in_process_executor,
    description="All four assets of one upload batch.",
)

defs = dg.Definitions(
    assets=ASSETS,
    jobs=[curate_batch],
    sensors=[new_upload_batches],
    resources={"curator": CuratorSettings(), "ray_runner": RayRunner()},
)
