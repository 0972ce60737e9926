"""Pipeline: an ordered list of stages, decomposed and validated before anything runs."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from curator_core.executors.base import Executor, RunResult
from curator_core.stage import ProcessingStage, expand_stages
from curator_core.tasks import EmptyTask, Task


class PipelineValidationError(ValueError):
    """A stage needs an attribute that no earlier stage produces and the initial tasks do not carry."""


class Pipeline:
    """`Pipeline(name, stages)`, `Pipeline(name, stages=..., description=...)`, or NeMo Curator's
    `Pipeline(name, description)` followed by `add_stage` calls."""

    def __init__(
        self,
        name: str,
        stages: list[ProcessingStage] | str | None = None,
        description: str | None = None,
    ):
        if isinstance(stages, str):  # Pipeline("name", "description")
            if description is not None:
                raise TypeError("Pipeline: the description was given twice (positionally and by name)")
            stages, description = None, stages
        self.name = name
        self.description = description or ""
        self.stages: list[ProcessingStage] = []
        for stage in stages or []:
            self.add_stage(stage)
        self.last_result: RunResult | None = None

    def add_stage(self, stage: ProcessingStage) -> Pipeline:
        if not isinstance(stage, ProcessingStage):
            raise TypeError(
                f"pipeline {self.name!r}: add_stage takes a ProcessingStage (or CompositeStage) instance, got "
                f"{type(stage).__name__}: {stage!r}"
            )
        self.stages.append(stage)
        return self

    def build(self, initial_tasks: list[Task] | None = None) -> list[ProcessingStage]:
        """Decompose composites and check every stage's inputs against what is available upstream."""
        if not self.stages:
            raise PipelineValidationError(f"pipeline {self.name!r} has no stages")
        stages = expand_stages(self.stages)
        names = [s.name for s in stages]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise PipelineValidationError(
                f"pipeline {self.name!r}: stage names must be unique, repeated: {duplicates} "
                "(rename one with stage.with_(name=...))"
            )
        task_attrs, data_attrs = _carried_attributes(initial_tasks or [self._seed_task()])
        task_attrs |= TASK_FIELDS  # every task has these, set or not
        for index, stage in enumerate(stages):
            need_task, need_data = stage.inputs()
            missing = [f"task.{a}" for a in need_task if a not in task_attrs]
            missing += [f"data.{a}" for a in need_data if a not in data_attrs]
            if missing:
                raise PipelineValidationError(_missing_message(stage, index, missing, stages))
            made_task, made_data = stage.outputs()
            task_attrs |= set(made_task)
            data_attrs |= set(made_data)
        return stages

    def describe(self) -> str:
        stages = expand_stages(self.stages)
        rows = [("stage", "resources", "batch", "inputs", "outputs")]
        for stage in stages:
            rows.append(
                (
                    stage.name,
                    stage.resources.describe(),
                    str(stage.batch_size),
                    _fmt_attrs(stage.inputs()),
                    _fmt_attrs(stage.outputs()),
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = [f"Pipeline {self.name}" + (f": {self.description}" if self.description else "")]
        for i, row in enumerate(rows):
            lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
            if i == 0:
                lines.append("  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def execute(self, executor: Executor | None = None, initial_tasks: list[Task] | None = None) -> RunResult:
        """Run and return the full result: outputs, failed tasks and per-stage counts."""
        tasks = list(initial_tasks) if initial_tasks else [self._seed_task()]
        stages = self.build(tasks)
        for index, task in enumerate(tasks):
            if not task.task_id:
                task.task_id = str(index)
        if executor is None:
            from curator_core.executors.ray import RayExecutor

            executor = RayExecutor()
        self.last_result = executor.execute(stages, tasks)
        return self.last_result

    def run(self, executor: Executor | None = None, initial_tasks: list[Task] | None = None) -> list[Task]:
        """Run and return the last stage's outputs; the full report is in `self.last_result`."""
        return self.execute(executor, initial_tasks).outputs

    def _seed_task(self) -> Task:
        return EmptyTask(dataset_name=self.name)


TASK_FIELDS = frozenset(f.name for f in dataclasses.fields(Task))


def _missing_message(
    stage: ProcessingStage, index: int, missing: list[str], stages: list[ProcessingStage]
) -> str:
    """What a stage lacks, and which stages could provide it: none upstream declares it in `outputs()`
    and the initial tasks do not carry it; later stages that do are named (an ordering mistake)."""
    lines = [
        f"stage {stage.name!r} (#{index}) needs {', '.join(missing)}: no stage before it declares "
        f"{'it' if len(missing) == 1 else 'them'} in outputs() and the initial tasks do not carry "
        f"{'it' if len(missing) == 1 else 'them'}"
    ]
    for attr in missing:
        kind, _, name = attr.partition(".")
        later = [s.name for s in stages[index + 1 :] if name in s.outputs()[0 if kind == "task" else 1]]
        if later:
            lines.append(f"{attr} is produced by {', '.join(later)}, which run after it")
    lines.append(
        "Put a stage that outputs it first, pass initial tasks that carry it, or drop it from inputs()"
    )
    return "; ".join(lines)


def _carried_attributes(tasks: Iterable[Task]) -> tuple[set[str], set[str]]:
    """Attributes the initial tasks actually carry: set to something other than None or empty."""
    task_attrs: set[str] = set()
    data_attrs: set[str] = set()
    for task in tasks:
        task_attrs |= {k for k, v in _attributes(task).items() if _is_set(v)}
        if task.data is not None:
            data_attrs |= {k for k, v in _attributes(task.data).items() if _is_set(v)}
    return task_attrs, data_attrs


def _attributes(obj: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(obj):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    return dict(getattr(obj, "__dict__", {}))


def _is_set(value: Any) -> bool:
    if value is None:
        return False
    try:
        return len(value) > 0
    except TypeError:
        return True


def _fmt_attrs(spec: tuple[list[str], list[str]]) -> str:
    task_attrs, data_attrs = spec
    parts = [f"task.{a}" for a in task_attrs] + [f"data.{a}" for a in data_attrs]
    return ", ".join(parts) or "-"
