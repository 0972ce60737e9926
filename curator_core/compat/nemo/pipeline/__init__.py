"""`nemo_curator.pipeline`: NeMo's `Pipeline(name, description=None, stages=None, config=None)`."""

from __future__ import annotations

from typing import Any

from curator_core.compat.nemo._video_stages import substitution
from curator_core.pipeline import Pipeline as _Pipeline


class Pipeline(_Pipeline):
    def __init__(
        self,
        name: str,
        description: str | None = None,
        stages: list | None = None,
        config: dict[str, Any] | None = None,
    ):
        if isinstance(description, list):  # Pipeline(name, [stages]) as our own signature has it
            description, stages = None, description
        super().__init__(name, stages=stages, description=description)
        self.config = dict(config or {})

    def run(self, executor=None, initial_tasks=None, checkpoint_path=None):
        """NeMo's run: the last stage's outputs (the full report is in `last_result`)."""
        if checkpoint_path is not None:
            substitution(self.name, "checkpoint_path: resume is per step here (curator run / the assets)")
        return super().run(executor, initial_tasks)


__all__ = ["Pipeline"]
