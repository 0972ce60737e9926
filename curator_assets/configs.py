"""Run configuration of each asset (the Launchpad shows these with their defaults)."""

import dagster as dg
from pydantic import Field, create_model

from curator_core.training.options import ShardOptions
from curator_core.video.pipelines import SplitOptions


class ClipsConfig(dg.Config):
    """How videos become clips."""

    splitting: str = Field(default="shots", description="'shots' (at detected cuts) or 'fixed' (stride)")
    clip_len_s: float = Field(default=10.0, description="fixed: clip length, seconds")
    clip_stride_s: float | None = Field(
        default=None, description="fixed: stride, seconds (default: clip_len_s)"
    )
    min_clip_len_s: float = Field(default=1.0, description="shortest clip kept, seconds")
    max_clip_len_s: float = Field(default=60.0, description="shots: longest clip, seconds")
    encoder: str = Field(
        default="libx264", description="libx264, mpeg4, libvpx-vp9, libsvtav1, h264_nvenc..."
    )
    crf: int = 23
    preset: str = "veryfast"
    target_height: int | None = Field(default=None, description="output height, pixels (default: source)")
    include_audio: bool = False
    motion_threshold: float = Field(default=0.0001, description="mean motion, fraction of diagonal per frame")
    motion_score_only: bool = Field(default=False, description="score motion but filter nothing")

    def options(self) -> SplitOptions:
        return SplitOptions(
            splitting=self.splitting,
            clip_len_s=self.clip_len_s,
            clip_stride_s=self.clip_stride_s,
            min_clip_len_s=self.min_clip_len_s,
            max_clip_len_s=self.max_clip_len_s,
            encoder=self.encoder,
            crf=self.crf,
            preset=self.preset,
            target_height=self.target_height,
            include_audio=self.include_audio,
            motion_threshold=self.motion_threshold,
            motion_score_only=self.motion_score_only,
        )


class EmbeddingsConfig(dg.Config):
    model: str | None = Field(
        default=None, description="open_clip model id; default: models.json 'embedding'"
    )

    def options(self) -> SplitOptions:
        return SplitOptions(embed=True, embedding_model=self.model)


class CaptionsConfig(dg.Config):
    model: str | None = Field(default=None, description="VLM model id; default: models.json 'captioning'")
    prompt: str | None = Field(default=None, description="a custom prompt instead of the default")
    window_frames: int = Field(default=64, description="frames per caption window, sampled at 2 fps")
    max_new_tokens: int = 256
    enhance: bool = Field(default=False, description="rewrite captions with the 'caption_enhancement' LM")

    def options(self) -> SplitOptions:
        return SplitOptions(
            caption=True,
            caption_model=self.model,
            caption_prompt=self.prompt,
            caption_window_frames=self.window_frames,
            caption_max_new_tokens=self.max_new_tokens,
            enhance_captions=self.enhance,
        )


class _ShardsConfigBase(dg.Config):
    def options(self) -> ShardOptions:
        return ShardOptions(**self.model_dump())


# The knobs, defaults and descriptions are ShardOptions' own: declared once in curator_core.
TrainingShardsConfig = create_model(
    "TrainingShardsConfig",
    __base__=_ShardsConfigBase,
    __doc__="Which clips become training samples, and how they are packed into shards.",
    **{name: (f.annotation, f) for name, f in ShardOptions.model_fields.items()},
)
