"""Inputs that used to vanish, sink their video or lie in their rows (issue #19, items 3 and 4), through
`curator run` as a user runs it and through the encode stage alone."""

from __future__ import annotations

import json
import subprocess
import sys

import av
import pyarrow.dataset as ds
import pytest

from curator_core.tasks import Clip, Video, VideoTask
from curator_core.video.io import probe
from curator_core.video.shots import ContentShotDetector
from curator_core.video.transcoding import ClipEncodeStage

GAP = (11.0, 13.0)  # the damage written into the middle of the 24 s fixture lies inside this


def _media_seconds(uri: str) -> float:
    with av.open(uri) as container:
        stream = container.streams.video[0]
        return float(stream.duration * stream.time_base)


@pytest.fixture(scope="module")
def run_of_odd_inputs(tmp_path_factory, odd_inputs):
    out = tmp_path_factory.mktemp("odd_out")
    folder = odd_inputs["damaged"].parent
    done = subprocess.run(
        [sys.executable, "-m", "curator_core.cli", "run", str(folder), str(odd_inputs["gif"]),
         str(odd_inputs["phone"]), "--out", str(out), "--min-clip-len", "1", "--motion-score-only", "--allow-failures", "--json"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    rows = ds.dataset(str(out / "metadata" / "clips")).to_table().to_pylist()
    return json.loads(done.stdout), rows


def test_every_input_is_processed_or_recorded_with_a_reason_naming_its_file(run_of_odd_inputs, odd_inputs):
    summary, rows = run_of_odd_inputs
    failed = {f["source"]: f["reason"] for f in summary["failed"]}
    clipped = {row["source"] for row in rows if row["kept"]}
    assert "still image (png_pipe)" in failed[str(odd_inputs["image"])]
    assert "a single frame, not a video" in failed[str(odd_inputs["one_frame"])]
    for name in ("odd", "two_streams", "gif", "phone", "damaged"):  # processed, clips written
        assert str(odd_inputs[name]) in clipped, (name, failed.get(str(odd_inputs[name])))
    listed = {str(p) for p in odd_inputs.values()}
    assert listed <= set(failed) | clipped  # nothing vanished
    assert set(failed) <= listed  # every failure is named by its file, never a task id


def test_odd_dimensions_are_encoded_one_pixel_smaller(run_of_odd_inputs, odd_inputs):
    _, rows = run_of_odd_inputs
    (row,) = [r for r in rows if r["source"] == str(odd_inputs["odd"])]
    with av.open(row["media_uri"]) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (640, 360)


def test_the_longest_video_stream_is_the_one_read(run_of_odd_inputs, odd_inputs):
    assert probe(str(odd_inputs["two_streams"])).duration_s == pytest.approx(6.0, abs=0.05)
    _, rows = run_of_odd_inputs
    spans = [
        (r["span_start_s"], r["span_end_s"]) for r in rows if r["source"] == str(odd_inputs["two_streams"])
    ]
    assert spans == [(0.0, 6.0)]


def test_damage_is_skipped_and_no_clip_spans_the_lost_frames(run_of_odd_inputs, odd_inputs):
    summary, rows = run_of_odd_inputs
    damaged = str(odd_inputs["damaged"])
    reason = {f["source"]: f["reason"] for f in summary["failed"]}[damaged]
    assert "of 576 frames decoded" in reason and "frames lost at" in reason  # the report counts the loss
    kept = sorted((r["span_start_s"], r["span_end_s"]) for r in rows if r["source"] == damaged and r["kept"])
    assert kept[-1][1] == pytest.approx(24.0)  # decoding went on past the damage to the end
    detection = ContentShotDetector().detect_path(damaged)
    ((lost_from, lost_to),) = detection.gaps
    assert GAP[0] < lost_from < lost_to < GAP[1]
    assert all(end <= lost_from + 1e-6 or start >= lost_to - 1e-6 for start, end in kept)
    for row in rows:  # every row states what its media holds
        if row["kept"] and row["source"] == damaged:
            assert _media_seconds(row["media_uri"]) == pytest.approx(row["duration_s"], abs=0.05)


def test_a_fixed_span_across_damage_is_cut_where_the_damage_begins(odd_inputs):
    damaged = str(odd_inputs["damaged"])
    clip = Clip(source=damaged, span=(8.0, 16.0))
    video = Video(input_path=damaged, metadata=probe(damaged), clips=[clip])
    ClipEncodeStage().process(VideoTask(dataset_name="t", data=video))
    ((lost_from, _),) = ContentShotDetector().detect_path(damaged).gaps
    assert clip.encoded_data and clip.span[1] == pytest.approx(lost_from, abs=1e-3)
    assert "cut short" in clip.errors["decode"]
    with av.open(__import__("io").BytesIO(clip.encoded_data)) as container:
        stream = container.streams.video[0]
        assert float(stream.duration * stream.time_base) == pytest.approx(clip.duration_s, abs=0.05)
    assert "undecodable packets skipped" in video.errors["decode"]
