"""With a cluster address, a step is submitted as a Ray job through dagster-ray's PipesRayJobClient and
Dagster Pipes carries its logs and summary back. A real Ray head (dashboard + job server) is started for
the test, in its own process group, and stopped by PID."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import dagster as dg
import pytest

from curator_assets.assets import clip_embeddings, clips, raw_videos
from curator_assets.partitions import upload_batches
from curator_assets.resources import CuratorSettings, RayRunner
from curator_core.store import ClipStore
from tests.assets.conftest import add_batch
from tests.ports import free_ports

HEAD_ATTEMPTS = 3


def _start_head(temp: str) -> tuple[subprocess.Popen, str]:
    port, dashboard, *agents = free_ports(7)
    # Its agents need ports of their own: another Ray (the test session's) holds the default ones.
    flags = ("dashboard-agent-listen-port", "dashboard-agent-grpc-port", "metrics-export-port",
             "runtime-env-agent-port", "ray-client-server-port")  # fmt: skip
    ray = Path(sys.executable).parent / "ray"
    process = subprocess.Popen(
        [str(ray), "start", "--head", "--block", f"--port={port}", f"--dashboard-port={dashboard}",
         "--dashboard-host=127.0.0.1", "--num-cpus=2", f"--temp-dir={temp}", "--include-dashboard=true",
         "--disable-usage-stats", *(f"--{flag}={p}" for flag, p in zip(flags, agents, strict=True))],
        env={**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_ADDRESS": ""},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    return process, f"http://127.0.0.1:{dashboard}"


def _stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=3)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


def _head_ready(process: subprocess.Popen, address: str, deadline: float) -> bool:
    """True once the dashboard answers and its job agent runs a no-op job; False if the head died."""
    from ray.job_submission import JobStatus, JobSubmissionClient

    client = job = None
    while True:
        if process.poll() is not None:
            return False  # `ray start --block` ends the whole head when one of its processes dies
        assert time.time() < deadline, "the test Ray head did not come up"
        try:
            if client is None:
                with urllib.request.urlopen(f"{address}/api/version", timeout=5):
                    client = JobSubmissionClient(address)
            if job is None:
                # The dashboard answers before its job agent is up; submit until a job is accepted.
                job = client.submit_job(entrypoint="true")
            if client.get_job_status(job) in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED):
                return True
        except OSError:  # not answering yet, or gone (then the head process has exited)
            pass
        except RuntimeError as exc:
            if "agent" not in str(exc):
                raise
        time.sleep(0.5)


@pytest.fixture(scope="module")
def ray_head():
    """A separate single-node Ray cluster with the job server, as a deployment would have (one for the
    module: the tests use batches of their own)."""
    for _ in range(HEAD_ATTEMPTS):
        temp = tempfile.mkdtemp(prefix="/tmp/rh")  # Ray's socket paths must stay short
        process, address = _start_head(temp)
        try:
            if _head_ready(process, address, deadline=time.time() + 180):
                yield address
                return
        finally:
            _stop(process)
    pytest.fail(f"the test Ray head died while starting, {HEAD_ATTEMPTS} times")


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


def _step_failure(result) -> str:
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    return str(failure.event_specific_data.error)


def test_a_job_past_its_timeout_is_stopped_and_fails_the_run(ray_head, workdir, three_shots):
    add_batch(workdir / "landing", "slow", [three_shots])
    resources = {
        "curator": CuratorSettings(landing=str(workdir / "landing"), store_uri=str(workdir / "store")),
        "ray_runner": RayRunner(address=ray_head, python=sys.executable, job_timeout_s=1.0),
    }
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(upload_batches.name, ["slow"])
        result = dg.materialize(
            [raw_videos], partition_key="slow", resources=resources, instance=instance, raise_on_error=False
        )
    assert not result.success
    assert "ran past RayRunner.job_timeout_s=1 s and was stopped" in _step_failure(result)


def test_a_failed_job_names_its_first_real_error(ray_head, workdir, tmp_path):
    resources = {
        "curator": CuratorSettings(
            landing=str(workdir / "landing"),
            store_uri=str(workdir / "store"),
            model_dir=str(tmp_path / "no-models"),
        ),
        "ray_runner": RayRunner(address=ray_head, python=sys.executable),
    }
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(upload_batches.name, ["nomodel"])
        result = dg.materialize(
            [clip_embeddings],
            partition_key="nomodel",
            resources=resources,
            instance=instance,
            raise_on_error=False,
        )
    assert not result.success
    error = _step_failure(result)
    assert "MissingModelError: no model configuration at" in error, error


def test_first_error_is_the_exception_that_ends_the_first_traceback():
    from curator_assets.resources import first_error

    log = "\n".join(
        [
            "listing s3://b/in",
            "Traceback (most recent call last):",
            '  File "x.py", line 1, in <module>',
            "botocore.exceptions.NoCredentialsError: Unable to locate credentials",
            "Traceback (most recent call last):",
            "ValueError: Failed to resolve region",
        ]
    )
    assert first_error(log) == "botocore.exceptions.NoCredentialsError: Unable to locate credentials"
    assert first_error("") == "(the job wrote no log)"
