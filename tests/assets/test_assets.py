"""All the batch's assets materialized for real partitions on a real (temporary) Dagster instance, real Ray,
real LanceDB and real video files; re-materializing replaces, never duplicates."""

from __future__ import annotations

import dagster as dg
import pytest

from curator_assets.assets import ASSETS, clip_embeddings, clips, raw_videos
from curator_assets.resources import CuratorSettings
from curator_core.store import ClipStore
from tests.assets.conftest import add_batch, asset_metadata, materialize_batch


def test_every_asset_for_one_batch(resources, workdir, three_shots, static_video, bad_inputs):
    add_batch(workdir / "landing", "b1", [three_shots, static_video, bad_inputs["text"]])
    with dg.instance_for_test() as instance:
        result = materialize_batch(ASSETS, "b1", resources, instance)
        assert result.success
        raw = asset_metadata(result, "raw_videos")
        assert raw["dagster/row_count"].value == 3
        assert raw["failures"].value == 1 and "notes.mp4" in raw["failure_reasons"].value
        assert {c.name for c in raw["dagster/column_schema"].schema.columns} >= {
            "video_id",
            "status",
            "batch_key",
        }
        clips_md = asset_metadata(result, "clips")
        # three_shots: 3 clips kept; the static video: 1 clip filtered by motion
        assert clips_md["dagster/row_count"].value == 4
        assert clips_md["video_seconds"].value == pytest.approx(6.0 + 3.0, abs=0.1)
        assert clips_md["throughput_video_s_per_s"].value > 0
        assert "data:image/jpeg;base64," in clips_md["preview"].value
        columns = {c.name: c.description for c in clips_md["dagster/column_schema"].schema.columns}
        assert all(columns.values()) and "UUID5" in columns["uuid"]  # every column described
        store_ids = ClipStore(str(workdir / "store")).rows("clips").column("uuid").to_pylist()
        assert any(uuid in clips_md["preview"].value for uuid in store_ids)  # full ids, not 8 characters
        assert clips_md["store_uri"].value == str(workdir / "store")
        embeddings = asset_metadata(result, "clip_embeddings")
        assert embeddings["dagster/row_count"].value == 3
        assert embeddings["demo_models"].value is True and "RANDOM" in embeddings["notes"].value
        assert asset_metadata(result, "clip_captions")["dagster/row_count"].value == 3
        shards = asset_metadata(result, "training_shards")
        assert shards["samples"].value == 3 and shards["shard_count"].value == 1
        assert shards["dropped_by_rule"].value["filtered_in_clips"] == 1
        assert shards["shards_folder"].value == str(workdir / "shards" / "b1")
        evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
        assert {e.partition for e in evaluations.values()} == {"b1"}  # one result per batch
        readable = evaluations["every_video_readable"]  # notes.mp4: a warning, with the reason
        assert readable.severity == dg.AssetCheckSeverity.WARN and readable.metadata["failed"].value == 1
        assert "notes.mp4" in str(readable.metadata["reasons"].value)
        checks = {name: e.passed for name, e in evaluations.items()}
        assert checks == {
            "every_video_readable": False,
            "every_input_processed": True,  # notes.mp4 is reported once, by raw_videos
            "clip_ids_unique": True,
            "clip_files_exist_and_decode": True,
            "every_kept_clip_has_an_embedding": True,
            "embeddings_finite_unit_norm": True,
            "every_kept_clip_has_a_caption": True,
            "shards_open_and_complete": True,
        }
        logs = " | ".join(e.message for e in instance.all_logs(result.run_id) if e.is_dagster_event is False)
        assert "clips: 3 of 3 videos done (100%)" in logs  # progress lines in the run's log
        assert "clip_captions: 3 of 3 clips done (100%)" in logs
        gallery = clips_md["gallery"].value
        assert gallery == (workdir / "outputs" / "b1" / "gallery.html").as_uri()
        assert clips_md["output_folder"].value == str(workdir / "outputs" / "b1")
    store = ClipStore(str(workdir / "store"))
    failures = store.rows("failures").to_pylist()
    assert [f["input"].endswith("notes.mp4") for f in failures] == [True]  # recorded once, by raw_videos
    assert "notes.mp4" not in failures[0]["message"]  # the input names the file; the reason does not
    page = (workdir / "outputs" / "b1" / "gallery.html").read_text()
    assert "3</b> clips kept" in page and "motion" in page and "notes.mp4" in page
    assert page.count('<img loading="lazy" src="previews/') == 3  # kept clips' previews, linked relatively
    assert "filtered by motion_filter" in page  # the static clip, with its reason
    kept = set(store.rows("clips", "kept = true").column("uuid").to_pylist())
    assert len(kept) == 3
    assert set(store.rows("clip_captions").column("uuid").to_pylist()) == kept
    assert set(store.rows("clip_embeddings__open_clip_demo_clip").column("uuid").to_pylist()) == kept
    # The same batch's clips again, with other settings (on the full batch built above: one build saved).
    _rematerializing_clips_with_other_settings_removes_what_it_no_longer_produces(resources, workdir, "b1")


def _rematerializing_clips_with_other_settings_removes_what_it_no_longer_produces(
    resources, workdir, batch: str
):
    """Media, previews and the rows derived from clips that the new settings no longer produce all go."""
    store = ClipStore(str(workdir / "store"))
    media = workdir / "outputs" / batch
    old_rows = store.rows("clips").to_pylist()
    old = {r["uuid"] for r in old_rows}
    old_files = sum(bool(r[c]) for r in old_rows for c in ("media_uri", "preview_uri"))
    (media / "clips" / ".left-by-a-killed-run.mp4.tmp-0123").write_bytes(b"partial")
    config = {"ops": {"clips": {"config": {"splitting": "fixed", "clip_len_s": 1.5, "min_clip_len_s": 1.0}}}}
    with dg.instance_for_test() as instance:
        rerun = materialize_batch([raw_videos, clips], batch, resources, instance, run_config=config)
        assert rerun.success
    rows = store.rows("clips").to_pylist()
    new = {r["uuid"] for r in rows}
    assert new and not new & old  # other spans, other ids: the old ones must all go
    on_disk = {str(p) for p in (media / "clips").iterdir()} | {str(p) for p in (media / "previews").iterdir()}
    assert on_disk == {r[c] for r in rows for c in ("media_uri", "preview_uri") if r[c]}
    derived = [store.rows(t) for t in store.table_names() if t.startswith("clip_embeddings__")]
    derived.append(store.rows("clip_captions"))
    assert all(set(t.column("uuid").to_pylist()) <= new for t in derived)  # nothing points at a gone clip
    removed = asset_metadata(rerun, "clips")["stale_outputs_removed"].value
    assert removed["files"] == old_files + 1 and removed["clip_captions"] > 0


def test_rematerializing_a_partition_replaces_it_and_leaves_the_other_alone(
    resources, workdir, three_shots, moving_video
):
    add_batch(workdir / "landing", "a", [three_shots])
    add_batch(workdir / "landing", "b", [moving_video])
    store = ClipStore(str(workdir / "store"))
    with dg.instance_for_test() as instance:
        assert materialize_batch([raw_videos, clips], "a", resources, instance).success
        assert materialize_batch([raw_videos, clips], "b", resources, instance).success
        before = {t: store.rows(t).sort_by("row_id").to_pylist() for t in ("videos", "clips")}
        b_rows = [r for r in before["clips"] if r["batch_key"] == "b"]
        rerun = materialize_batch([raw_videos, clips], "a", resources, instance)
        assert rerun.success
    after = {t: store.rows(t).sort_by("row_id").to_pylist() for t in ("videos", "clips")}
    for table in ("videos", "clips"):
        ids = [r["row_id"] for r in after[table]]
        assert len(ids) == len(set(ids)) == len(before[table])
    assert [r for r in after["clips"] if r["batch_key"] == "b"] == b_rows  # untouched, same created_at
    assert sorted(r["row_id"] for r in after["clips"] if r["batch_key"] == "a") == sorted(
        r["row_id"] for r in before["clips"] if r["batch_key"] == "a"
    )


def test_a_failed_partition_does_not_block_another(resources, workdir, three_shots, tmp_path):
    add_batch(workdir / "landing", "good", [three_shots])
    add_batch(workdir / "landing", "bad", [three_shots])
    broken = dict(resources)
    settings = resources["curator"]
    broken["curator"] = CuratorSettings(
        landing=settings.landing,
        output_root=settings.output_root,
        store_uri=settings.store_uri,
        model_dir=str(tmp_path / "no-models"),
    )
    with dg.instance_for_test() as instance:
        failed = materialize_batch(ASSETS, "bad", broken, instance)
        assert not failed.success  # no embedding model configured there: a clear error, a failed run
        errors = [e for e in failed.all_events if e.event_type_value == "STEP_FAILURE"]
        assert any("no model configuration at" in str(e.event_specific_data.error) for e in errors)
        # The other batch gets through the step that failed for the first (what follows is not at stake).
        good = materialize_batch([raw_videos, clips, clip_embeddings], "good", resources, instance)
        assert good.success


def _step_errors(result) -> str:
    return " ".join(
        str(e.event_specific_data.error) for e in result.all_events if e.event_type_value == "STEP_FAILURE"
    )


def test_a_missing_landing_folder_or_an_unsafe_partition_key_fails_with_the_reason(resources, workdir):
    with dg.instance_for_test() as instance:
        missing = materialize_batch([raw_videos], "never_uploaded", resources, instance)
        assert not missing.success  # it used to "succeed" with 0 rows
        assert f"{workdir / 'landing' / 'never_uploaded'} does not exist" in _step_errors(missing)
        (workdir / "landing" / "escape_src").mkdir()  # what ../escape_src would have read
        unsafe = materialize_batch([raw_videos], "../escape_src", resources, instance)
        assert not unsafe.success
        assert "batch key '../escape_src' is not one safe path segment" in _step_errors(unsafe)
    assert not (workdir / "outputs").exists() and not (workdir.parent / "escape_src").exists()


def test_a_batch_whose_clips_are_all_filtered_materializes_every_asset(resources, workdir, static_video):
    add_batch(workdir / "landing", "static", [static_video])
    with dg.instance_for_test() as instance:
        result = materialize_batch(ASSETS, "static", resources, instance)
        assert result.success, _step_errors(result)
        clips_meta = asset_metadata(result, "clips")
        assert clips_meta["video_seconds"].value > 0
        assert asset_metadata(result, "clip_embeddings")["pipeline_seconds"].value >= 0


def test_checks_are_per_batch_a_bad_batch_stays_failed_when_another_succeeds(
    resources, workdir, three_shots, bad_inputs
):
    from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

    add_batch(workdir / "landing", "bad", [bad_inputs["text"], bad_inputs["empty"]])
    add_batch(workdir / "landing", "good", [three_shots])
    key = dg.AssetCheckKey(dg.AssetKey("raw_videos"), "every_video_readable")
    with dg.instance_for_test() as instance:
        bad = materialize_batch([raw_videos], "bad", resources, instance)
        (evaluation,) = bad.get_asset_check_evaluations()
        assert (
            not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR
        )  # nothing readable
        assert evaluation.metadata["failed_share"].value == 1.0
        assert materialize_batch([raw_videos], "good", resources, instance).success
        status = {
            info.partition_key: info.latest_execution_status
            for info in instance.event_log_storage.get_asset_check_partition_info([key])
        }
    assert status == {
        "bad": AssetCheckExecutionRecordStatus.FAILED,
        "good": AssetCheckExecutionRecordStatus.SUCCEEDED,
    }


def test_an_all_bad_batch_fails_at_raw_videos_with_the_reason(resources, workdir, bad_inputs):
    add_batch(workdir / "landing", "all_bad", [bad_inputs["text"], bad_inputs["empty"]])
    with dg.instance_for_test() as instance:
        result = materialize_batch(ASSETS, "all_bad", resources, instance)
        assert not result.success  # a failed run: the blocking check stopped it
        (evaluation,) = result.get_asset_check_evaluations()
        assert evaluation.severity == dg.AssetCheckSeverity.ERROR
        assert evaluation.description.startswith("none of the 2 files could be read")
        materialized = {m.asset_key.to_user_string() for m in result.get_asset_materialization_events()}
        assert materialized == {"raw_videos"}  # clips and later never ran on nothing
    assert ClipStore(str(workdir / "store")).count("clips") == 0


def test_an_empty_batch_fails_at_raw_videos_saying_it_holds_no_video(resources, workdir):
    (workdir / "landing" / "empty_batch").mkdir()
    (workdir / "landing" / "empty_batch" / "_READY").touch()
    with dg.instance_for_test() as instance:
        result = materialize_batch(ASSETS, "empty_batch", resources, instance)
        assert not result.success
        (evaluation,) = result.get_asset_check_evaluations()
        assert "no video file under this folder" in evaluation.description  # naming the folder
        assert str(workdir / "landing" / "empty_batch") in evaluation.description


def test_the_demo_refuses_an_unsafe_batch_name_before_writing_anything(tmp_path, monkeypatch):
    from curator_assets.demo import run_demo
    from curator_core.batches import BatchInputError

    monkeypatch.setenv("CURATOR_STATE_DIR", str(tmp_path / "state"))
    with pytest.raises(BatchInputError, match="not one safe path segment"):
        run_demo("x' OR '1'='1")
    assert not (tmp_path / "state").exists()
