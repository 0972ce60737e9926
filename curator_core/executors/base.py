"""What every executor shares: running one stage over a list of tasks, and the run report.

Executors differ only in where `StageRunner.run` is called (in-process, or inside Ray actors).
Items flowing between stages are tasks, plus the bookkeeping records `FailedTask` and `StageStats`,
which stages pass through untouched so that the report reaches the end of the pipeline.
"""

from __future__ import annotations

import logging
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from curator_core.stage import ProcessingStage, WorkerMetadata
from curator_core.tasks import FailedTask, StagePerf, Task

logger = logging.getLogger(__name__)


@dataclass
class StageStats:
    """Counts and time of one stage (merged over all its workers)."""

    stage: str
    tasks_in: int = 0
    tasks_out: int = 0
    filtered: int = 0
    failed: int = 0
    process_time_s: float = 0.0
    # Actor processes the stage's pool started (Ray executor; 0 for a stage run as tasks). Far more than
    # the pool ever held at once means actors were started and torn down again, each paying its setup.
    actors_started: int = 0

    def merge(self, other: StageStats) -> None:
        self.tasks_in += other.tasks_in
        self.tasks_out += other.tasks_out
        self.filtered += other.filtered
        self.failed += other.failed
        self.process_time_s += other.process_time_s
        self.actors_started += other.actors_started


@dataclass
class RunResult:
    """What a run returns: the last stage's outputs, the failed tasks, and per-stage counts."""

    outputs: list[Task]
    failures: list[FailedTask] = field(default_factory=list)
    stage_stats: dict[str, StageStats] = field(default_factory=dict)
    wall_time_s: float = 0.0
    startup_time_s: float = 0.0
    faults: dict[str, int] = field(default_factory=dict)  # nodes lost, actors restarted, tasks retried, lost

    def summary(self) -> str:
        lines = [f"{'stage':<32} {'in':>7} {'out':>7} {'filtered':>8} {'failed':>6} {'time_s':>8}"]
        for s in self.stage_stats.values():
            lines.append(
                f"{s.stage:<32} {s.tasks_in:>7} {s.tasks_out:>7} {s.filtered:>8} {s.failed:>6} {s.process_time_s:>8.2f}"
            )
        lines.append(
            f"outputs={len(self.outputs)} failures={len(self.failures)} wall={self.wall_time_s:.2f}s"
        )
        return "\n".join(lines)


def collect(
    items: list[Any], stage_names: list[str], wall_time_s: float, startup_time_s: float = 0.0
) -> RunResult:
    """Split the items that left the last stage into outputs, failures and merged stats."""
    stats = {name: StageStats(name) for name in stage_names}
    outputs: list[Task] = []
    failures: list[FailedTask] = []
    for item in items:
        if isinstance(item, StageStats):
            stats.setdefault(item.stage, StageStats(item.stage)).merge(item)
        elif isinstance(item, FailedTask):
            failures.append(item)
        else:
            outputs.append(item)
    outputs.sort(key=lambda t: _id_sort_key(t.task_id))
    failures.sort(key=lambda f: (f.stage, _id_sort_key(f.task_id)))
    for failure in failures:
        logger.warning("task failed: %s", failure)
    return RunResult(outputs, failures, stats, wall_time_s, startup_time_s)


def _id_sort_key(task_id: str) -> tuple:
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in task_id.split("."))


class StageRunner:
    """Runs one stage on batches of items in whatever process holds it.

    Owns the semantics every executor must agree on: task ids, filtering, fan-out, per-task failure
    isolation and the per-stage stats record.
    """

    def __init__(self, stage: ProcessingStage, worker_metadata: WorkerMetadata | None = None):
        self.stage = stage
        self.name = stage.name
        self.batch_size = max(1, int(stage.batch_size))
        self.worker_id = worker_metadata.worker_id if worker_metadata else "local"

    def run(self, items: list[Any]) -> list[Any]:
        """Process the tasks among `items`; pass failures and stats of earlier stages through."""
        out: list[Any] = []
        tasks: list[Task] = []
        for item in items:
            (tasks if isinstance(item, Task) else out).append(item)
        stats = StageStats(self.name, tasks_in=len(tasks))
        for start in range(0, len(tasks), self.batch_size):
            chunk = tasks[start : start + self.batch_size]
            t0 = time.perf_counter()
            groups, failed = self._run_chunk(chunk)
            elapsed = time.perf_counter() - t0
            for parents, produced in groups:
                self._assign_ids(parents, produced)
                self._stamp(parents, produced, elapsed * len(parents) / len(chunk))
                stats.tasks_out += len(produced)
                stats.filtered += max(0, len(parents) - len(produced)) if len(parents) > 1 else not produced
                out.extend(produced)
            stats.process_time_s += elapsed
            stats.failed += len(failed)
            out.extend(failed)
        out.append(stats)
        return out

    def _run_chunk(self, chunk: list[Task]) -> tuple[list[tuple[list[Task], list[Task]]], list[FailedTask]]:
        """(inputs, the outputs made from them) groups, and the failures. A batch that raises is run
        again one task at a time, so that only the failing task is lost."""
        if len(chunk) > 1:
            try:
                return self._call(chunk), []
            except Exception:  # isolate the failing task(s) by running each alone
                logger.info(
                    "stage %s: a batch of %d raised; retrying one task at a time", self.name, len(chunk)
                )
        groups: list[tuple[list[Task], list[Task]]] = []
        failed: list[FailedTask] = []
        for task in chunk:
            try:
                groups += self._call([task])
            except Exception as exc:  # noqa: BLE001 - every error becomes a failed-task record
                failed.append(self._failure(task, exc))
        return groups, failed

    def _call(self, chunk: list[Task]) -> list[tuple[list[Task], list[Task]]]:
        """Run the stage on `chunk`. Results per input (a task, a list, or None for filtered) keep each
        output with its input; a batch method's flat list of another length is one group for the chunk."""
        if self.stage.has_batch_method():
            results = list(self.stage.process_batch(chunk))
        else:
            results = [self.stage.process(task) for task in chunk]
        if len(results) == len(chunk):
            return [([task], self._outputs(result)) for task, result in zip(chunk, results, strict=True)]
        flat = [task for result in results for task in self._outputs(result)]
        return [(chunk, flat)]

    def _outputs(self, result: Any) -> list[Task]:
        outputs = [] if result is None else list(result) if isinstance(result, list | tuple) else [result]
        outputs = [task for task in outputs if task is not None]
        wrong = [type(t).__name__ for t in outputs if not isinstance(t, Task)]
        if wrong:
            raise TypeError(
                f"stage {self.name!r} returned {', '.join(sorted(set(wrong)))} where a Task (or a list of "
                "Tasks, or None for filtered) is expected"
            )
        return outputs

    def _failure(self, task: Task, exc: BaseException) -> FailedTask:
        return FailedTask(
            stage=self.name,
            task_id=task.task_id,
            dataset_name=task.dataset_name,
            error_type=type(exc).__name__,
            message=str(exc),
            traceback=traceback.format_exc(),
            task=task,
        )

    @staticmethod
    def _assign_ids(parents: list[Task], children: list[Task]) -> None:
        """Children inherit their parent's id; fan-out appends `.n`. Deterministic for a given input."""
        if len(parents) == 1:
            parent = parents[0]
            if len(children) == 1:
                children[0].task_id = parent.task_id
            else:
                for i, child in enumerate(children):
                    child.task_id = f"{parent.task_id}.{i}"
            return
        parent_ids = {id(p) for p in parents}
        if len(children) == len(parents):
            for parent, child in zip(parents, children, strict=True):
                if id(child) not in parent_ids:
                    child.task_id = parent.task_id
            return
        for i, child in enumerate(children):
            if id(child) not in parent_ids:
                child.task_id = f"{parents[0].task_id}.b{i}"

    def _stamp(self, parents: list[Task], children: list[Task], elapsed: float) -> None:
        if not children:
            return
        perf = StagePerf(
            stage=self.name,
            process_time_s=elapsed / max(1, len(parents)),
            worker_id=self.worker_id,
            num_items_in=len(parents),
            num_items_out=len(children),
        )
        history = parents[0].stage_perf if len(parents) == 1 else []
        for child in children:
            if not child.stage_perf and history:
                child.stage_perf = list(history)
            child.stage_perf.append(perf)


class Executor(ABC):
    """Runs built (already decomposed and validated) stages over initial tasks.

    on_output: called in the driver with each task that leaves the last stage, as soon as it arrives
    (progress reporting; `curator_core.progress.Progress.update` fits).
    """

    on_output: Callable[[Task], None] | None = None

    def _emit(self, items: Iterable[Any]) -> None:
        if self.on_output is not None:
            for item in items:
                if isinstance(item, Task):
                    self.on_output(item)

    @abstractmethod
    def execute(self, stages: list[ProcessingStage], initial_tasks: list[Task]) -> RunResult: ...
