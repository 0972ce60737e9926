"""The main job on embedded defaults (`curator demo`, `make run`): make a batch of sample videos, drop it
into the landing folder, add its partition and materialize every asset of the batch through Dagster, on
local Ray, into the clip store under ./state, down to its training shards; then rebuild the dataset
manifest (what the dataset_manifest_automation sensor does under `dagster dev`). Re-running replaces the
batch; nothing is duplicated."""

import json
import time
from pathlib import Path

import dagster as dg

from curator_assets.assets import dataset_manifest
from curator_assets.definitions import defs
from curator_assets.instance import project_instance
from curator_assets.partitions import upload_batches
from curator_assets.resources import CuratorSettings
from curator_assets.sensors import READY_MARKER
from curator_core.batches import check_batch_key
from curator_core.gallery import gallery_uri
from curator_core.models import registry
from curator_core.models.aesthetic import write_demo_aesthetic
from curator_core.models.open_clip_model import DEMO_EMBED_DIM, write_demo_model
from curator_core.models.transformers_models import write_demo_vlm
from curator_core.store import ClipStore
from curator_core.store.store import sql_literal
from curator_core.video.options import CurationOptions
from curator_core.video.samples import make_sample_batch

DEMO_BATCH = "demo-batch-0001"


def ensure_models() -> list[str]:
    """Demo checkpoints for the roles nobody configured; says so (they have random weights)."""
    notes = []
    try:
        registry.configured("embedding")
    except registry.MissingModelError:
        model_id = write_demo_model()
        write_demo_aesthetic(DEMO_EMBED_DIM, model_id)
        notes.append(f"embedding: {model_id}")
    try:
        registry.configured("captioning")
    except registry.MissingModelError:
        notes.append(f"captioning: {write_demo_vlm()}")
    if notes:
        return [
            "no real weights configured, so the demo uses tiny RANDOM-weight models written to "
            f"{registry.model_dir()} ({'; '.join(notes)}): their embeddings, captions and search results "
            "mean nothing. Configure real ones with `curator models download` "
            "(and `curator models download --hf Qwen/Qwen2.5-VL-3B-Instruct`)."
        ]
    return []


def run_demo(batch: str = DEMO_BATCH) -> dict:
    check_batch_key(batch)  # before the name becomes a folder or a query
    notes = ensure_models()
    curator = CuratorSettings()
    landing = Path(curator.landing_uri()) / batch
    videos = make_sample_batch(landing)
    (landing / READY_MARKER).touch()
    instance = project_instance()
    instance.add_dynamic_partitions(upload_batches.name, [batch])
    t0 = time.perf_counter()
    result = defs.resolve_job_def("curate_batch").execute_in_process(
        partition_key=batch,
        instance=instance,
        raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
    )
    manifest = dg.materialize(
        [dataset_manifest], instance=instance, resources={"curator": curator}, raise_on_error=False
    )
    wall_s = time.perf_counter() - t0
    settings = curator.batch_settings(CurationOptions())
    index = Path(settings.shards_root) / batch / "index.json"
    store = ClipStore(settings.store_uri)
    where = f"batch_key = {sql_literal(batch)}"
    clips = store.rows("clips", where).to_pylist()
    checks = [
        (e.asset_check_evaluation_data.check_name, e.asset_check_evaluation_data.passed)
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    ]
    return {
        "success": result.success and manifest.success,
        "run_id": result.run_id,
        "batch": batch,
        "inputs": [str(v) for v in videos],
        "wall_time_s": round(wall_s, 2),
        "clips": clips,
        "captions": {r["uuid"]: r["text"] for r in store.rows("clip_captions", where).to_pylist()},
        "failures": store.rows("failures", where).to_pylist(),
        "checks": checks,
        "store_uri": settings.store_uri,
        "output_root": str(Path(settings.output_root) / batch),
        "gallery": gallery_uri(settings.output_root, batch),
        "shards": json.loads(index.read_text()) if index.exists() else None,
        "shards_index": str(index),
        "manifest": str(Path(settings.shards_root) / "manifest.json"),
        "dagster_home": str(instance.root_directory),
        "notes": notes,
    }
