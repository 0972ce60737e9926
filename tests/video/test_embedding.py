"""open_clip embeddings with a tiny random-weight model built from a config, saved to a temp model
directory and loaded through the same path real weights use."""

from __future__ import annotations

import json

import numpy as np
import pytest

from curator_core.cli import main
from curator_core.models.open_clip_model import OpenClipModel, write_demo_model
from curator_core.models.registry import MissingModelError
from curator_core.tasks import FrameKey
from curator_core.video.embedding import ClipEmbeddingStage
from curator_core.video.frames import ClipFrameExtractionStage
from tests.video.test_transcoding import _transcoded

KEY = FrameKey(fps=2.0, height=224, width=224)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> str:
    directory = tmp_path_factory.mktemp("models")
    write_demo_model(directory)
    return str(directory)


@pytest.fixture(scope="module")
def stage(model_dir) -> ClipEmbeddingStage:
    stage = ClipEmbeddingStage(model_dir=model_dir, frame_key=KEY)
    stage.setup()
    return stage


def _task_with_frames(path, clip_len=2.0):
    return ClipFrameExtractionStage(keys=[KEY]).process(_transcoded(path, clip_len=clip_len))


def test_clip_embeddings_are_unit_norm_float32_under_the_model_id(stage, three_shots):
    task = stage.process(_task_with_frames(three_shots))
    assert stage.model_id == "open_clip/demo-clip"
    for clip in task.data.clips:
        vector = clip.embeddings["open_clip/demo-clip"]
        assert vector.shape == (64,) and vector.dtype == np.float32
        assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)
        assert clip.metadata["embedding_random_weights"] is True
    first, second = (task.data.clips[i].embeddings["open_clip/demo-clip"] for i in (0, 1))
    assert not np.allclose(first, second)  # different shots, different embeddings


def test_a_batch_equals_single_calls(stage, three_shots, moving_video):
    batch = stage.process_batch([_task_with_frames(three_shots), _task_with_frames(moving_video, 1.5)])
    singles = [
        stage.process(_task_with_frames(three_shots)),
        stage.process(_task_with_frames(moving_video, 1.5)),
    ]
    for b, s in zip(batch, singles, strict=True):
        for cb, cs in zip(b.data.clips, s.data.clips, strict=True):
            a, b = cb.embeddings[stage.model_id], cs.embeddings[stage.model_id]
            # float32 kernels differ by batch shape: equal up to rounding, not bit for bit
            np.testing.assert_allclose(a, b, atol=1e-3)
            assert float(a @ b) > 0.9999


def test_text_tower_embeds_queries(model_dir):
    model = OpenClipModel.load("open_clip/demo-clip", model_dir)
    text = model.encode_text(["a dog by the fire", "a plane"])
    assert text.shape == (2, 64) and np.allclose(np.linalg.norm(text, axis=1), 1.0, atol=1e-5)


def test_missing_weights_name_the_path_and_the_command(tmp_path):
    stage = ClipEmbeddingStage(model="open_clip/ViT-B-32", model_dir=str(tmp_path))
    with pytest.raises(
        MissingModelError, match=r"open_clip/ViT-B-32/curator\.json does not exist.*curator models demo"
    ):
        stage.setup()
    with pytest.raises(MissingModelError, match="no model configuration at .*models.json"):
        ClipEmbeddingStage(model_dir=str(tmp_path)).setup()


def test_run_with_embeddings_then_search_by_text(ray_cluster, model_dir, three_shots, tmp_path, capsys):
    db = str(tmp_path / "db")
    run = ["run", str(three_shots), "--out", str(tmp_path / "o"), "--min-clip-len", "1", "--embed"]
    assert main([*run, "--model-dir", model_dir, "--store", db, "--batch", "b1", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["store"]["rows"]["embeddings:open_clip/demo-clip"] == 3
    assert main(["search", "a red square", "--k", "2", "--store", db, "--model-dir", model_dir]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"] == "open_clip/demo-clip" and len(out["results"]) == 2
    assert all(r["media_uri"] and r["span"][1] > r["span"][0] for r in out["results"])
