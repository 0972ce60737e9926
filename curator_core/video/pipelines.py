"""Ready-made pipelines built from the video stages."""

from __future__ import annotations

from curator_core.models import registry
from curator_core.pipeline import Pipeline
from curator_core.stage import ProcessingStage
from curator_core.tasks import FrameKey
from curator_core.video.captioning import (
    CAPTION_FRAME_KEY,
    CaptionEnhancementStage,
    CaptionGenerationStage,
    CaptionPreparationStage,
)
from curator_core.video.embedding import ClipEmbeddingStage
from curator_core.video.filtering import AestheticFilterStage
from curator_core.video.frames import ClipFrameExtractionStage
from curator_core.video.motion import MotionFilterStage
from curator_core.video.options import CurationOptions
from curator_core.video.preview import PreviewStage
from curator_core.video.reader import VideoReader
from curator_core.video.results import DropWorkerDataStage
from curator_core.video.shots import DETECTORS
from curator_core.video.splitting import FixedStrideSplittingStage, ShotSplittingStage
from curator_core.video.transcoding import ClipTranscodingStage
from curator_core.video.writer import ClipWriterStage

EMBED_FRAME_KEY = FrameKey(fps=1.0, height=224, width=224)


def split_pipeline(
    inputs: list[str],
    output_root: str,
    options: CurationOptions | None = None,
    last_stage: ProcessingStage | None = None,
    after_read: ProcessingStage | None = None,
) -> Pipeline:
    """read -> split -> transcode -> motion score/filter -> preview -> write. `last_stage`: what the
    written tasks go through before they leave the workers (default: drop their media and frames).
    `after_read`: a stage between probing and splitting (the clips step's store.reuse)."""
    o = options or CurationOptions()
    if o.splitting == "fixed":
        splitter = FixedStrideSplittingStage(
            clip_len_s=o.clip_len_s,
            clip_stride_s=o.clip_stride_s or o.clip_len_s,
            min_clip_length_s=o.min_clip_len_s,
            limit_clips=o.limit_clips,
        )
    elif o.splitting == "shots":
        splitter = ShotSplittingStage(
            min_length_s=o.min_clip_len_s,
            max_length_s=o.max_clip_len_s,
            detector=DETECTORS[o.shot_detector](),
        )
    else:
        raise ValueError(f"splitting must be 'fixed' or 'shots', got {o.splitting!r}")
    stages = [
        VideoReader(inputs, limit=o.limit_videos, glob=o.input_glob),
        *([after_read] if after_read else []),
        splitter,
        ClipTranscodingStage(
            encoder=o.encoder,
            crf=o.crf,
            preset=o.preset,
            target_height=o.target_height,
            target_fps=o.target_fps,
            include_audio=o.include_audio,
            smart_cut=o.smart_cut,
        ),
        MotionFilterStage(global_threshold=o.motion_threshold, score_only=o.motion_score_only),
    ]
    if o.previews:
        stages.append(PreviewStage())
    if o.embed:
        stages += embedding_stages(o)
    if o.caption:
        stages += caption_stages(o)
    stages += [ClipWriterStage(output_root=output_root), last_stage or DropWorkerDataStage()]
    return Pipeline(
        "split_transcode", stages, description="read, split, transcode, motion filter, preview, write"
    )


def embedding_stages(o: CurationOptions) -> list:
    """frames at 1 fps, 224 px -> open_clip clip embeddings (-> aesthetic scores or filter)."""
    # Model ids and the model directory are resolved here, on the driver: workers may run elsewhere,
    # with another working directory.
    directory = registry.location(o.model_dir)
    stages = [
        ClipFrameExtractionStage(keys=[EMBED_FRAME_KEY]),
        ClipEmbeddingStage(
            model=o.embedding_model or registry.configured("embedding", directory),
            model_dir=directory,
            frame_key=EMBED_FRAME_KEY,
        ),
    ]
    if o.aesthetic != "off":
        stages.append(
            AestheticFilterStage(
                threshold=o.aesthetic_threshold,
                score_only=o.aesthetic == "score",
                model=registry.configured("aesthetic", directory),
                model_dir=directory,
            )
        )
    return stages


def caption_stages(o: CurationOptions) -> list:
    """frames at 2 fps -> caption windows -> VLM captions (-> enhanced captions)."""
    directory = registry.location(o.model_dir)
    stages = [
        ClipFrameExtractionStage(keys=[CAPTION_FRAME_KEY]),
        CaptionPreparationStage(window_size=o.caption_window_frames, prompt=o.caption_prompt),
        CaptionGenerationStage(
            model=o.caption_model or registry.configured("captioning", directory),
            model_dir=directory,
            max_new_tokens=o.caption_max_new_tokens,
        ),
    ]
    if o.enhance_captions:
        stages.append(
            CaptionEnhancementStage(
                model=registry.configured("caption_enhancement", directory),
                model_dir=directory,
                max_new_tokens=o.caption_max_new_tokens,
            )
        )
    return stages
