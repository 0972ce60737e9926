"""The writer's output round-trips, and the whole pipeline survives every kind of bad input on real Ray."""

import json
from pathlib import Path

import pyarrow.parquet as pq

from curator_core import RayExecutor
from curator_core.cli import main
from curator_core.video.pipelines import CurationOptions, split_pipeline
from curator_core.video.report import run_summary
from curator_core.video.writer import ClipWriterStage
from tests.fixtures_video import decode_all
from tests.video.test_transcoding import _transcoded


def test_writer_output_round_trips(tmp_path, three_shots):
    task = _transcoded(three_shots, clip_len=2.0)
    expected = {c.uuid: (c.span, c.encoded_data) for c in task.data.clips}
    ClipWriterStage(output_root=str(tmp_path)).process(task)
    table = pq.read_table(task.metadata["clips_table"]).to_pylist()
    assert {row["uuid"] for row in table} == set(expected)
    for row in table:
        span, data = expected[row["uuid"]]
        assert (row["span_start_s"], row["span_end_s"]) == span and row["kept"]
        assert Path(row["media_uri"]).read_bytes() == data
        assert Path(row["media_uri"]).name == f"{row['uuid']}.mp4"
    summary = json.loads(Path(task.metadata["video_summary"]).read_text())
    assert summary["source"] == str(three_shots) and summary["num_clips"] == 3
    assert summary["metadata"]["num_frames"] == 144
    assert three_shots.stem not in " ".join(str(p) for p in tmp_path.rglob("*"))  # no user names in paths


def test_pipeline_records_every_bad_input_and_goes_on(ray_cluster, bad_inputs, shared_videos, tmp_path):
    inputs = [str(bad_inputs["good"].parent), str(shared_videos / "corrupted_h264.mp4")]
    options = CurationOptions(splitting="fixed", clip_len_s=2.0, min_clip_len_s=0.5, motion_score_only=True)
    result = split_pipeline(inputs, str(tmp_path / "out"), options).execute(RayExecutor())
    summary = run_summary(result)
    failed = {Path(f["source"]).name: f["reason"] for f in summary["failed"]}
    assert "empty file" in failed["empty.mp4"]
    assert "not a readable media file" in failed["notes.mp4"]
    assert "truncated.mp4" in failed or any("truncated" in c["source"] for c in summary["clips_written"])
    assert "unsupported.mp4" in failed
    assert "decod" in failed["corrupted_h264.mp4"]
    written = {Path(c["source"]).name for c in summary["clips_written"]}
    assert {"good clip ü.mp4", "corrupted_h264.mp4"} <= written
    for clip in summary["clips_written"]:
        frames, _ = decode_all(Path(clip["path"]))
        assert frames
    assert result.failures == []  # bad input is recorded on its task, never crashes a stage


def test_cli_run_prints_a_json_summary(ray_cluster, three_shots, tmp_path, capsys):
    code = main(
        [
            "run",
            str(three_shots),
            "--out",
            str(tmp_path / "o"),
            "--splitting",
            "shots",
            "--min-clip-len",
            "1",
            "--json",
        ]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["videos_read"] == 1
    assert sorted(tuple(c["span"]) for c in summary["clips_written"]) == [(0.0, 2.0), (2.0, 4.0), (4.0, 6.0)]
    assert all(Path(c["path"]).exists() and Path(c["preview"]).exists() for c in summary["clips_written"])
