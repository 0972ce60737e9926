import json

import pytest

from curator_core.cli import main
from curator_core.video.samples import Shot, write_video
from curator_core.video.shots import ContentShotDetector, VideoDecodeError


def test_synthetic_hard_cuts_are_found_at_exact_frames(three_shots):
    result = ContentShotDetector().detect_path(str(three_shots))
    assert [(t.kind, t.start_frame) for t in result.transitions] == [("hard", 48), ("hard", 96)]
    assert [t.start_pts_s for t in result.transitions] == pytest.approx([2.0, 4.0])


def test_a_moving_object_is_not_a_cut(moving_video):
    assert ContentShotDetector().detect_path(str(moving_video)).transitions == []


def test_dip_to_black_is_one_gradual_transition(tmp_path):
    path = write_video(
        tmp_path / "dip.mp4",
        [Shot(48, (200, 60, 60)), Shot(12, (0, 0, 0), motion=False), Shot(48, (60, 200, 60))],
    )
    result = ContentShotDetector().detect_path(str(path))
    gradual = [t for t in result.transitions if t.kind == "gradual"]
    assert len(gradual) == 1 and 46 <= gradual[0].start_frame <= 50 and 58 <= gradual[0].end_frame <= 61


def test_vfr_file_cuts_carry_the_same_pts_as_its_constant_rate_twin(shared_videos):
    vfr = ContentShotDetector().detect_path(str(shared_videos / "goldeneye_vfr_drop3.mp4"))
    cfr = ContentShotDetector().detect_path(str(shared_videos / "goldeneye_rotate_m90.mp4"))
    assert [t.start_frame for t in vfr.transitions] == [60, 140]  # decoded-frame indices, not nominal
    assert len(cfr.transitions) == len(vfr.transitions) == 2
    for a, b in zip(vfr.transitions, cfr.transitions, strict=True):
        assert abs(a.start_pts_s - b.start_pts_s) < 0.1


def test_cli_prints_json_and_fails_clearly_on_unreadable_input(three_shots, bad_inputs, capsys):
    assert main(["shots", str(three_shots), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["video"] == str(three_shots) and [t["start_frame"] for t in out["transitions"]] == [48, 96]
    assert main(["shots", str(bad_inputs["text"])]) == 1
    assert "not a readable media file" in capsys.readouterr().err
    with pytest.raises(VideoDecodeError):
        ContentShotDetector().detect_path(str(bad_inputs["empty"]))
