"""What `curator run` leaves behind (issue #19, items 5 and 6): complete files only, even on a full disk,
and the same bytes and scores every time for the same input and parameters."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import av
import pyarrow.dataset as ds
import pytest

from curator_core.video.samples import Shot, write_video


def _curator_run(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "curator_core.cli", "run", *args, "--json"]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


def _rows(out: Path) -> dict[str, dict]:
    return {r["uuid"]: r for r in ds.dataset(str(out / "metadata" / "clips")).to_table().to_pylist()}


def _sha(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def textured(tmp_path_factory) -> Path:
    """A 12 s 640x360 video with three cuts and texture, so clips are hundreds of KB each."""
    folder = tmp_path_factory.mktemp("textured")
    shots = [Shot(72, c) for c in [(200, 40, 40), (40, 160, 60), (40, 60, 200), (180, 180, 40)]]
    return write_video(folder / "textured.mp4", shots, width=640, height=360, gop=24)


def test_the_same_input_and_parameters_give_identical_clips_scores_and_embeddings(
    tmp_path, textured, three_shots
):
    from curator_core.models.open_clip_model import write_demo_model
    from curator_core.store import ClipStore, embeddings_table_name

    models = tmp_path / "models"
    write_demo_model(models)
    runs, vectors = [], []
    for name in ("first", "second"):
        out = tmp_path / name
        done = _curator_run(str(textured), str(three_shots), "--out", str(out), "--splitting", "fixed",
                            "--clip-len", "2", "--min-clip-len", "1", "--embed", "--model-dir", str(models),
                            "--store", str(out / "store"))  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        runs.append(_rows(out))
        table = ClipStore(str(out / "store")).rows(embeddings_table_name("open_clip/demo-clip"))
        uuids, vecs = table.column("uuid").to_pylist(), table.column("vector").to_pylist()
        vectors.append(dict(zip(uuids, vecs, strict=True)))
    first, second = runs
    assert len(first) >= 8 and first.keys() == second.keys()
    for clip_id, row in first.items():
        other = second[clip_id]
        assert _sha(row["media_uri"]) == _sha(other["media_uri"]), clip_id
        assert dict(row["scores"]) == dict(other["scores"]), clip_id
    assert len(vectors[0]) >= 8 and vectors[0] == vectors[1]  # the same floats, not merely close ones


@pytest.fixture
def small_disk(tmp_path):
    """A 1.5 MB tmpfs (mounting needs root: skipped where the machine does not allow it)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1500k", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_leaves_no_partial_file_and_fails_the_run(small_disk, textured, tmp_path):
    inputs = []
    for i in range(6):  # ~2.4 MB of clips for a 1.5 MB disk
        copy = tmp_path / f"copy{i}.mp4"
        copy.write_bytes(textured.read_bytes())
        inputs.append(str(copy))
    done = _curator_run(*inputs, "--out", str(small_disk / "out"), "--splitting", "fixed", "--clip-len", "3")
    assert done.returncode == 1, done.stderr[-2000:]
    summary = json.loads(done.stdout)
    reasons = " ".join(f["reason"] for f in summary["failed"])
    assert "No space left on device" in reasons
    assert {f["source"] for f in summary["failed"]} <= set(inputs)  # failures name their files
    files = [p for p in (small_disk / "out").rglob("*") if p.is_file()]
    assert not [p for p in files if ".tmp-" in p.name]  # no temporary left behind
    for media in [p for p in files if p.suffix == ".mp4"]:
        assert media.stat().st_size > 0
        with av.open(str(media)) as container:  # complete: the moov atom is there and every frame decodes
            assert sum(1 for _ in container.decode(video=0)) > 0
    for clip in summary["clips_written"]:  # a clip reported written exists whole
        assert Path(clip["path"]).stat().st_size > 0
