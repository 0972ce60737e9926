"""Training shards of a real curated batch (real Ray, LanceDB, PyAV clips, demo models): what goes in,
byte-identical re-runs, replacement, atomic writes, object storage, and a standard loader reading back."""

from __future__ import annotations

import contextlib
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest

from curator_core.atomic import atomic_open
from curator_core.batches import BatchSettings
from curator_core.executors.ray import RayExecutor
from curator_core.models.open_clip_model import DEMO_EMBED_DIM
from curator_core.store import ClipStore, schemas
from curator_core.training.options import ShardOptions
from curator_core.training.shards import (
    MEDIA_UNREADABLE,
    export_shards,
    read_index,
    read_shard,
    verify_shards,
)
from tests.training.conftest import BATCH

SMALL = ShardOptions(target_shard_bytes=40_000)  # a few clips per shard: several shards


def _kept(settings: BatchSettings) -> list[str]:
    rows = ClipStore(settings.store_uri).rows("clips", f"batch_key = '{BATCH}' AND kept = true")
    return sorted(rows.column("uuid").to_pylist())


def _tar_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.tar"))}


def test_every_kept_clip_becomes_one_sample_with_all_its_parts(curated, tmp_path):
    export = export_shards(curated.store_uri, BATCH, str(tmp_path), SMALL, RayExecutor(num_cpus=2))
    kept = _kept(curated)
    assert len(kept) == 4  # three shots + the moving clip; the static clip was filtered by motion
    assert export.samples == 4 and export.candidates == 5
    assert export.dropped["filtered_in_clips"] == 1 and sum(export.dropped.values()) == 1
    assert len(export.shards) >= 2
    keys = []
    for shard in export.shards:
        contents = read_shard(shard.uri)
        assert not contents.error and contents.sha256 == shard.sha256
        assert all(parts == {"json", "mp4", "npy", "txt"} for parts in contents.parts.values())
        keys += contents.keys
    assert keys == kept  # in uuid order across shards
    index = json.loads(Path(export.index_uri).read_text())
    assert [s["uri"] for s in index["shards"]] == [s.uri for s in export.shards]
    assert index["samples"] == 4 and index["parts"] == ["json", "mp4", "npy", "txt"]
    assert verify_shards(read_index(export.index_uri)) == {s.uri: [] for s in export.shards}
    rows = ClipStore(curated.store_uri).rows("training_shards", f"batch_key = '{BATCH}'").to_pylist()
    assert sorted(r["shard_uri"] for r in rows) == sorted(s.uri for s in export.shards)
    assert {r["content_hash"] for r in rows} == {s.sha256 for s in export.shards}
    assert not list(tmp_path.rglob(".*.tmp-*"))  # no temporary file left behind


def test_a_sample_carries_its_clip_caption_embedding_and_lineage(curated, tmp_path):
    export = export_shards(curated.store_uri, BATCH, str(tmp_path), ShardOptions(), RayExecutor(num_cpus=2))
    store = ClipStore(curated.store_uri)
    clips = {r["uuid"]: r for r in store.rows("clips").to_pylist()}
    captions = {r["uuid"]: r["text"] for r in store.rows("clip_captions").to_pylist()}
    vectors = {r["uuid"]: r["vector"] for r in store.rows("clip_embeddings__open_clip_demo_clip").to_pylist()}
    (shard,) = export.shards
    with tarfile.open(shard.uri) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
        assert {m.mtime for m in tar.getmembers()} == {0}
    for uuid in _kept(curated):
        info = json.loads(members[f"{uuid}.json"])
        clip = clips[uuid]
        assert info["span_s"] == [clip["span_start_s"], clip["span_end_s"]]
        assert info["source_uri"] == clip["source_uri"] and info["lineage"]["pipeline"] == "clips"
        assert info["media"]["fps"] == pytest.approx(24.0) and info["media"]["width"] > 0
        assert members[f"{uuid}.mp4"] == Path(clip["media_uri"]).read_bytes()
        assert members[f"{uuid}.txt"].decode() == captions[uuid].strip()
        vector = np.load(io.BytesIO(members[f"{uuid}.npy"]))
        assert vector.dtype == np.float32 and np.allclose(vector, vectors[uuid])


def test_the_same_batch_and_rules_give_byte_identical_shards_with_the_same_names(curated, tmp_path):
    first = export_shards(curated.store_uri, BATCH, str(tmp_path / "one"), SMALL, RayExecutor(num_cpus=2))
    before = _tar_files(tmp_path / "one" / BATCH)
    again = export_shards(curated.store_uri, BATCH, str(tmp_path / "one"), SMALL, RayExecutor(num_cpus=2))
    other = export_shards(curated.store_uri, BATCH, str(tmp_path / "two"), SMALL, RayExecutor(num_cpus=2))
    assert _tar_files(tmp_path / "one" / BATCH) == before == _tar_files(tmp_path / "two" / BATCH)
    assert [s.sha256 for s in first.shards] == [s.sha256 for s in again.shards]
    assert again.removed == [] and other.generation == first.generation


def test_other_rules_replace_the_batchs_shards_and_index(curated, tmp_path):
    executor = RayExecutor(num_cpus=2)
    first = export_shards(curated.store_uri, BATCH, str(tmp_path), SMALL, executor)
    longest = max(
        r["duration_s"] for r in ClipStore(curated.store_uri).rows("clips", "kept = true").to_pylist()
    )
    strict = ShardOptions(target_shard_bytes=40_000, min_duration_s=longest - 0.01)
    second = export_shards(curated.store_uri, BATCH, str(tmp_path), strict, executor)
    assert second.generation != first.generation
    assert 1 <= second.samples < first.samples
    assert second.dropped["min_duration_s"] == first.samples - second.samples
    on_disk = sorted(p.name for p in (tmp_path / BATCH).glob("*.tar"))
    assert on_disk == sorted(Path(s.uri).name for s in second.shards)
    assert len(second.removed) == len(first.shards)
    rows = ClipStore(curated.store_uri).rows("training_shards", f"batch_key = '{BATCH}'")
    assert sorted(rows.column("shard_uri").to_pylist()) == sorted(s.uri for s in second.shards)
    nothing = export_shards(
        curated.store_uri, BATCH, str(tmp_path), ShardOptions(min_duration_s=1e6), executor
    )
    assert nothing.shards == [] and not list((tmp_path / BATCH).glob("*.tar"))
    assert json.loads(Path(nothing.index_uri).read_text())["samples"] == 0


@contextlib.contextmanager
def _sizes_not_recorded(store: ClipStore):
    """The batch's clips as a store written before `media_bytes` existed holds them (sizes unknown)."""
    rows = store.rows("clips", f"batch_key = '{BATCH}'")
    store.replace_batch("clips", BATCH, rows.drop(["media_bytes"]).to_pylist(), schemas.CLIPS)
    try:
        yield
    finally:
        store.replace_batch("clips", BATCH, rows, schemas.CLIPS)


def test_recorded_media_sizes_and_sizes_asked_of_the_storage_give_the_same_shards(curated, tmp_path):
    store = ClipStore(curated.store_uri)
    recorded = store.rows("clips", f"batch_key = '{BATCH}' AND kept = true").to_pylist()
    assert all(r["media_bytes"] == Path(r["media_uri"]).stat().st_size for r in recorded)
    executor = RayExecutor(num_cpus=2)
    first = export_shards(curated.store_uri, BATCH, str(tmp_path / "recorded"), SMALL, executor)
    with _sizes_not_recorded(store):
        second = export_shards(curated.store_uri, BATCH, str(tmp_path / "asked"), SMALL, executor)
    assert _tar_files(tmp_path / "recorded" / BATCH) == _tar_files(tmp_path / "asked" / BATCH)
    assert [s.sha256 for s in first.shards] == [s.sha256 for s in second.shards]


@pytest.mark.parametrize("sizes", ["recorded", "asked of the storage"])
def test_duplicates_are_dropped_and_a_missing_media_file_is_recorded_by_name(curated, tmp_path, sizes):
    store = ClipStore(curated.store_uri)
    kept = _kept(curated)
    clip = {r["uuid"]: r for r in store.rows("clips").to_pylist()}
    duplicate = {
        "row_id": kept[0], "uuid": kept[0], "duplicate_of": kept[1], "similarity": 0.999, "reason": "test",
        "batch_key": BATCH,
    }  # fmt: skip
    store.replace_batch("clip_duplicates", BATCH, [duplicate], schemas.CLIP_DUPLICATES)
    media = Path(clip[kept[2]]["media_uri"])
    moved = media.with_suffix(".away")
    media.rename(moved)
    try:
        with _sizes_not_recorded(store) if sizes != "recorded" else contextlib.nullcontext():
            export = export_shards(
                curated.store_uri, BATCH, str(tmp_path), ShardOptions(), RayExecutor(num_cpus=2)
            )
    finally:
        moved.rename(media)
        store.replace_batch("clip_duplicates", BATCH, [], schemas.CLIP_DUPLICATES)
    assert export.dropped["duplicate"] == 1 and export.dropped[MEDIA_UNREADABLE] == 1
    assert export.samples == len(kept) - 2
    (failure,) = export.failures
    assert str(media) in failure["input"] and str(media) in failure["reason"]
    assert export.shards[0].samples == export.samples == len(read_shard(export.shards[0].uri).keys)


def test_a_write_that_fails_leaves_no_file_under_its_final_name(tmp_path):
    target = tmp_path / "out" / "shard.tar"
    target.parent.mkdir()
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_open(str(target)) as handle:
        handle.write(b"partial")
        raise RuntimeError("disk full")
    assert target.read_bytes() == b"old" and [p.name for p in target.parent.iterdir()] == ["shard.tar"]
    with atomic_open(str(target)) as handle:
        handle.write(b"new")
    assert target.read_bytes() == b"new"


def test_shards_on_an_s3_compatible_server(curated, s3_server):
    import s3fs

    export = export_shards(
        curated.store_uri, BATCH, "s3://curator/shards", SMALL, RayExecutor(num_cpus=2), s3_server
    )
    fs = s3fs.S3FileSystem(**s3_server)
    listed = sorted(fs.ls(f"curator/shards/{BATCH}"))
    assert listed == sorted([f"curator/shards/{BATCH}/index.json"] + [s.uri[5:] for s in export.shards])
    assert verify_shards(read_index(export.index_uri, s3_server), s3_server) == {
        s.uri: [] for s in export.shards
    }
    with pytest.raises(RuntimeError), atomic_open("s3://curator/shards/broken.tar", s3_server) as handle:
        handle.write(b"x" * (6 << 20))  # past s3fs's first multipart block
        raise RuntimeError("worker died")
    assert not fs.exists("curator/shards/broken.tar")


def test_webdataset_streams_the_shards_through_a_dataloader_with_two_workers(curated, tmp_path):
    import torch
    import webdataset as wds

    from curator_core.training.reading import decode_sample

    export = export_shards(curated.store_uri, BATCH, str(tmp_path), SMALL, RayExecutor(num_cpus=2))
    urls = [s.uri for s in export.shards]
    dataset = wds.WebDataset(urls, shardshuffle=False, empty_check=False).map(decode_sample)
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=2)
    seen = {}
    for sample in loader:
        seen[sample["__key__"]] = sample
    assert sorted(seen) == _kept(curated)
    for sample in seen.values():
        frames = sample["frames"]
        assert frames.ndim == 4 and frames.shape[0] >= 20 and frames.shape[-1] == 3
        assert frames.shape[0] == sample["json"]["media"]["num_frames"]
        assert isinstance(sample["txt"], str) and sample["txt"]
        assert tuple(sample["npy"].shape) == (DEMO_EMBED_DIM,)


def test_curator_export_shards_and_manifest_from_the_command_line(curated, tmp_path, capsys):
    from curator_core.cli import main

    argv = ["export", "shards", "--store", curated.store_uri, "--batch", BATCH, "--to", str(tmp_path)]
    assert main([*argv, "--target-shard-bytes", "40000", "--no-require-caption"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["samples"] == len(_kept(curated)) and len(out["shards"]) >= 2
    assert all(Path(uri).is_file() for uri in out["shards"])
    assert main(["export", "manifest", "--store", curated.store_uri, "--to", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out)["samples"] == out["samples"]
    assert main(["export", "shards", "--store", curated.store_uri, "--to", str(tmp_path)]) == 2  # no --batch


def test_the_cli_the_dagster_config_and_the_core_agree_on_every_shard_default():
    from curator_assets.configs import TrainingShardsConfig
    from curator_core.cli import build_parser, model_from_args

    args = build_parser().parse_args(["export", "shards", "--batch", "b", "--to", "x"])
    assert model_from_args(args, ShardOptions) == ShardOptions() == TrainingShardsConfig().options()
    assert set(TrainingShardsConfig.model_fields) == set(ShardOptions.model_fields)
    for name, field in ShardOptions.model_fields.items():
        assert TrainingShardsConfig.model_fields[name].description == field.description


def test_verify_shards_finds_a_truncated_shard(curated, tmp_path):
    export = export_shards(curated.store_uri, BATCH, str(tmp_path), SMALL, RayExecutor(num_cpus=2))
    damaged = Path(export.shards[0].uri)
    damaged.write_bytes(damaged.read_bytes()[: damaged.stat().st_size // 2])
    problems = verify_shards(read_index(export.index_uri))
    assert problems[str(damaged)] and all(not p for uri, p in problems.items() if uri != str(damaged))
