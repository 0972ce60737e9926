"""Shared fixtures: one real local Ray cluster (2 CPUs) for the whole session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Synthetic videos (exact ground truth) and bad inputs, shared by the video, store and asset tests.
pytest_plugins = ["tests.fixtures_video"]

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
