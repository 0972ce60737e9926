"""Semantic dedup finds a planted near-duplicate (the same clip re-encoded) and not a different clip."""

from __future__ import annotations

import numpy as np

from curator_core import LocalExecutor
from curator_core.store import ClipStore
from curator_core.store.records import Lineage, write_run
from curator_core.video.dedup import dedup_batch, find_duplicates
from curator_core.video.pipelines import CurationOptions, split_pipeline
from curator_core.video.samples import Shot, write_video
from tests.video.test_embedding import model_dir  # noqa: F401 - the module-scoped demo model fixture


def test_greedy_ranking_keeps_the_better_clip():
    v = np.eye(3, dtype=np.float32)
    near = v[0] * 0.999 + v[1] * 0.0447
    vectors = np.stack([v[0], near / np.linalg.norm(near), v[2]])
    found = find_duplicates(["a", "b", "c"], vectors, [(1.0, 2.0), (5.0, 2.0), (0.0, 9.0)], eps=0.01)
    assert [(d.uuid, d.duplicate_of) for d in found] == [("a", "b")]  # b has the higher aesthetic score
    assert "cosine" in found[0].reason


def test_dedup_finds_a_reencoded_clip_and_not_a_different_one(tmp_path, model_dir):  # noqa: F811
    original = write_video(
        tmp_path / "in" / "original.mp4", [Shot(48, (200, 40, 40)), Shot(48, (40, 60, 200))]
    )
    data = original.read_bytes()
    copy = tmp_path / "in" / "copy.mp4"  # the same content, re-encoded smaller
    write_video(copy, [Shot(48, (200, 40, 40)), Shot(48, (40, 60, 200))], width=256, height=144)
    assert copy.read_bytes() != data
    options = CurationOptions(
        splitting="shots",
        min_clip_len_s=1.0,
        motion_score_only=True,
        previews=False,
        embed=True,
        model_dir=model_dir,
    )
    store = ClipStore(str(tmp_path / "db"))
    result = split_pipeline([str(tmp_path / "in")], str(tmp_path / "out"), options).execute(LocalExecutor())
    lineage = Lineage("b1", "test", "0", "p")
    write_run(store, result, lineage)
    found = dedup_batch(store, "b1", "open_clip/demo-clip", eps=0.01, lineage=lineage)
    clips = {r["uuid"]: r for r in store.rows("clips").to_pylist()}
    pairs = {(clips[d.uuid]["source_uri"].split("/")[-1], clips[d.uuid]["span_start_s"],
              clips[d.duplicate_of]["source_uri"].split("/")[-1], clips[d.duplicate_of]["span_start_s"]) for d in found}  # fmt: skip
    # each shot of the copy duplicates the same shot of the original (or the other way round), nothing else
    assert len(found) == 2
    for a_src, a_start, b_src, b_start in pairs:
        assert a_src != b_src and a_start == b_start
    assert store.rows("clip_duplicates").num_rows == 2


def test_cli_dedup_reports_json(tmp_path, capsys):

    from curator_core.cli import main

    store = ClipStore(str(tmp_path / "db"))
    assert main(["dedup", "--store", store.uri, "--batch", "b1"]) == 2
    assert "no clip embeddings" in capsys.readouterr().err
