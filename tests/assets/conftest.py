"""Asset-test fixtures: demo models, a landing area with real video batches, resources on temp dirs."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest

from curator_assets.partitions import upload_batches
from curator_assets.resources import CuratorSettings, RayRunner
from curator_core.models.open_clip_model import write_demo_model
from curator_core.models.transformers_models import write_demo_vlm


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> str:
    directory = tmp_path_factory.mktemp("models")
    write_demo_model(directory)
    write_demo_vlm(directory)
    return str(directory)


@pytest.fixture
def workdir(tmp_path) -> Path:
    (tmp_path / "landing").mkdir()
    return tmp_path


def add_batch(landing: Path, name: str, videos: list[Path], ready: bool = True) -> Path:
    folder = landing / name
    folder.mkdir(parents=True)
    for video in videos:
        shutil.copy(video, folder / video.name)
    if ready:
        (folder / "_READY").touch()
    return folder


@pytest.fixture
def resources(workdir, model_dir, ray_cluster) -> dict:
    curator = CuratorSettings(
        landing=str(workdir / "landing"),
        output_root=str(workdir / "outputs"),
        store_uri=str(workdir / "store"),
        model_dir=model_dir,
        shards_root=str(workdir / "shards"),
    )
    return {"curator": curator, "ray_runner": RayRunner(num_cpus=2)}


def materialize_batch(selection, partition, resources, instance, run_config=None):
    """Add the batch's partition (Dagster needs it first) and materialize `selection` for it."""
    instance.add_dynamic_partitions(upload_batches.name, [partition])
    return dg.materialize(
        selection,
        partition_key=partition,
        resources=resources,
        instance=instance,
        raise_on_error=False,
        run_config=run_config,
    )


def asset_metadata(result, asset: str) -> dict:
    (event,) = [m for m in result.get_asset_materialization_events() if m.asset_key.to_user_string() == asset]
    return event.materialization.metadata
