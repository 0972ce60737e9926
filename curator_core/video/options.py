"""The knobs of video curation, declared once: one model per pipeline section, with its defaults, units and
descriptions. `curator run`'s flags (`cli.add_model_arguments`) and the Dagster assets' run configuration
(`curator_assets.configs`) are derived from these fields, so the command line, the Launchpad and the core
cannot disagree on a default. A field's `flag` (json_schema_extra) is its command-line name where that is
shorter than the field's own.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


def _flag(name: str) -> dict:
    return {"flag": name}


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ReadingOptions(_Section):
    """Which files of the inputs are read."""

    limit_videos: int = Field(default=0, ge=0, description="read at most this many videos (0: all)")
    input_glob: str | None = Field(
        default=None,
        description="match this pattern under each input folder (e.g. '**/*.mov') instead of listing "
        "its video files",
        json_schema_extra=_flag("--glob"),
    )


class SplittingOptions(_Section):
    """Where clips are cut (seconds)."""

    splitting: Literal["shots", "fixed"] = Field(
        default="shots", description="'shots': at detected cuts; 'fixed': a fixed stride"
    )
    shot_detector: Literal["content", "hybrid", "transnetv2"] = Field(
        default="content",
        description="shots: 'content' (CPU rules), 'hybrid' (the rules, TransNetV2 judging their near "
        "misses) or 'transnetv2' (the model alone); the last two need the 'transnet' extra",
        json_schema_extra=_flag("--detector"),
    )
    clip_len_s: float = Field(
        default=10.0, gt=0, description="fixed: clip length, seconds", json_schema_extra=_flag("--clip-len")
    )
    clip_stride_s: float | None = Field(
        default=None,
        gt=0,
        description="fixed: stride, seconds (default: the clip length)",
        json_schema_extra=_flag("--clip-stride"),
    )
    min_clip_len_s: float = Field(
        default=2.0,
        ge=0,
        description="shortest clip kept, seconds",
        json_schema_extra=_flag("--min-clip-len"),
    )
    max_clip_len_s: float = Field(
        default=60.0,
        gt=0,
        description="shots: longest clip, seconds (longer shots are cut)",
        json_schema_extra=_flag("--max-clip-len"),
    )
    limit_clips: int = Field(default=0, ge=0, description="fixed: clips per video at most (0: all)")


class TranscodingOptions(_Section):
    """How each clip is encoded, and its preview."""

    encoder: str = Field(
        default="libx264", description="libx264, mpeg4, libvpx-vp9, libsvtav1, h264_nvenc..."
    )
    crf: int = Field(default=23, ge=0, le=63, description="constant rate factor (lower: better, larger)")
    preset: str = Field(default="veryfast", description="encoder speed preset")
    target_height: int | None = Field(
        default=None,
        gt=0,
        description="output height, pixels (default: the source's)",
        json_schema_extra=_flag("--height"),
    )
    target_fps: float | None = Field(
        default=None,
        gt=0,
        description="output frame rate (default: the source's)",
        json_schema_extra=_flag("--fps"),
    )
    include_audio: bool = Field(
        default=False, description="keep each clip's audio (AAC)", json_schema_extra=_flag("--audio")
    )
    smart_cut: bool = Field(
        default=True,
        description="where a source already has the output's codec, profile, size and frame rate, copy its "
        "packets between keyframes and re-encode only the frames around each cut",
    )
    previews: bool = Field(default=True, description="write an animated WebP preview per clip")


class MotionOptions(_Section):
    """The motion filter (scores in fractions of the frame diagonal per frame)."""

    motion_threshold: float = Field(
        default=0.0001, ge=0, description="lowest mean motion kept, fraction of the diagonal per frame"
    )
    motion_score_only: bool = Field(default=False, description="score motion but filter nothing")


class EmbeddingOptions(_Section):
    """open_clip clip embeddings, and the aesthetic score computed from them."""

    embed: bool = Field(default=False, description="add frame extraction + open_clip clip embeddings")
    embedding_model: str | None = Field(
        default=None, description="open_clip model id (default: models.json's 'embedding')"
    )
    aesthetic: Literal["off", "score", "filter"] = Field(
        default="off", description="aesthetic predictor on the embeddings: off, score, or filter"
    )
    aesthetic_threshold: float = Field(
        default=3.5, description="filter: lowest score kept (LAION scale, about 1-10)"
    )


class CaptioningOptions(_Section):
    """Captions by a vision-language model, optionally rewritten by a text LM."""

    caption: bool = Field(default=False, description="caption clips with a VLM")
    caption_model: str | None = Field(
        default=None, description="VLM model id (default: models.json's 'captioning')"
    )
    caption_prompt: str | None = Field(default=None, description="a custom prompt instead of the default one")
    caption_window_frames: int = Field(
        default=64,
        gt=0,
        description="frames per caption window, sampled at 2 fps",
        json_schema_extra=_flag("--caption-window"),
    )
    caption_max_new_tokens: int = Field(
        default=256,
        gt=0,
        description="longest caption, tokens",
        json_schema_extra=_flag("--caption-max-tokens"),
    )
    enhance_captions: bool = Field(
        default=False, description="rewrite captions with the 'caption_enhancement' LM"
    )


SECTIONS = (
    ReadingOptions,
    SplittingOptions,
    TranscodingOptions,
    MotionOptions,
    EmbeddingOptions,
    CaptioningOptions,
)


class CurationOptions(
    ReadingOptions, SplittingOptions, TranscodingOptions, MotionOptions, EmbeddingOptions, CaptioningOptions
):
    """Every knob of a curation run: the sections above, and where the models are."""

    model_dir: str | None = Field(
        default=None, description="model directory (default: $CURATOR_MODEL_DIR or ./models)"
    )


def section_fields(*sections: type[BaseModel], without: tuple[str, ...] = ()) -> dict:
    """(annotation, field) of the sections' fields, for pydantic.create_model (a derived config class)."""
    return {
        name: (field.annotation, field)
        for section in sections
        for name, field in section.model_fields.items()
        if name not in without
    }
