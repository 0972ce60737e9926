"""Smoke test: the real webserver serves the project on 127.0.0.1: asset graph and partitions over GraphQL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dagster as dg
from dagster._core.instance.ref import InstanceRef

from tests.ports import free_ports

ROOT = Path(__file__).resolve().parents[2]
QUERY = (
    """{ assetNodes { assetKey { path } groupName isPartitioned partitionKeys dependencyKeys { path } } }"""
)


def _graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def test_webserver_serves_the_asset_graph_and_partitions(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
        instance.add_dynamic_partitions("upload_batches", ["batch-a", "batch-b"])
    port = free_ports()[0]
    webserver = Path(sys.executable).parent / "dagster-webserver"
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    process = subprocess.Popen(
        [str(webserver), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 180
        nodes = None
        while time.time() < deadline:
            assert process.poll() is None, process.stderr.read().decode()[-3000:]
            try:
                data = _graphql(port, QUERY).get("data") or {}
                nodes = data.get("assetNodes")
                if nodes:
                    break
            except OSError:
                pass
            time.sleep(1)
        assert nodes, "the webserver did not serve the asset graph in time"
        by_key = {"/".join(n["assetKey"]["path"]): n for n in nodes}
        batch_assets = {"raw_videos", "clips", "clip_embeddings", "clip_captions", "training_shards"}
        assert set(by_key) == batch_assets | {"dataset_manifest"}
        assert all(n["groupName"] == "video_curation" for n in nodes)
        assert {k for k, n in by_key.items() if n["isPartitioned"]} == batch_assets
        assert by_key["clips"]["partitionKeys"] == ["batch-a", "batch-b"]
        assert {"/".join(d["path"]) for d in by_key["clips"]["dependencyKeys"]} == {"raw_videos"}
        assert {"/".join(d["path"]) for d in by_key["training_shards"]["dependencyKeys"]} == {
            "clips", "clip_embeddings", "clip_captions"
        }  # fmt: skip
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # stop it (and its code server) by PID
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
