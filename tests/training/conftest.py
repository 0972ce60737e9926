"""A real curated batch (raw_videos, clips, clip_embeddings, clip_captions on Ray) shared by the
training-output tests of a module."""

from __future__ import annotations

import shutil

import pytest

from curator_core.batches import BatchSettings, run_step
from curator_core.executors.ray import RayExecutor
from curator_core.models.open_clip_model import write_demo_model
from curator_core.models.transformers_models import write_demo_vlm
from curator_core.video.options import CurationOptions

BATCH = "b1"


@pytest.fixture(scope="module")
def curated(tmp_path_factory, ray_cluster, three_shots, moving_video, static_video) -> BatchSettings:
    """A batch taken through raw_videos, clips, clip_embeddings and clip_captions."""
    root = tmp_path_factory.mktemp("curated")
    models = root / "models"
    write_demo_model(models)
    write_demo_vlm(models)
    batch = root / "landing" / BATCH
    batch.mkdir(parents=True)
    for video in (three_shots, moving_video, static_video):
        shutil.copy(video, batch / video.name)
    settings = BatchSettings(
        landing=str(root / "landing"),
        output_root=str(root / "outputs"),
        store_uri=str(root / "store"),
        shards_root=str(root / "shards"),
        options=CurationOptions(model_dir=str(models), min_clip_len_s=1.0),
    )
    executor = RayExecutor(num_cpus=2)
    for step in ("raw_videos", "clips", "clip_embeddings", "clip_captions"):
        run_step(step, BATCH, settings, executor)
    return settings
