"""LocalExecutor: every stage in this process, one after another. For debugging and stage tests."""

from __future__ import annotations

import os
import time

from curator_core.executors.base import Executor, RunResult, StageRunner, collect
from curator_core.stage import NodeInfo, ProcessingStage, WorkerMetadata
from curator_core.tasks import Task


class LocalExecutor(Executor):
    """Same semantics as RayExecutor (ids, filtering, failures, stats), no parallelism."""

    def execute(self, stages: list[ProcessingStage], initial_tasks: list[Task]) -> RunResult:
        t0 = time.perf_counter()
        items: list = list(initial_tasks)
        metadata = WorkerMetadata(worker_id=f"local-{os.getpid()}", num_cpus=float(os.cpu_count() or 1))
        for stage in stages:
            stage.setup_on_node(NodeInfo(), metadata)
            stage.setup(metadata)
            try:
                items = StageRunner(stage, metadata).run(items)
            finally:
                stage.teardown()
        self._emit(items)
        return collect(items, [s.name for s in stages], time.perf_counter() - t0)
