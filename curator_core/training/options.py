"""The knobs of shard export, declared once: the CLI flags (`curator export shards`) and the Dagster config
of the `training_shards` asset are derived from this model's fields, defaults and descriptions."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

GIB = 1 << 30


class ShardOptions(BaseModel):
    """Which clips of a batch become training samples, and how they are packed into shards."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_duration_s: float = Field(default=0.0, ge=0, description="shortest clip exported, seconds")
    max_duration_s: float | None = Field(default=None, gt=0, description="longest clip exported, seconds")
    min_motion: float | None = Field(
        default=None,
        ge=0,
        description="lowest mean motion exported (score motion_global_mean: fraction of the frame "
        "diagonal per frame); clips without the score are dropped when set",
    )
    min_aesthetic: float | None = Field(
        default=None,
        description="lowest aesthetic score exported (LAION scale, about 1-10); clips without it are "
        "dropped when set",
    )
    drop_duplicates: bool = Field(
        default=True, description="drop clips that `curator dedup` recorded as duplicates"
    )
    require_caption: bool = Field(
        default=True, description="export only captioned clips; every sample then has a .txt"
    )
    prefer_enhanced_caption: bool = Field(
        default=True, description="the .txt is the enhanced caption where one exists, else the VLM caption"
    )
    require_embedding: bool = Field(
        default=True, description="export only embedded clips; every sample then has a .npy"
    )
    embedding_model: str | None = Field(
        default=None, description="model id of the .npy embedding (default: the batch's first model)"
    )
    target_shard_bytes: int = Field(
        default=GIB,
        ge=1,
        description="shards stay under this size, bytes (a larger single clip gets a shard of its own)",
    )
    max_samples_per_shard: int = Field(default=100_000, ge=1, description="samples per shard at most")
