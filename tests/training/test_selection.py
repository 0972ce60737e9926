"""Selection rules, shard packing and the mergeable histograms: pure logic, small inputs."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from curator_core.training.options import ShardOptions
from curator_core.training.selection import RULES, select_clips
from curator_core.training.shards import SAMPLE_OVERHEAD_BYTES, MediaFile, pack, required_parts
from curator_core.training.stats import clip_stats, merge_stats, score_bin, score_bin_value


def _row(uuid: str, kept=True, duration=5.0, **scores) -> dict:
    return {"uuid": uuid, "kept": kept, "duration_s": duration, "scores": list(scores.items())}


def test_each_dropped_clip_is_counted_once_under_the_first_rule_that_drops_it():
    rows = [
        _row("e", motion_global_mean=0.01),
        _row("a", kept=False, motion_global_mean=0.0),  # filtered and too still: counted as filtered
        _row("d", duration=0.5, motion_global_mean=0.01),
        _row("b", motion_global_mean=0.01),
        _row("c", motion_global_mean=0.00001),
        _row("f"),  # no motion score at all
        _row("g", motion_global_mean=0.01),
    ]
    options = ShardOptions(min_duration_s=1.0, min_motion=0.001)
    selected, dropped = select_clips(rows, options, {"g"}, {"b", "c", "d", "e", "f", "g"}, {"b", "c"})
    assert [r["uuid"] for r in selected] == ["b"]
    assert list(dropped) == list(RULES)
    assert dropped == {
        "filtered_in_clips": 1,
        "duplicate": 1,
        "min_duration_s": 1,
        "max_duration_s": 0,
        "min_motion": 2,
        "min_aesthetic": 0,
        "require_caption": 0,
        "require_embedding": 1,  # e has a caption but no embedding
    }
    assert sum(dropped.values()) + len(selected) == len(rows)


def test_rules_that_are_off_keep_duplicates_and_uncaptioned_clips_in_uuid_order():
    rows = [_row("z"), _row("m"), _row("a")]
    options = ShardOptions(drop_duplicates=False, require_caption=False, require_embedding=False)
    selected, dropped = select_clips(rows, options, {"m"}, set(), set())
    assert [r["uuid"] for r in selected] == ["a", "m", "z"]
    assert not any(dropped.values())
    assert required_parts(options) == ["json", "mp4"]
    assert required_parts(ShardOptions()) == ["json", "mp4", "npy", "txt"]


def test_options_refuse_unknown_or_invalid_knobs():
    with pytest.raises(ValidationError):
        ShardOptions(min_motoin=0.1)
    with pytest.raises(ValidationError):
        ShardOptions(target_shard_bytes=0)


def test_packing_keeps_order_and_closes_a_shard_before_it_passes_the_target():
    files = [MediaFile(f"{i:02d}", "", size) for i, size in enumerate([400, 400, 400, 5000, 10, 10])]
    target = 1000 + 2 * SAMPLE_OVERHEAD_BYTES
    groups = pack(files, ShardOptions(target_shard_bytes=target))
    assert [[f.uuid for f in g] for g in groups] == [["00", "01"], ["02"], ["03"], ["04", "05"]]
    by_count = pack(files, ShardOptions(max_samples_per_shard=4))
    assert [len(g) for g in by_count] == [4, 2]
    assert pack([], ShardOptions()) == []


def test_histograms_merge_by_addition_and_bin_scores_of_any_scale():
    a = clip_stats([{"duration_s": 0.5, "scores": [("motion", 2e-4)]}, {"duration_s": 9.0, "scores": []}])
    b = clip_stats([{"duration_s": 70.0, "scores": [("motion", 3e-4), ("aesthetic", 5.5)]}])
    total = merge_stats([a, b])
    assert total["samples"] == 3 and total["seconds"] == pytest.approx(79.5)
    assert total["durations"] == {"0-1": 1, "8-10": 1, "60-120": 1}
    assert total["scores"]["motion"] == {"1e-4": 2}
    assert score_bin(5.5) == "1e0.5" and score_bin_value("1e0.5") == pytest.approx(10**0.5)
    assert score_bin(-0.02) == "-1e-2" and score_bin(0.0) == "0"


def test_shard_options_travel_with_the_batch_settings_of_a_ray_job():
    from curator_core.batches import BatchSettings

    settings = BatchSettings(shards_root="s3://b/shards", shard_options=ShardOptions(min_motion=0.01))
    again = BatchSettings.from_json(settings.to_json())
    assert again.shard_options == settings.shard_options and again.shards_root == "s3://b/shards"
