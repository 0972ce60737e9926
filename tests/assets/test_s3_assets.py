"""The batch's assets with the landing area, clip media, store and shards all on S3 (moto's server on
127.0.0.1), reached through the one storage configuration of CuratorSettings, on the session's Ray, which
was started before that configuration existed (its workers get it with each task)."""

from __future__ import annotations

import uuid

import dagster as dg

from curator_assets.assets import clips, raw_videos
from curator_assets.resources import CuratorSettings, RayRunner
from curator_core import storage
from tests.assets.conftest import asset_metadata, materialize_batch


def test_raw_videos_and_clips_of_a_batch_on_s3(s3_server, ray_cluster, model_dir, three_shots, monkeypatch):
    import s3fs

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server["key"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server["secret"])
    fs = s3fs.S3FileSystem(**s3_server)
    root = f"curator/{uuid.uuid4().hex[:8]}"  # the S3 server is shared by the session's tests
    fs.put(str(three_shots), f"{root}/landing/s3batch/three_shots.mp4")
    curator = CuratorSettings(
        landing=f"s3://{root}/landing",
        output_root=f"s3://{root}/outputs",
        store_uri=f"s3://{root}/store",
        shards_root=f"s3://{root}/shards",
        model_dir=model_dir,
        storage={"endpoint_url": s3_server["endpoint_url"], "region": "us-east-1"},
    )
    try:
        with dg.instance_for_test() as instance:
            result = materialize_batch(
                [raw_videos, clips], "s3batch", {"curator": curator, "ray_runner": RayRunner()}, instance
            )
            assert result.success
            assert all(e.passed for e in result.get_asset_check_evaluations())  # checks read S3 too
            assert asset_metadata(result, "clips")["dagster/row_count"].value == 3
        assert len(fs.ls(f"{root}/outputs/s3batch/clips")) == 3
        assert fs.exists(f"{root}/outputs/s3batch/gallery.html")
    finally:
        storage.reset()
