"""One storage configuration for every part of a run, carried to the workers by the runtime environment.

The end-to-end case is real: moto's S3 server on 127.0.0.1, a Ray cluster of a head node (no CPUs, so no
task runs there) and a worker node, each with its own temp dir and ports, both started WITHOUT any S3
setting or credential; `curator run` on S3 inputs, outputs and store, where the driver alone has them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from curator_core import storage
from curator_core.executors.ray import worker_runtime_env
from curator_core.models.cache import local_copy
from curator_core.models.open_clip_model import write_demo_model
from curator_core.storage import StorageConfig
from tests.cluster import start_node, stop_nodes
from tests.ports import free_ports

CURATOR = [sys.executable, "-m", "curator_core.cli"]
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
WORKER_PORTS = 23000  # 23000-23999 for the head's workers, 24000-24999 for the worker node's
S3_VARIABLES = ("AWS_", "FSSPEC_", "CURATOR_STORAGE", "RAY_ADDRESS", "CURATOR_RAY_TMPDIR")


def test_one_config_gives_fsspec_lancedb_and_worker_settings(monkeypatch):
    monkeypatch.setenv("MY_KEY", "key-value-9f2")
    monkeypatch.setenv("MY_SECRET", "secret-value-7c1")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    config = StorageConfig(
        endpoint_url="http://127.0.0.1:9", region="eu-west-1", key_env="MY_KEY", secret_env="MY_SECRET"
    )
    assert config.fsspec_options() == {
        "endpoint_url": "http://127.0.0.1:9",
        "client_kwargs": {"region_name": "eu-west-1"},
    }
    assert config.lancedb_options() == {
        "aws_endpoint": "http://127.0.0.1:9",
        "aws_region": "eu-west-1",
        "allow_http": "true",  # an http:// endpoint (the BadScheme of a missing AWS_ALLOW_HTTP)
        "aws_access_key_id": "key-value-9f2",
        "aws_secret_access_key": "secret-value-7c1",
    }
    assert "value" not in config.model_dump_json()  # the config names the variables, never holds secrets
    for name in (storage.STORAGE_ENV, storage.FSSPEC_S3_ENV):
        monkeypatch.delenv(name, raising=False)
    assert worker_runtime_env({"pip": ["x"]}) == {"pip": ["x"]}  # nothing configured: nothing added
    storage.configure(config)
    try:
        env = worker_runtime_env({"env_vars": {"OTHER": "1"}})["env_vars"]
        assert env["MY_KEY"] == "key-value-9f2" and env["OTHER"] == "1"
        assert StorageConfig.model_validate_json(env[storage.STORAGE_ENV]) == config
        assert json.loads(env[storage.FSSPEC_S3_ENV])["endpoint_url"] == "http://127.0.0.1:9"
        assert storage.current() == config
    finally:
        storage.reset()


def _clean_env() -> dict[str, str]:
    """This environment without any S3 setting or credential: what the cluster's nodes start with."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(S3_VARIABLES)}
    return {**env, "RAY_AUTH_MODE": "disabled"}


def _start_nodes(tmp_path_factory) -> tuple[str | None, list[Path], str]:
    """A head (no CPUs) and a worker node (2 CPUs). Returns (address or None, temp dirs, what failed)."""
    head_port, client_port = free_ports(2)
    started: list[Path] = []
    for node, (role, cpus) in enumerate((("head", 0), ("worker", 2))):
        temp = tmp_path_factory.mktemp(f"ray_{role}")
        extra = [f"--ray-client-server-port={client_port}"] if role == "head" else []
        done = start_node(
            temp, cpus, node, WORKER_PORTS, _clean_env(), head_port, role == "head", extra=extra
        )
        started.append(temp)
        if done.returncode != 0:
            return None, started, done.stdout[-1500:] + done.stderr[-1500:]
    return f"127.0.0.1:{head_port}", started, ""


@pytest.fixture(scope="module")
def two_node_cluster(tmp_path_factory):
    """Started again on fresh ports when a node does not come up (a port taken meanwhile; a worker node
    that timed out reaching the head on a loaded machine, seen once in a full run)."""
    failures = []
    for _ in range(3):
        address, temps, failed = _start_nodes(tmp_path_factory)
        if address:
            try:
                yield address
            finally:
                stop_nodes(temps)
            return
        stop_nodes(temps)
        failures.append(failed)
    pytest.fail("the two-node Ray cluster did not start:\n" + "\n---\n".join(failures))


def test_s3_run_on_a_two_node_cluster_whose_workers_get_credentials_only_from_the_runtime_env(
    s3_server, two_node_cluster, three_shots, tmp_path
):
    import s3fs

    fs = s3fs.S3FileSystem(**s3_server)
    root = f"curator/{uuid.uuid4().hex[:8]}"  # the S3 server is shared by the session's tests
    fs.put(str(three_shots), f"{root}/in/sub [1]/three_shots.mp4")
    models = tmp_path / "models"
    write_demo_model(models)
    fs.put(f"{models}/", f"{root}/models", recursive=True)  # the model directory is on S3 too
    config = tmp_path / "storage.json"
    config.write_text(json.dumps({"endpoint_url": s3_server["endpoint_url"], "region": "us-east-1"}))
    runtime_env = tmp_path / "runtime_env.json"  # the workers' model cache, through --runtime-env
    runtime_env.write_text(json.dumps({"env_vars": {"CURATOR_MODEL_CACHE": str(tmp_path / "cache")}}))
    driver_env = {**_clean_env(), **CREDENTIALS}  # the driver alone has the credentials
    done = subprocess.run(
        [sys.executable, "-m", "curator_core.cli", "run", f"s3://{root}/in/", "--out", f"s3://{root}/out",
         "--store", f"s3://{root}/store", "--min-clip-len", "1", "--storage", str(config),
         "--ray-address", two_node_cluster, "--embed", "--model-dir", f"s3://{root}/models",
         "--runtime-env", str(runtime_env), "--json"],
        env=driver_env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    summary = json.loads(done.stdout)
    assert summary["failed"] == [] and len(summary["clips_written"]) == 3
    written = fs.ls(f"{root}/out/clips")
    assert len(written) == 3 and all(fs.size(p) > 0 for p in written)
    assert summary["store"]["rows"]["clips"] == 3
    assert summary["store"]["rows"]["embeddings:open_clip/demo-clip"] == 3  # weights read from S3
    assert list((tmp_path / "cache").glob("*/open_clip/demo-clip/model.safetensors"))  # copied on the node
    # One video: a pool this run follows the cluster with (no upper size) needs one actor and may start
    # one spare. Ray Data's default scaling started 32 embedding actors here, each loading the model
    # (164 s for the run), because blocks queued before the stage counted as work.
    stages = summary["stages"]
    assert stages["clip_embedding"]["actors_started"] <= 2, stages["clip_embedding"]
    assert stages["shot_splitting"]["actors_started"] <= 3, stages["shot_splitting"]
    # curator search and export against the store on S3, with the same configuration (no cluster needed).
    search = subprocess.run(
        [*CURATOR, "search", "a moving square", "--k", "2", "--store", f"s3://{root}/store",
         "--model-dir", f"s3://{root}/models", "--storage", str(config)],
        env={**driver_env, "CURATOR_MODEL_CACHE": str(tmp_path / "cache")}, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert search.returncode == 0, search.stderr[-2000:]
    assert len(json.loads(search.stdout)["results"]) == 2
    export = subprocess.run(
        [*CURATOR, "export", "clips", str(tmp_path / "clips.parquet"), "--to", "parquet",
         "--store", f"s3://{root}/store", "--storage", str(config)],
        env=driver_env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert export.returncode == 0 and export.stdout.startswith("3 rows"), export.stderr[-2000:]
    # The clip store on S3, read back through the same configuration.
    storage.configure(StorageConfig.load(config))
    try:
        os.environ.update(CREDENTIALS)
        from curator_core.store import ClipStore

        assert ClipStore(f"s3://{root}/store").count("clips", "kept") == 3
    finally:
        for name in CREDENTIALS:
            os.environ.pop(name, None)
        storage.reset()


def test_a_model_directory_on_s3_is_copied_once_per_machine_and_checked(s3_server, tmp_path, monkeypatch):
    import s3fs

    monkeypatch.setenv("CURATOR_MODEL_CACHE", str(tmp_path / "cache"))
    fs = s3fs.S3FileSystem(**s3_server)
    root = f"curator/{uuid.uuid4().hex[:8]}/models"
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "weights.bin").write_bytes(b"w" * 1000)
    fs.put(str(tmp_path / "m" / "weights.bin"), f"{root}/weights.bin")
    storage.configure(StorageConfig(endpoint_url=s3_server["endpoint_url"]))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server["key"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server["secret"])
    try:
        first = local_copy(f"s3://{root}") / "weights.bin"
        copied_at = first.stat().st_mtime_ns
        assert local_copy(f"s3://{root}") / "weights.bin" == first and first.stat().st_mtime_ns == copied_at
        first.write_bytes(b"x" * 1000)  # same size, other bytes: the hash sees it
        assert (local_copy(f"s3://{root}") / "weights.bin").read_bytes() == b"w" * 1000
        with pytest.raises(FileNotFoundError, match=f"model directory s3://{root}-missing"):
            local_copy(f"s3://{root}-missing")
    finally:
        storage.reset()


# A Dagster materialization in its own process (this one is on the session's Ray), as a run worker would
# be: RAY_ADDRESS points RayRunner's in-process driver at the two-node cluster.
MATERIALIZE = """
import json, sys
import dagster as dg
from curator_assets.assets import clips, raw_videos
from curator_assets.resources import CuratorSettings, RayRunner
root, endpoint = sys.argv[1], sys.argv[2]
curator = CuratorSettings(landing=f"s3://{root}/landing", output_root=f"s3://{root}/outputs",
    store_uri=f"s3://{root}/store", storage={"endpoint_url": endpoint, "region": "us-east-1"})
with dg.instance_for_test() as instance:
    instance.add_dynamic_partitions("upload_batches", ["b"])
    result = dg.materialize([raw_videos, clips], partition_key="b", instance=instance,
        resources={"curator": curator, "ray_runner": RayRunner()}, raise_on_error=False)
    rows = {m.asset_key.to_user_string(): m.materialization.metadata["dagster/row_count"].value
            for m in result.get_asset_materialization_events()}
print(json.dumps({"success": result.success, "rows": rows}))
"""


def test_dagster_assets_on_s3_through_the_two_node_cluster(s3_server, two_node_cluster, three_shots):
    import s3fs

    fs = s3fs.S3FileSystem(**s3_server)
    root = f"curator/{uuid.uuid4().hex[:8]}"
    fs.put(str(three_shots), f"{root}/landing/b/three_shots.mp4")
    done = subprocess.run(
        [sys.executable, "-c", MATERIALIZE, root, s3_server["endpoint_url"]],
        env={**_clean_env(), **CREDENTIALS, "RAY_ADDRESS": two_node_cluster},
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome == {"success": True, "rows": {"raw_videos": 1, "clips": 3}}, done.stderr[-3000:]
    assert len(fs.ls(f"{root}/outputs/b/clips")) == 3
