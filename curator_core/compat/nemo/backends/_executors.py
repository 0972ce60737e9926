"""NeMo's executors, both our RayExecutor: Xenna's and Ray Data's configuration keys are accepted; the
ones that have a meaning here are applied, the others noted once."""

from __future__ import annotations

from typing import Any

from curator_core.compat.nemo._video_stages import substitution
from curator_core.executors.ray import RayExecutor

APPLIED = {
    "execution_mode": "execution_mode",
    "num_cpus": "num_cpus",
    "max_workers_per_stage": "max_workers_per_stage",
}


class _NemoExecutor(RayExecutor):
    def __init__(self, config: dict[str, Any] | None = None, ignore_head_node: bool = False):
        config = dict(config or {})
        applied = {ours: config.pop(key) for key, ours in APPLIED.items() if key in config}
        super().__init__(**applied)
        for key in sorted(config):
            substitution(
                type(self).__name__, f"config key {key!r} has no counterpart in RayExecutor; ignored"
            )
        self.config = config


class XennaExecutor(_NemoExecutor):
    """NeMo's Cosmos-Xenna executor; here a RayExecutor (streaming Ray Data)."""


class RayDataExecutor(_NemoExecutor):
    """NeMo's Ray Data executor; here a RayExecutor."""
