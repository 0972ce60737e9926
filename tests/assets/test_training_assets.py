"""training_shards and dataset_manifest on a real Dagster instance, Ray and LanceDB: the manifest covers
every batch, follows re-materializations, and is requested by its automation condition."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg

from curator_assets.assets import ASSETS, dataset_manifest, training_shards
from curator_assets.definitions import defs
from curator_core.training.manifest import CARD, CARD_PLOT, MANIFEST_JSON, MANIFEST_PARQUET
from tests.assets.conftest import add_batch, asset_metadata, materialize_batch


def _manifest(workdir: Path) -> dict:
    return json.loads((workdir / "shards" / MANIFEST_JSON).read_text())


def test_manifest_lists_every_batchs_shards_and_follows_a_rematerialized_batch(
    resources, workdir, three_shots, moving_video
):
    add_batch(workdir / "landing", "a", [three_shots])
    add_batch(workdir / "landing", "b", [moving_video])
    with dg.instance_for_test() as instance:
        baseline = dg.evaluate_automation_conditions(defs=defs, instance=instance)  # the sensor's first tick
        assert baseline.get_num_requested(dataset_manifest.key) == 0
        for batch in ("a", "b"):
            assert materialize_batch(ASSETS, batch, resources, instance).success
        tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=baseline.cursor)
        assert tick.get_num_requested(dataset_manifest.key) == 1  # eager: shards of a batch changed

        built = dg.materialize([dataset_manifest], resources=resources, instance=instance)
        assert built.success
        meta = asset_metadata(built, "dataset_manifest")
        assert meta["batches"].value == 2 and meta["samples"].value == 4  # 3 shots + 1 moving clip
        assert "data:image/png;base64," in meta["dataset_card"].value
        manifest = _manifest(workdir)
        indexes = [json.loads((workdir / "shards" / b / "index.json").read_text()) for b in ("a", "b")]
        assert [s["uri"] for s in manifest["shards"]] == [s["uri"] for i in indexes for s in i["shards"]]
        for name in (MANIFEST_PARQUET, CARD, CARD_PLOT):
            assert (workdir / "shards" / name).stat().st_size > 0
        card = (workdir / "shards" / CARD).read_text()
        assert "`open_clip/demo-clip`" in card and "| a | 1 | 3 |" in card

        # Other rules for batch a: nothing passes, its shards go, and the rebuilt manifest follows.
        config = {"ops": {"training_shards": {"config": {"min_duration_s": 1000.0}}}}
        rerun = materialize_batch([training_shards], "a", resources, instance, run_config=config)
        assert rerun.success
        assert asset_metadata(rerun, "training_shards")["dropped_by_rule"].value["min_duration_s"] == 3
        assert not list((workdir / "shards" / "a").glob("*.tar"))
        assert dg.materialize([dataset_manifest], resources=resources, instance=instance).success
    manifest = _manifest(workdir)
    assert {s["batch_key"] for s in manifest["shards"]} == {"b"}
    assert manifest["totals"]["samples"] == 1


def test_the_upload_job_includes_training_shards_and_the_manifest_has_its_own_sensor():
    job = defs.resolve_job_def("curate_batch")
    assert "training_shards" in {k.to_user_string() for k in job.asset_layer.executable_asset_keys}
    sensor = defs.resolve_sensor_def("dataset_manifest_automation")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    graph = defs.resolve_asset_graph()
    assert graph.get(dataset_manifest.key).partitions_def is None
    assert graph.get(dataset_manifest.key).automation_condition is not None
