"""Fixtures of the resume and lost-node tests: a batch of 3 x 40 s videos, and the clips step's rows and
media from one uninterrupted run of it, which every interrupted run must end up with."""

from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path

import pytest

from curator_core import RayExecutor
from curator_core.batches import BatchSettings, StepSummary, run_step
from curator_core.store import ClipStore
from curator_core.video.options import CurationOptions
from curator_core.video.samples import Shot, write_video

VIDEOS, SEGMENTS_PER_VIDEO = 3, 2  # 40 s in 10 s clips, 3 videos on 2 CPUs: 2 segments of 20 s each
SEGMENT_S = 40.0 / SEGMENTS_PER_VIDEO
IGNORED = {"commit_id", "created_at", "params_hash"}  # params_hash covers the output folder, which differs


@pytest.fixture(scope="session")
def landing(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("landing")
    for i in range(VIDEOS):
        colors = [(200, 40 + 30 * i, 40), (40, 160, 60 + 30 * i)]
        shots = [Shot(240, colors[0]), Shot(240, colors[1])]
        write_video(folder / "b" / f"v{i}.mp4", shots, width=128, height=72, fps=12, gop=24)
    return folder


def batch_settings(landing: Path, root: Path) -> BatchSettings:
    options = CurationOptions(splitting="fixed", clip_len_s=10.0, min_clip_len_s=1.0)
    return BatchSettings(str(landing), str(root / "out"), str(root / "store"), options=options)


@pytest.fixture(scope="session")
def whole(ray_cluster, landing, tmp_path_factory) -> tuple[Path, StepSummary]:
    """The clips step run once without interruption: (its root folder, its summary)."""
    root = tmp_path_factory.mktemp("whole")
    return root, run_step("clips", "b", batch_settings(landing, root), RayExecutor())


def clip_rows(root: Path) -> list[dict]:
    """The batch's clip rows, with paths relative to `root` and without what differs between runs."""
    out = []
    for row in ClipStore(str(root / "store")).rows("clips").to_pylist():
        row = {k: v for k, v in row.items() if k not in IGNORED}
        for k in ("media_uri", "preview_uri"):
            if row.get(k):
                row[k] = os.path.relpath(row[k], root)
        out.append(row)
    return sorted(out, key=lambda r: r["uuid"])


def media(root: Path) -> dict[str, str]:
    """sha256 of every clip and preview file under the output folder."""
    out = root / "out"
    return {
        str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.suffix in (".mp4", ".webp")
    }


def stored_tasks(root: Path) -> int:
    """Task records in the store, of writes in flight too (read without the store's hiding)."""
    import lancedb

    db = lancedb.connect(str(root / "store"))
    return db.open_table("step_tasks").count_rows() if "step_tasks" in db.list_tables().tables else 0


class RecordingExecutor(RayExecutor):
    """The real RayExecutor, noting what each step's pipeline hands back to the driver (set `step` first)."""

    step = ""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.returned: dict[str, dict] = {}

    def execute(self, stages, initial_tasks):
        result = super().execute(stages, initial_tasks)
        self.returned[self.step] = {
            "clips": sum(len(t.data.clips) + len(t.data.filtered_clips) for t in result.outputs),
            "stored_clips": sum(t.metadata.get("stored", {}).get("clips", 0) for t in result.outputs),
            "bytes_per_task": max((len(pickle.dumps(t)) for t in result.outputs), default=0),
        }
        return result


def assert_small_records(returned: dict[str, dict], steps: set[str]) -> None:
    """The workers wrote every clip's row, vector and caption (store.row_writer): the driver gets counts per
    task, not clips, so what it holds does not grow with the clips of a batch. Media is tens of KB a clip,
    frames at 224x224 150 KB a second: none of it may come back."""
    assert set(returned) == steps, returned
    for step in steps - {"raw_videos"}:
        assert returned[step]["clips"] == 0 and returned[step]["stored_clips"] >= 9, returned
    assert max(r["bytes_per_task"] for r in returned.values()) < 4_000, returned
