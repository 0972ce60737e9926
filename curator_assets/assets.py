"""The assets of an upload batch: raw_videos -> clips -> clip_embeddings, clip_captions -> training_shards,
and across batches, dataset_manifest.

Each materialization builds the curator_core pipeline of its step for one partition (batch), runs it on
Ray (RayRunner), replaces the batch's rows in the clip store and reports what it did. No IO manager moves
video through Dagster: the store is the hand-off between assets.
"""

import time

import dagster as dg

from curator_assets import checks
from curator_assets.configs import CaptionsConfig, ClipsConfig, EmbeddingsConfig, TrainingShardsConfig
from curator_assets.metadata import manifest_metadata, shard_metadata, step_metadata
from curator_assets.partitions import upload_batches
from curator_assets.resources import CuratorSettings, RayRunner
from curator_core.store import ClipStore, schemas
from curator_core.store.store import embeddings_table_name
from curator_core.training.manifest import write_manifest
from curator_core.training.options import ShardOptions
from curator_core.video.options import CurationOptions

GROUP = "video_curation"
KINDS = {"ray", "lancedb"}
OWNERS = ["team:video-curation"]


def _tags(stage: str) -> dict[str, str]:
    """What an asset is, as tags the UI can filter on: its place in the curation flow."""
    return {"curation_stage": stage, "data": "video"}


def _run(
    context,
    step: str,
    curator: CuratorSettings,
    ray_runner: RayRunner,
    options: CurationOptions,
    shard_options: ShardOptions | None = None,
):
    settings = curator.batch_settings(options, shard_options)
    t0 = time.perf_counter()
    summary = ray_runner.run_step(context, step, context.partition_key, settings)
    for note in summary.notes:
        context.log.warning(note)
    for failure in summary.failures:
        context.log.warning(f"failed: {failure['stage']} {failure['input']}: {failure['reason']}")
    return summary, time.perf_counter() - t0, ClipStore(settings.store_uri)


@dg.asset(
    partitions_def=upload_batches,
    group_name=GROUP,
    kinds=KINDS,
    code_version="raw_videos-1",
    owners=OWNERS,
    tags=_tags("ingest"),
    check_specs=checks.RAW_CHECKS,
    description="Inventory of the batch's video files with their probed metadata (table `videos`); "
    "unreadable files are recorded with their reason in `failures`.",
)
def raw_videos(
    context: dg.AssetExecutionContext, curator: CuratorSettings, ray_runner: RayRunner
) -> dg.MaterializeResult:
    summary, seconds, store = _run(context, "raw_videos", curator, ray_runner, CurationOptions())
    return dg.MaterializeResult(
        metadata=step_metadata(summary, "videos", schemas.VIDEOS, seconds),
        check_results=checks.raw_video_checks(store, context.partition_key),
    )


@dg.asset(
    deps=[raw_videos],
    partitions_def=upload_batches,
    group_name=GROUP,
    kinds=KINDS,
    code_version="clips-1",
    owners=OWNERS,
    tags=_tags("clipping"),
    check_specs=checks.CLIP_CHECKS,
    description="Clips of the batch: split at shot cuts (or a fixed stride), transcoded to H.264 MP4, "
    "scored and filtered by motion, with WebP previews (table `clips`, media under the output root).",
)
def clips(
    context: dg.AssetExecutionContext, config: ClipsConfig, curator: CuratorSettings, ray_runner: RayRunner
) -> dg.MaterializeResult:
    summary, seconds, store = _run(context, "clips", curator, ray_runner, config.options())
    return dg.MaterializeResult(
        metadata=step_metadata(summary, "clips", schemas.CLIPS, seconds),
        check_results=[
            *checks.clip_checks(store, context.partition_key),
            *checks.clip_input_checks(summary.failures),
        ],
    )


@dg.asset(
    deps=[clips],
    partitions_def=upload_batches,
    group_name=GROUP,
    kinds=KINDS | {"pytorch"},
    code_version="clip_embeddings-1",
    owners=OWNERS,
    tags=_tags("embedding"),
    check_specs=checks.EMBEDDING_CHECKS,
    description="open_clip embeddings of the batch's kept clips (mean of unit frame embeddings at 1 fps), "
    "one `clip_embeddings__<model>` table per model; searchable with `curator search`.",
)
def clip_embeddings(
    context: dg.AssetExecutionContext,
    config: EmbeddingsConfig,
    curator: CuratorSettings,
    ray_runner: RayRunner,
) -> dg.MaterializeResult:
    summary, seconds, store = _run(context, "clip_embeddings", curator, ray_runner, config.options())
    model_id = summary.models["embedding"]
    table = embeddings_table_name(model_id)
    schema = store.open(table).schema if table in store.table_names() else schemas.clip_embeddings(1)
    return dg.MaterializeResult(
        metadata=step_metadata(summary, table, schema, seconds),
        check_results=checks.embedding_checks(store, context.partition_key, model_id),
    )


@dg.asset(
    deps=[clips],
    partitions_def=upload_batches,
    group_name=GROUP,
    kinds=KINDS | {"pytorch"},
    code_version="clip_captions-1",
    owners=OWNERS,
    tags=_tags("captioning"),
    check_specs=checks.CAPTION_CHECKS,
    description="Captions of the batch's kept clips by a vision-language model (transformers), per window "
    "of frames at 2 fps, optionally rewritten by a text LM (table `clip_captions`).",
)
def clip_captions(
    context: dg.AssetExecutionContext,
    config: CaptionsConfig,
    curator: CuratorSettings,
    ray_runner: RayRunner,
) -> dg.MaterializeResult:
    summary, seconds, store = _run(context, "clip_captions", curator, ray_runner, config.options())
    return dg.MaterializeResult(
        metadata=step_metadata(summary, "clip_captions", schemas.CLIP_CAPTIONS, seconds),
        check_results=checks.caption_checks(store, context.partition_key),
    )


@dg.asset(
    deps=[clips, clip_embeddings, clip_captions],
    partitions_def=upload_batches,
    group_name=GROUP,
    kinds=KINDS | {"webdataset"},
    code_version="training_shards-1",
    owners=OWNERS,
    tags=_tags("training_data"),
    check_specs=checks.SHARD_CHECKS,
    description="The batch's kept clips that pass the selection rules, as WebDataset tar shards written "
    "by the Ray workers (<key>.mp4/.json/.txt/.npy per clip) under <shards_root>/<batch>/, with an "
    "index.json; one row per shard in table `training_shards`. Same batch and rules: same bytes.",
)
def training_shards(
    context: dg.AssetExecutionContext,
    config: TrainingShardsConfig,
    curator: CuratorSettings,
    ray_runner: RayRunner,
) -> dg.MaterializeResult:
    summary, seconds, store = _run(
        context, "training_shards", curator, ray_runner, CurationOptions(), config.options()
    )
    return dg.MaterializeResult(
        metadata=shard_metadata(summary, seconds),
        check_results=checks.shard_checks(store, summary.details["index_uri"]),
    )


# Rebuilt whenever a batch's shards change (the dataset_manifest_automation sensor evaluates this); a batch
# that has no shards yet does not hold the others back.
MANIFEST_AUTOMATION = dg.AutomationCondition.eager().without(~dg.AutomationCondition.any_deps_missing())


@dg.asset(
    deps=[training_shards],
    group_name=GROUP,
    kinds={"lancedb", "webdataset"},
    code_version="dataset_manifest-1",
    owners=OWNERS,
    tags=_tags("dataset"),
    automation_condition=MANIFEST_AUTOMATION,
    description="Every shard of every batch in one manifest (manifest.json, manifest.parquet) and a "
    "dataset card (DATASET_CARD.md) at the top of the shards root, built from table `training_shards`.",
)
def dataset_manifest(context: dg.AssetExecutionContext, curator: CuratorSettings) -> dg.MaterializeResult:
    settings = curator.batch_settings(CurationOptions())
    manifest = write_manifest(settings.store_uri, settings.shards_root)
    context.log.info(f"manifest: {manifest.totals}")
    return dg.MaterializeResult(metadata=manifest_metadata(manifest))


ASSETS = [raw_videos, clips, clip_embeddings, clip_captions, training_shards]  # one upload batch each
