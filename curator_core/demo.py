"""The main job on embedded defaults: make a small batch of sample videos, split, transcode, filter,
preview and write them through a streaming pipeline on local Ray, and record the batch in the clip store
(used by `curator demo` / `make run`)."""

from __future__ import annotations

from pathlib import Path

from curator_core import __version__
from curator_core.executors.ray import RayExecutor
from curator_core.models import registry
from curator_core.models.aesthetic import write_demo_aesthetic
from curator_core.models.open_clip_model import DEMO_EMBED_DIM, write_demo_model
from curator_core.store import ClipStore
from curator_core.store.records import Lineage, params_hash, write_run
from curator_core.video.pipelines import SplitOptions, split_pipeline
from curator_core.video.report import run_summary
from curator_core.video.samples import make_sample_batch


def run_demo(root: str = "outputs/demo") -> dict:
    base = Path(root).resolve()
    landing = base / "landing" / "batch-0001"
    videos = make_sample_batch(landing)
    notes = []
    try:
        registry.configured("embedding")
    except registry.MissingModelError:
        model_id = write_demo_model()
        write_demo_aesthetic(DEMO_EMBED_DIM, model_id)
        notes.append(
            f"no embedding model configured: using {model_id}, a tiny RANDOM-weight demo model written to "
            f"{registry.model_path(model_id)}, and a random aesthetic MLP (their embeddings, aesthetic scores and "
            "search results mean nothing; configure real "
            "weights with `curator models download`)"
        )
    try:
        registry.configured("aesthetic")
        aesthetic = "score"
    except registry.MissingModelError:
        aesthetic = "off"
        notes.append(
            "no aesthetic model configured: aesthetic scoring skipped (`curator models demo` adds one)"
        )
    options = SplitOptions(splitting="shots", min_clip_len_s=1.0, embed=True, aesthetic=aesthetic)
    pipeline = split_pipeline([str(landing)], str(base / "clips"), options)
    result = pipeline.execute(RayExecutor())
    summary = run_summary(result)
    store_uri = str(base / "store")
    lineage = Lineage(landing.name, pipeline.name, __version__, params_hash(options))
    rows = write_run(ClipStore(store_uri), result, lineage)
    summary["store"] = {"uri": store_uri, "batch": landing.name, "rows": rows}
    summary["notes"] = notes
    summary["inputs"] = [str(v) for v in videos]
    summary["output_root"] = str(base / "clips")
    summary["pipeline"] = pipeline.describe()
    summary["report"] = result.summary()
    return summary
