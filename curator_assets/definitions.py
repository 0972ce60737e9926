"""The one Definitions of the project (workspace.yaml points here; `dagster dev` at the repo root loads it)."""

from __future__ import annotations

import dagster as dg

from curator_assets.assets import ASSETS, dataset_manifest
from curator_assets.resources import CuratorSettings, RayRunner
from curator_assets.sensors import new_upload_batches

curate_batch = dg.define_asset_job(
    "curate_batch",
    selection=dg.AssetSelection.assets(*ASSETS),  # partitioned by upload batch, as its assets are
    description="Every asset of one upload batch, from raw videos to training shards.",
)

# Rebuilds the dataset manifest after any batch's shards change (its automation condition). On by default:
# it only acts when shards were written, and Dagster's own default automation sensor starts switched off.
manifest_automation = dg.AutomationConditionSensorDefinition(
    "dataset_manifest_automation",
    target=dg.AssetSelection.assets(dataset_manifest),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Materializes dataset_manifest when training_shards of any batch were materialized.",
)

# Parallelism lives in Ray: every run, whoever launches it (this job, the asset graph, a backfill, the
# sensor, automation), runs its steps one after another in the run process, on one Ray.
defs = dg.Definitions(
    executor=dg.in_process_executor,
    assets=[*ASSETS, dataset_manifest],
    jobs=[curate_batch],
    sensors=[new_upload_batches, manifest_automation],
    resources={"curator": CuratorSettings(), "ray_runner": RayRunner()},
)
