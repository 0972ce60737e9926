"""Executor overhead and scaling (issue: core engine). Prints figures; not a test.

(1) 2,000 tiny tasks through 3 no-op stages: per-task overhead, LocalExecutor vs RayExecutor streaming
    (stages take `--batch-size` tasks per block, since Ray Data pays ~25-50 ms per block).
(2) 200 tasks of ~50 ms CPU work: RayExecutor (2 workers) vs LocalExecutor, speed-up.
Ray start-up is reported separately. Run: .venv/bin/python benchmarks/executor_overhead.py
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass

from curator_core import LocalExecutor, Pipeline, ProcessingStage, RayExecutor, Resources
from curator_core.executors.ray import ensure_ray
from curator_core.tasks import Task


@dataclass
class NumTask(Task[int]):
    pass


@dataclass
class NoOp(ProcessingStage[NumTask, NumTask]):
    name: str = "noop"
    batch_size: int = 1
    resources: Resources = Resources(cpus=0.5)

    def process(self, task: NumTask) -> NumTask:
        return task


@dataclass
class BusyWork(ProcessingStage[NumTask, NumTask]):
    seconds: float = 0.05
    name: str = "busy"
    resources: Resources = Resources(cpus=1.0)

    def process(self, task: NumTask) -> NumTask:
        task.metadata["started"] = time.time()
        end = time.process_time() + self.seconds
        x = 0
        while time.process_time() < end:
            x += 1
        task.metadata["ended"] = time.time()
        return task


def tasks(n: int) -> list[NumTask]:
    return [NumTask(dataset_name="bench", data=i) for i in range(n)]


def timed(pipeline: Pipeline, executor, n: int) -> float:
    t0 = time.perf_counter()
    result = pipeline.execute(executor, tasks(n))
    assert len(result.outputs) == n and not result.failures
    return time.perf_counter() - t0


def busy_span(executor, n: int) -> tuple[float, float]:
    """(wall time of the run, time from the first task's start to the last task's end)."""
    t0 = time.perf_counter()
    result = Pipeline("busy", [BusyWork()]).execute(executor, tasks(n))
    wall = time.perf_counter() - t0
    assert len(result.outputs) == n and not result.failures
    started = min(t.metadata["started"] for t in result.outputs)
    ended = max(t.metadata["ended"] for t in result.outputs)
    return wall, ended - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=100)
    args = parser.parse_args()

    startup = ensure_ray(num_cpus=2)
    print(f"ray start-up: {startup:.2f} s")

    n = 2000
    noop = Pipeline("noop", [NoOp(name=f"noop_{i}", batch_size=args.batch_size) for i in range(3)])
    timed(noop, RayExecutor(), n)  # warm-up: worker processes, imports
    local = [timed(noop, LocalExecutor(), n) for _ in range(args.repeats)]
    ray_s = [timed(noop, RayExecutor(), n) for _ in range(args.repeats)]
    print(f"(1) {n} tasks x 3 no-op stages, batch_size={args.batch_size}, median of {args.repeats}:")
    print(f"    LocalExecutor          {statistics.median(local) / n * 1e3:7.3f} ms/task")
    print(f"    RayExecutor streaming  {statistics.median(ray_s) / n * 1e3:7.3f} ms/task (target <= 5)")

    m = 200
    busy_span(RayExecutor(max_workers_per_stage=2), 20)  # warm-up
    local_b = [busy_span(LocalExecutor(), m) for _ in range(args.repeats)]
    ray_b = [busy_span(RayExecutor(max_workers_per_stage=2), m) for _ in range(args.repeats)]
    lb = statistics.median(w for w, _ in local_b)
    rb = statistics.median(w for w, _ in ray_b)
    rb_work = statistics.median(s for _, s in ray_b)
    print(f"(2) {m} tasks x 50 ms CPU, median of {args.repeats}:")
    print(f"    LocalExecutor                       {lb:6.2f} s")
    print(f"    RayExecutor (2 workers), whole run  {rb:6.2f} s  -> speed-up {lb / rb:5.2f}x")
    print(
        f"    RayExecutor, first task to last     {rb_work:6.2f} s  -> speed-up {lb / rb_work:5.2f}x (target >= 1.7)"
    )
    print(f"    actor-pool start and drain          {rb - rb_work:6.2f} s per run")


if __name__ == "__main__":
    main()
