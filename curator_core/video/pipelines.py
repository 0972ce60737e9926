"""Ready-made pipelines built from the video stages."""

from __future__ import annotations

from dataclasses import dataclass

from curator_core.models import registry
from curator_core.pipeline import Pipeline
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
from curator_core.video.preview import PreviewStage
from curator_core.video.reader import VideoReader
from curator_core.video.splitting import FixedStrideSplittingStage, ShotSplittingStage
from curator_core.video.transcoding import ClipTranscodingStage
from curator_core.video.writer import ClipWriterStage

EMBED_FRAME_KEY = FrameKey(fps=1.0, height=224, width=224)


@dataclass
class SplitOptions:
    """The knobs of the standalone split-and-transcode pipeline (seconds unless named otherwise)."""

    splitting: str = "shots"  # "fixed" | "shots"
    clip_len_s: float = 10.0
    clip_stride_s: float | None = None  # default: clip_len_s
    min_clip_len_s: float = 2.0
    max_clip_len_s: float = 60.0
    limit_clips: int = 0
    encoder: str = "libx264"
    crf: int = 23
    preset: str = "veryfast"
    target_height: int | None = None
    target_fps: float | None = None
    include_audio: bool = False
    motion_threshold: float = 0.0001
    motion_score_only: bool = False
    previews: bool = True
    limit_videos: int = 0
    input_glob: str | None = None  # match this pattern under each input folder (e.g. "**/*.mov")
    embed: bool = False  # add frame extraction + open_clip clip embeddings
    embedding_model: str | None = None  # model id; None: the "embedding" model of models.json
    model_dir: str | None = None
    aesthetic: str = "off"  # "off" | "score" | "filter" (needs embed)
    aesthetic_threshold: float = 3.5
    caption: bool = False  # add caption windows + VLM captions
    caption_model: str | None = None  # model id; None: the "captioning" model of models.json
    caption_window_frames: int = 64  # frames per caption window, sampled at 2 fps
    caption_prompt: str | None = None  # a custom prompt instead of the default one
    caption_max_new_tokens: int = 256
    enhance_captions: bool = False  # rewrite captions with the "caption_enhancement" text LM


def split_pipeline(inputs: list[str], output_root: str, options: SplitOptions | None = None) -> Pipeline:
    """read -> split -> transcode -> motion score/filter -> preview -> write."""
    o = options or SplitOptions()
    if o.splitting == "fixed":
        splitter = FixedStrideSplittingStage(
            clip_len_s=o.clip_len_s,
            clip_stride_s=o.clip_stride_s or o.clip_len_s,
            min_clip_length_s=o.min_clip_len_s,
            limit_clips=o.limit_clips,
        )
    elif o.splitting == "shots":
        splitter = ShotSplittingStage(min_length_s=o.min_clip_len_s, max_length_s=o.max_clip_len_s)
    else:
        raise ValueError(f"splitting must be 'fixed' or 'shots', got {o.splitting!r}")
    stages = [
        VideoReader(inputs, limit=o.limit_videos, glob=o.input_glob),
        splitter,
        ClipTranscodingStage(
            encoder=o.encoder,
            crf=o.crf,
            preset=o.preset,
            target_height=o.target_height,
            target_fps=o.target_fps,
            include_audio=o.include_audio,
        ),
        MotionFilterStage(global_threshold=o.motion_threshold, score_only=o.motion_score_only),
    ]
    if o.previews:
        stages.append(PreviewStage())
    if o.embed:
        stages += embedding_stages(o)
    if o.caption:
        stages += caption_stages(o)
    stages.append(ClipWriterStage(output_root=output_root))
    return Pipeline(
        "split_transcode", stages, description="read, split, transcode, motion filter, preview, write"
    )


def embedding_stages(o: SplitOptions) -> list:
    """frames at 1 fps, 224 px -> open_clip clip embeddings (-> aesthetic scores or filter)."""
    # Model ids and the model directory are resolved here, on the driver: workers may run elsewhere,
    # with another working directory.
    directory = str(registry.model_dir(o.model_dir))
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


def caption_stages(o: SplitOptions) -> list:
    """frames at 2 fps -> caption windows -> VLM captions (-> enhanced captions)."""
    directory = str(registry.model_dir(o.model_dir))
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
