"""Run configuration of each asset (the Launchpad shows these with their defaults)."""

import dagster as dg
from pydantic import create_model

from curator_core.training.options import ShardOptions
from curator_core.video.options import (
    CaptioningOptions,
    CurationOptions,
    EmbeddingOptions,
    MotionOptions,
    ReadingOptions,
    SplittingOptions,
    TranscodingOptions,
    section_fields,
)


class _ClipsConfigBase(dg.Config):
    def options(self) -> CurationOptions:
        return CurationOptions(**self.model_dump())


class _EmbeddingsConfigBase(dg.Config):
    def options(self) -> CurationOptions:
        return CurationOptions(embed=True, **self.model_dump())


class _CaptionsConfigBase(dg.Config):
    def options(self) -> CurationOptions:
        return CurationOptions(caption=True, **self.model_dump())


# The knobs, defaults and descriptions are the curator_core sections' own (curator_core.video.options): the
# Launchpad, `curator run` and the core cannot disagree on a default.
ClipsConfig = create_model(
    "ClipsConfig",
    __base__=_ClipsConfigBase,
    __doc__="How videos become clips: reading, splitting, transcoding, the motion filter.",
    **section_fields(ReadingOptions, SplittingOptions, TranscodingOptions, MotionOptions),
)
EmbeddingsConfig = create_model(
    "EmbeddingsConfig",
    __base__=_EmbeddingsConfigBase,
    __doc__="Which model embeds the kept clips, and the aesthetic score computed from the embeddings.",
    **section_fields(EmbeddingOptions, without=("embed",)),
)
CaptionsConfig = create_model(
    "CaptionsConfig",
    __base__=_CaptionsConfigBase,
    __doc__="Which model captions the kept clips, with which prompt, window and length.",
    **section_fields(CaptioningOptions, without=("caption",)),
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
