"""A tiny engine demo: fan-out, filtering and a failing task through RayExecutor (used by `curator demo`)."""

from __future__ import annotations

from dataclasses import dataclass

from curator_core.executors.ray import RayExecutor
from curator_core.pipeline import Pipeline
from curator_core.resources import Resources
from curator_core.stage import ProcessingStage
from curator_core.tasks import Task


@dataclass
class TextTask(Task[str]):
    pass


@dataclass
class SplitWords(ProcessingStage[TextTask, TextTask]):
    name: str = "split_words"
    resources: Resources = Resources(cpus=0.5)

    def process(self, task: TextTask) -> list[TextTask]:
        return [TextTask(dataset_name=task.dataset_name, data=w) for w in task.data.split()]


@dataclass
class DropShort(ProcessingStage[TextTask, TextTask]):
    min_len: int = 4
    name: str = "drop_short"
    resources: Resources = Resources(cpus=0.5)

    def process(self, task: TextTask) -> TextTask | None:
        return task if len(task.data) >= self.min_len else None


def run_engine_demo(num_tasks: int = 8) -> dict:
    sentences = [f"sentence {i} flows through a streaming ray pipeline" for i in range(num_tasks)]
    pipeline = Pipeline("engine_demo", [SplitWords(), DropShort()], description="split, then filter words")
    result = pipeline.execute(RayExecutor(), [TextTask(dataset_name="demo", data=s) for s in sentences])
    return {
        "outputs": len(result.outputs),
        "failures": len(result.failures),
        "stages": {k: vars(v) for k, v in result.stage_stats.items()},
        "summary": pipeline.describe() + "\n\n" + result.summary(),
    }
