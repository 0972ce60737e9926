"""The Definitions load the way `dagster dev` loads them, and are what the issue asks for."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from curator_assets.definitions import defs
from curator_assets.partitions import upload_batches

ROOT = Path(__file__).resolve().parents[2]


def test_definitions_load_through_workspace_yaml_like_dagster_dev(tmp_path):
    dagster = Path(sys.executable).parent / "dagster"
    done = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=ROOT,
        env={"DAGSTER_HOME": str(tmp_path), "PATH": str(Path(sys.executable).parent)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "code location video_curation" in done.stdout + done.stderr  # a readable name


def test_every_asset_shares_the_partitions_and_group_and_backfills_run_per_partition():
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert keys == {
        "raw_videos", "clips", "clip_embeddings", "clip_captions", "training_shards", "dataset_manifest"
    }  # fmt: skip
    policies = set()
    for key in graph.get_all_asset_keys():
        if key.to_user_string() == "dataset_manifest":  # across batches: not partitioned
            continue
        node = graph.get(key)
        assert node.partitions_def == upload_batches
        assert node.code_version and node.description and node.group_name == "video_curation"
        assert node.owners == ["team:video-curation"] and node.tags["curation_stage"]
        policies.add(node.backfill_policy)
    assert policies == {None}  # Dagster's default: a backfill launches one run per partition
    parents = {
        k.to_user_string(): {p.to_user_string() for p in graph.get(k).parent_keys}
        for k in graph.get_all_asset_keys()
    }
    assert parents == {
        "raw_videos": set(),
        "clips": {"raw_videos"},
        "clip_embeddings": {"clips"},
        "clip_captions": {"clips"},
        "training_shards": {"clips", "clip_embeddings", "clip_captions"},
        "dataset_manifest": {"training_shards"},
    }
    # Every run executes in one process on one Ray, whoever launches it: the job, and the asset graph's
    # implicit job that materializations from the UI, backfills and automation run.
    assert defs.resolve_job_def("curate_batch").executor_def.name == "in_process"
    assert defs.resolve_implicit_global_asset_job_def().executor_def.name == "in_process"
