"""Shared fixtures: one real local Ray cluster (2 CPUs) for the whole session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Synthetic videos (exact ground truth) and bad inputs, shared by the video, store and asset tests; and
# Chromium, for the UI and playback tests.
pytest_plugins = ["tests.fixtures_video", "tests.browser"]

SHARED_VIDEOS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "videos"


@pytest.fixture(scope="session")
def ray_cluster():
    """A real local Ray with num_cpus=2, private to this test session."""
    import ray

    from curator_core.executors.ray import ensure_ray

    os.environ.setdefault("CURATOR_RAY_TMPDIR", f"/tmp/curator-ray-tests-{os.getpid()}")
    ensure_ray(num_cpus=2)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def shared_videos() -> Path:
    if not SHARED_VIDEOS.is_dir():
        pytest.skip(f"shared test videos not found at {SHARED_VIDEOS}")
    return SHARED_VIDEOS


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory) -> dict:
    """moto's standalone S3-compatible server on 127.0.0.1 (a real HTTP server in its own process), with
    a bucket `curator`. Returns the fsspec storage options that reach it."""
    import socket
    import subprocess
    import sys
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path_factory.mktemp("moto") / "server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    options = {
        "key": "testing",
        "secret": "testing",
        "endpoint_url": f"http://127.0.0.1:{port}",
    }
    try:
        deadline = time.time() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline or process.poll() is not None:
                    raise RuntimeError(f"moto server did not start: {log.read_text()[-2000:]}") from None
                time.sleep(0.2)
        import s3fs

        s3fs.S3FileSystem(**options).mkdir("curator")
        yield options
    finally:
        process.terminate()
        process.wait(timeout=30)
