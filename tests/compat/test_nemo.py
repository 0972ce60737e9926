"""NeMo Curator code, written fresh from its docs' descriptions with only the import prefix changed
(`nemo_curator` -> `curator_core.compat.nemo`), on the local executor and on real Ray."""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest

from curator_core.compat.nemo import _video_stages
from curator_core.compat.nemo.backends.ray_data import RayDataExecutor
from curator_core.compat.nemo.backends.xenna import XennaExecutor
from curator_core.compat.nemo.pipeline import Pipeline
from curator_core.compat.nemo.stages.resources import Resources
from curator_core.compat.nemo.stages.video.caption.caption_enhancement import CaptionEnhancementStage
from curator_core.compat.nemo.stages.video.caption.caption_generation import CaptionGenerationStage
from curator_core.compat.nemo.stages.video.caption.caption_preparation import CaptionPreparationStage
from curator_core.compat.nemo.stages.video.clipping.clip_extraction_stages import (
    ClipTranscodingStage,
    FixedStrideExtractorStage,
)
from curator_core.compat.nemo.stages.video.clipping.clip_frame_extraction import ClipFrameExtractionStage
from curator_core.compat.nemo.stages.video.clipping.transnetv2_extraction import TransNetV2ClipExtractionStage
from curator_core.compat.nemo.stages.video.clipping.video_frame_extraction import VideoFrameExtractionStage
from curator_core.compat.nemo.stages.video.embedding.cosmos_embed1 import CosmosEmbed1EmbeddingStage
from curator_core.compat.nemo.stages.video.filtering.clip_aesthetic_filter import ClipAestheticFilterStage
from curator_core.compat.nemo.stages.video.filtering.motion_filter import (
    MotionFilterStage,
    MotionVectorDecodeStage,
)
from curator_core.compat.nemo.stages.video.io.clip_writer import ClipWriterStage
from curator_core.compat.nemo.stages.video.io.video_reader import VideoReader
from curator_core.compat.nemo.stages.video.preview.preview import PreviewStage
from curator_core.compat.nemo.tasks import EmptyTask, _EmptyTask
from curator_core.compat.nemo.utils.decoder_utils import FrameExtractionPolicy, FramePurpose
from curator_core.executors.local import LocalExecutor
from curator_core.models.open_clip_model import DEMO_EMBED_DIM
from tests.compat.nemo_stages import BrightnessStage, SentenceSource, TwoTextSteps, WordCountStage

SENTENCES = ["one", "two words", "three words here", "x", "four words are here"]


def _executor(kind: str, request):
    if kind == "local":
        return LocalExecutor()
    request.getfixturevalue("ray_cluster")
    return XennaExecutor()


@pytest.mark.parametrize("kind", ["local", "xenna"])
def test_custom_stage_with_resources_and_a_source_stage(kind, request):
    pipeline = Pipeline(name="text", description="count words")
    pipeline.add_stage(SentenceSource(SENTENCES))
    pipeline.add_stage(WordCountStage(min_words=2).with_(resources=Resources(cpus=0.25), batch_size=2))
    outputs = pipeline.run(_executor(kind, request))
    assert sorted(t.metadata["words"] for t in outputs) == [2, 3, 4]
    stats = pipeline.last_result.stage_stats["word_count"]
    assert (stats.tasks_in, stats.tasks_out, stats.filtered) == (5, 3, 2)
    assert pipeline.build()[1].resources == Resources(cpus=0.25)


def test_conventions_composite_dict_post_init_names_empty_task_and_ray_data_executor(ray_cluster):
    composite = TwoTextSteps().with_({"second": {"resources": Resources(cpus=0.25)}})
    pipeline = Pipeline("composite", stages=[SentenceSource(SENTENCES), composite])
    first, second = pipeline.build()[1:]
    assert first.resources == Resources(cpus=0.5) and second.resources == Resources(cpus=0.25)
    outputs = pipeline.run(RayDataExecutor(), initial_tasks=[_EmptyTask()])
    assert len(outputs) == 5 and EmptyTask is _EmptyTask


def _videos(tmp_path, *videos):
    folder = tmp_path / "videos"
    folder.mkdir()
    for video in videos:
        shutil.copy(video, folder / video.name)
    return folder


@pytest.mark.parametrize("kind", ["local", "xenna"])
def test_beginner_tutorial_split_transcode_write(kind, request, three_shots, moving_video, tmp_path, caplog):
    folder, out = _videos(tmp_path, three_shots, moving_video), tmp_path / "out"
    pipeline = Pipeline(name="split", description="fixed stride split, transcode, write")
    pipeline.add_stage(VideoReader(input_video_path=str(folder), video_limit=None))
    pipeline.add_stage(
        FixedStrideExtractorStage(clip_len_s=2.0, clip_stride_s=2.0, min_clip_length_s=1.0, limit_clips=0)
    )
    pipeline.add_stage(ClipTranscodingStage(num_cpus_per_worker=1.0, encoder="libopenh264"))
    pipeline.add_stage(
        ClipWriterStage(
            output_path=str(out),
            input_path=str(folder),
            upload_clips=True,
            dry_run=False,
            generate_embeddings=False,
            generate_previews=False,
            generate_captions=False,
        )
    )
    _video_stages._NOTED.clear()  # a note is logged once per process
    with caplog.at_level(logging.WARNING, logger="curator_core.compat.nemo"):
        outputs = pipeline.run(_executor(kind, request))
    clips = [c for t in outputs for c in t.data.clips]
    assert len(clips) == 5 and not pipeline.last_result.failures  # 6 s -> 3 clips, 3 s -> 2 s + 1 s
    on_disk = sorted(p.stem for p in (out / "clips").glob("*.mp4"))
    assert on_disk == sorted(c.uuid for c in clips)
    assert sorted(p.stem for p in (out / "metas" / "v0").glob("*.json")) == on_disk
    assert "libopenh264" in caplog.text and "using libx264" in caplog.text


@pytest.fixture(scope="module")
def demo_models(tmp_path_factory) -> str:
    from curator_core.models.aesthetic import write_demo_aesthetic
    from curator_core.models.open_clip_model import write_demo_model
    from curator_core.models.transformers_models import write_demo_text_model, write_demo_vlm

    directory = str(tmp_path_factory.mktemp("nemo-models"))
    clip_id = write_demo_model(directory)
    write_demo_aesthetic(DEMO_EMBED_DIM, clip_id, directory)
    write_demo_vlm(directory)
    write_demo_text_model(directory)
    return directory


def test_split_example_chain_with_demo_models_writes_nemos_layout(
    ray_cluster, demo_models, three_shots, moving_video, tmp_path
):
    folder, out = _videos(tmp_path, moving_video), tmp_path / "out"
    stages = [
        VideoReader(input_video_path=str(folder), video_limit=1),
        VideoFrameExtractionStage(decoder_mode="pynvc"),
        TransNetV2ClipExtractionStage(threshold=0.4, min_length_s=1.0, max_length_s=2.0, crop_s=0.0),
        ClipTranscodingStage(num_cpus_per_worker=1.0, encoder="h264_nvenc", use_hwaccel=True),
        MotionVectorDecodeStage(target_fps=2.0),
        MotionFilterStage(score_only=False, global_mean_threshold=0.00001, per_patch_min_256_threshold=0.0),
        ClipFrameExtractionStage(
            extraction_policies=(FrameExtractionPolicy.sequence,),
            extract_purposes=[FramePurpose.AESTHETICS],
            target_res=(-1, -1),
        ),
        ClipAestheticFilterStage(model_dir=demo_models, score_threshold=-100.0, reduction="min"),
        CaptionPreparationStage(prompt_variant="default", sampling_fps=2.0, window_size=16),
        CaptionGenerationStage(model_dir=demo_models, caption_batch_size=4, max_output_tokens=8),
        CaptionEnhancementStage(model_dir=demo_models, max_output_tokens=8),
        PreviewStage(target_fps=1.0, target_height=120),
        ClipWriterStage(
            output_path=str(out), input_path=str(folder), upload_clips=True, dry_run=False,
            generate_embeddings=True, generate_previews=True, generate_captions=True,
        ),
    ]  # fmt: skip
    outputs = Pipeline("split_clip", "the split-clip example", stages).run(XennaExecutor())
    assert outputs
    clips = [c for t in outputs for c in t.data.clips]
    assert clips and all(c.aesthetic_score is not None and c.motion_score_global_mean > 0 for c in clips)
    for clip in clips:
        meta = json.loads((out / "metas" / "v0" / f"{clip.uuid}.json").read_text())
        assert meta["valid"] and meta["motion_score"]["global_mean"] > 0
        assert any(k.endswith("_caption") for k in meta["windows"][0])
        assert any(k.endswith("_enhanced_caption") for k in meta["windows"][0])
        assert list((out / "previews" / clip.uuid).glob("*.webp"))
    table = pq.read_table(out / "ce1_embd_parquet")  # as NeMo's split-dedup tutorial reads it
    assert sorted(table.column("id").to_pylist()) == sorted(c.uuid for c in clips)
    assert {len(v) for v in table.column("embedding").to_pylist()} == {DEMO_EMBED_DIM}


def test_custom_model_stage_loads_its_weights_on_the_worker(ray_cluster, moving_video, tmp_path):
    weights = tmp_path / "brightness.npy"
    np.save(weights, np.array([0.5]))
    stages = [
        VideoReader(input_video_path=str(_videos(tmp_path, moving_video))),
        FixedStrideExtractorStage(clip_len_s=2.0, clip_stride_s=2.0, min_clip_length_s=1.0, limit_clips=1),
        ClipTranscodingStage(num_cpus_per_worker=1.0, encoder="libx264"),
        ClipFrameExtractionStage(target_fps=[1.0], target_res=(32, 32)),
        BrightnessStage(weights_path=str(weights)),
    ]
    (task,) = Pipeline("custom_model", stages=stages).run(XennaExecutor())
    (clip,) = task.data.clips
    frames = next(iter(clip.extracted_frames.values()))
    assert clip.scores["brightness"] == pytest.approx(frames.mean() * 0.5)


def test_models_we_cannot_run_fail_at_build_naming_the_alternative(tmp_path):
    stage = CosmosEmbed1EmbeddingStage(model_dir="models/cosmos_embed1", variant="224p", gpu_memory_gb=20)
    with pytest.raises(ValueError, match="Cosmos-Embed1.*ClipEmbeddingStage"):
        Pipeline("embed", stages=[stage]).build()


def test_motion_thresholds_are_converted_to_our_unit():
    nemo = MotionFilterStage(global_mean_threshold=0.00098, per_patch_min_256_threshold=0.000001)
    (ours,) = nemo.decompose()
    assert ours.global_threshold == pytest.approx(0.00098 * 25 / np.hypot(16, 9))
    assert ours.patch_threshold == pytest.approx(0.000001 * 25 / np.hypot(16, 9))
