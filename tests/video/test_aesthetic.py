"""The LAION aesthetic MLP over CLIP frame embeddings, with random weights built and loaded from a temp
model directory through the same path real weights use."""

from __future__ import annotations

import pytest

from curator_core.models.aesthetic import AestheticModel, write_demo_aesthetic
from curator_core.models.open_clip_model import DEMO_EMBED_DIM, write_demo_model
from curator_core.models.registry import MissingModelError
from curator_core.video.embedding import ClipEmbeddingStage
from curator_core.video.filtering import SCORE, AestheticFilterStage
from tests.video.test_embedding import KEY, _task_with_frames


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> str:
    directory = tmp_path_factory.mktemp("models")
    clip_id = write_demo_model(directory)
    write_demo_aesthetic(DEMO_EMBED_DIM, clip_id, directory)
    return str(directory)


@pytest.fixture(scope="module")
def embedded(models, three_shots):
    stage = ClipEmbeddingStage(model_dir=models, frame_key=KEY)
    stage.setup()
    return lambda: stage.process(_task_with_frames(three_shots))


def _scores(models, embedded, reduction="min"):
    task = AestheticFilterStage(model_dir=models, reduction=reduction, score_only=True).process(embedded())
    return [c.scores[SCORE] for c in task.data.clips]


def test_min_reduction_is_never_above_mean(models, embedded):
    mins, means = _scores(models, embedded, "min"), _scores(models, embedded, "mean")
    assert len(mins) == 3 and all(lo <= hi + 1e-6 for lo, hi in zip(mins, means, strict=True))


def test_threshold_keeps_and_drops(models, embedded):
    scores = sorted(_scores(models, embedded))
    cut = (scores[0] + scores[1]) / 2  # between the worst clip and the others
    task = AestheticFilterStage(model_dir=models, threshold=cut).process(embedded())
    assert len(task.data.clips) == 2 and len(task.data.filtered_clips) == 1
    assert task.data.filtered_clips[0].metadata["filtered_by"] == "aesthetic_filter"
    assert task.data.filtered_clips[0].scores[SCORE] == pytest.approx(scores[0], abs=1e-4)


def test_wrong_embedding_size_and_missing_weights_are_clear(models, tmp_path):
    import numpy as np

    model = AestheticModel("aesthetic/demo-aesthetic", models)
    with pytest.raises(ValueError, match="takes 64-d CLIP embeddings .*open_clip/demo-clip.*got 768-d"):
        model.score(np.zeros((2, 768), np.float32))
    with pytest.raises(MissingModelError, match="aesthetic/laion.*does not exist.*curator models demo"):
        AestheticFilterStage(model="aesthetic/laion", model_dir=str(tmp_path)).setup()
