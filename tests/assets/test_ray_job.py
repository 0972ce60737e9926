"""With a cluster address, a step is submitted as a Ray job through dagster-ray's PipesRayJobClient and
Dagster Pipes carries its logs and summary back. A real Ray head (dashboard + job server) is started for
the test, in its own process group, and stopped by PID."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import dagster as dg
import pytest

from curator_assets.assets import clips, raw_videos
from curator_assets.partitions import upload_batches
from curator_assets.resources import CuratorSettings, RayRunner
from curator_core.store import ClipStore
from tests.assets.conftest import add_batch


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def ray_head():
    """A separate single-node Ray cluster with the job server, as a deployment would have."""
    temp = tempfile.mkdtemp(prefix="/tmp/rh")  # Ray's socket paths must stay short
    port, dashboard = _free_port(), _free_port()
    # Its agents need ports of their own: another Ray (the test session's) holds the default ones.
    agent_ports = [
        f"--{flag}={_free_port()}"
        for flag in (
            "dashboard-agent-listen-port",
            "dashboard-agent-grpc-port",
            "metrics-export-port",
            "runtime-env-agent-port",
            "ray-client-server-port",
        )
    ]
    ray = Path(sys.executable).parent / "ray"
    process = subprocess.Popen(
        [str(ray), "start", "--head", "--block", f"--port={port}", f"--dashboard-port={dashboard}",
         "--dashboard-host=127.0.0.1", "--num-cpus=2", f"--temp-dir={temp}", "--include-dashboard=true",
         "--disable-usage-stats", *agent_ports],
        env={**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_ADDRESS": ""},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    address = f"http://127.0.0.1:{dashboard}"
    try:
        deadline = time.time() + 180
        while True:
            assert process.poll() is None, "ray start --head exited"
            try:
                with urllib.request.urlopen(f"{address}/api/version", timeout=5):
                    break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(1)
        _wait_for_job_agent(address, deadline)
        yield address
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def _wait_for_job_agent(address: str, deadline: float) -> None:
    """The dashboard answers before its job agent is up; submit a no-op job until one is accepted."""
    from ray.job_submission import JobStatus, JobSubmissionClient

    client = JobSubmissionClient(address)
    while True:
        try:
            job = client.submit_job(entrypoint="true")
            break
        except RuntimeError as exc:
            if "agent" not in str(exc) or time.time() > deadline:
                raise
            time.sleep(1)
    while client.get_job_status(job) not in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED):
        assert time.time() < deadline, "the no-op Ray job did not finish"
        time.sleep(0.5)


def test_steps_run_as_ray_jobs_with_pipes(ray_head, workdir, three_shots, static_video):
    add_batch(workdir / "landing", "remote", [three_shots, static_video])
    resources = {
        "curator": CuratorSettings(
            landing=str(workdir / "landing"),
            output_root=str(workdir / "outputs"),
            store_uri=str(workdir / "store"),
        ),
        "ray_runner": RayRunner(address=ray_head, python=sys.executable),
    }
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(upload_batches.name, ["remote"])
        result = dg.materialize(
            [raw_videos, clips], partition_key="remote", resources=resources, instance=instance
        )
        assert result.success
        metadata = {
            m.asset_key.to_user_string(): m.materialization.metadata
            for m in result.get_asset_materialization_events()
        }
        logs = [r.user_message for r in instance.all_logs(result.run_id) if r.user_message]
    assert metadata["raw_videos"]["dagster/row_count"].value == 2
    assert metadata["clips"]["dagster/row_count"].value == 4
    assert metadata["clips"]["ray_job_id"].value.startswith("pipes-")
    assert any("running clips for batch remote on the Ray cluster" in m for m in logs)  # a Pipes log line
    assert len(ClipStore(str(workdir / "store")).rows("clips", "kept = true")) == 3


def test_a_ray_client_address_is_refused_with_the_reason(workdir):
    resources = {
        "curator": CuratorSettings(landing=str(workdir / "landing"), store_uri=str(workdir / "store")),
        "ray_runner": RayRunner(address="ray://head:10001"),
    }
    add_batch(workdir / "landing", "x", [])
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(upload_batches.name, ["x"])
        result = dg.materialize(
            [raw_videos], partition_key="x", resources=resources, instance=instance, raise_on_error=False
        )
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "Ray Data cannot run over a ray:// connection" in str(failure.event_specific_data.error)
