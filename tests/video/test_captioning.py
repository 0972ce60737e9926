"""Captioning with tiny random-weight transformers models (a Qwen2.5-VL and a Qwen2 LM) built from configs,
saved to a temp model directory and loaded through the same path real checkpoints use."""

from __future__ import annotations

import json

import pytest

from curator_core.cli import main
from curator_core.models.registry import MissingModelError
from curator_core.models.transformers_models import write_demo_text_model, write_demo_vlm
from curator_core.store import ClipStore
from curator_core.video.captioning import (
    CAPTION_FRAME_KEY,
    PROMPTS,
    CaptionEnhancementStage,
    CaptionGenerationStage,
    CaptionPreparationStage,
    window_bounds,
)
from curator_core.video.frames import ClipFrameExtractionStage
from tests.video.test_transcoding import _transcoded

VLM = "transformers/demo-qwen2.5-vl"
LM = "transformers/demo-qwen2-lm"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> str:
    directory = tmp_path_factory.mktemp("models")
    write_demo_vlm(directory)
    write_demo_text_model(directory)
    return str(directory)


@pytest.fixture(scope="module")
def generator(model_dir) -> CaptionGenerationStage:
    stage = CaptionGenerationStage(model_dir=model_dir, max_new_tokens=12)
    stage.setup()
    return stage


def _prepared(path, clip_len=2.0, **prep):
    task = ClipFrameExtractionStage(keys=[CAPTION_FRAME_KEY]).process(_transcoded(path, clip_len=clip_len))
    return CaptionPreparationStage(**prep).process(task)


def test_window_bounds_cover_every_frame_and_merge_a_short_tail():
    assert window_bounds(10, 4, 1) == [(0, 4), (4, 8), (8, 10)]
    assert window_bounds(9, 4, 2) == [(0, 4), (4, 9)]
    assert window_bounds(3, 64, 4) == [(0, 3)]


def test_preparation_makes_windows_per_prompt_and_takes_a_custom_prompt(three_shots):
    task = _prepared(three_shots, window_size=2, min_window_frames=1, prompt_variants=["default", "short"])
    clip = task.data.clips[0]
    frames = clip.extracted_frames[CAPTION_FRAME_KEY]
    assert len(frames) == 4 and frames.shape[1] == CAPTION_FRAME_KEY.height  # 2 s at 2 fps
    assert [(w.start_frame, w.end_frame, w.prompt_id) for w in clip.caption_windows] == [
        (0, 2, "default"),
        (0, 2, "short"),
        (2, 4, "default"),
        (2, 4, "short"),
    ]
    assert clip.caption_windows[1].prompt == PROMPTS["short"]
    custom = _prepared(three_shots, prompt="Name the colour.").data.clips[0].caption_windows
    assert [(w.prompt_id, w.prompt) for w in custom] == [("custom", "Name the colour.")]
    with pytest.raises(ValueError, match="unknown prompt variants"):
        CaptionPreparationStage(prompt_variants=["poetic"])


def test_greedy_captions_are_deterministic_and_a_batch_equals_single_calls(generator, three_shots):
    first = generator.process_batch([_prepared(three_shots), _prepared(three_shots, clip_len=1.5)])
    again = [generator.process(_prepared(three_shots)), generator.process(_prepared(three_shots, 1.5))]
    texts = [[w.captions[VLM] for c in t.data.clips for w in c.caption_windows] for t in first]
    assert texts == [[w.captions[VLM] for c in t.data.clips for w in c.caption_windows] for t in again]
    assert len(texts[0]) == 3 and all(isinstance(t, str) and t for t in texts[0])
    assert first[0].data.clips[0].metadata["caption_random_weights"] is True


def test_enhancement_rewrites_each_caption_with_the_text_model(generator, model_dir, three_shots):
    task = generator.process(_prepared(three_shots))
    stage = CaptionEnhancementStage(model_dir=model_dir, max_new_tokens=8)
    stage.setup()
    stage.process(task)
    for clip in task.data.clips:
        for window in clip.caption_windows:
            assert isinstance(window.enhanced_captions[LM], str)


def test_missing_captioning_model_names_the_path_and_the_command(tmp_path):
    with pytest.raises(MissingModelError, match=r"Qwen--Qwen2\.5-VL-3B.*curator models download"):
        CaptionGenerationStage(model="transformers/Qwen--Qwen2.5-VL-3B", model_dir=str(tmp_path)).setup()
    (tmp_path / "models.json").write_text(json.dumps({"embedding": "open_clip/x"}))
    with pytest.raises(MissingModelError, match="names no 'captioning' model"):
        CaptionGenerationStage(model_dir=str(tmp_path)).setup()


def test_run_with_captions_on_ray_records_them_in_the_store(
    ray_cluster, model_dir, three_shots, tmp_path, capsys
):
    db = str(tmp_path / "db")
    run = ["run", str(three_shots), "--out", str(tmp_path / "o"), "--min-clip-len", "1", "--caption"]
    args = [*run, "--enhance-captions", "--caption-max-tokens", "8", "--model-dir", model_dir]
    assert main([*args, "--store", db, "--batch", "b1", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["store"]["rows"]["clip_captions"] == 6  # 3 clips x (caption + enhanced)
    rows = ClipStore(db).rows("clip_captions").to_pylist()
    clips = {c["uuid"] for c in summary["clips_written"]}
    assert {r["uuid"] for r in rows} == clips
    assert sorted((r["kind"], r["model_id"]) for r in rows) == [("caption", VLM)] * 3 + [("enhanced", LM)] * 3
    assert all(r["batch_key"] == "b1" and r["end_frame"] > r["start_frame"] for r in rows)
