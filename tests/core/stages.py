"""Small stages used by the engine tests (importable, so Ray workers can load them by reference)."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from curator_core import CompositeStage, ProcessingStage, Resources, WorkerMetadata
from curator_core.tasks import Task


@dataclass
class NumTask(Task[int]):
    pass


class AddStage(ProcessingStage[NumTask, NumTask]):
    """Property-style declaration."""

    def __init__(self, k: int, label: str | None = None):
        self.k = k
        self.label = label or f"add_{k}"

    @property
    def name(self) -> str:
        return self.label

    @property
    def resources(self) -> Resources:
        return Resources(cpus=1.0)

    def process(self, task: NumTask) -> NumTask:
        task.data += self.k
        return task


@dataclass
class FanOutFilterStage(ProcessingStage[NumTask, NumTask]):
    """Dataclass-style declaration: multiples of `drop_multiple` are filtered, others fan out."""

    fanout: int = 2
    drop_multiple: int = 5
    name: str = "fan_out_filter"
    resources: Resources = Resources(cpus=1.0)

    def process(self, task: NumTask) -> list[NumTask] | None:
        if task.data % self.drop_multiple == 0:
            return None
        return [NumTask(dataset_name=task.dataset_name, data=task.data * 10 + i) for i in range(self.fanout)]


@dataclass
class RaiseOnStage(ProcessingStage[NumTask, NumTask]):
    bad_value: int = 7
    name: str = "raise_on"
    batch_size: int = 4

    def process(self, task: NumTask) -> NumTask:
        if task.data == self.bad_value:
            raise ValueError(f"bad value {task.data}")
        return task


@dataclass
class BatchSquareStage(ProcessingStage[NumTask, NumTask]):
    """Has process_batch: records the batch sizes it saw."""

    name: str = "batch_square"
    batch_size: int = 8

    def process(self, task: NumTask) -> NumTask:
        return self.process_batch([task])[0]

    def process_batch(self, tasks: list[NumTask]) -> list[NumTask]:
        for t in tasks:
            t.data = t.data * t.data
            t.metadata["batch_len"] = len(tasks)
        return tasks


@dataclass
class DieOnceStage(ProcessingStage[NumTask, NumTask]):
    """Kills its worker process the first time it sees `victim`; a marker file makes the retry pass."""

    marker_dir: str = ""
    victim: int = 3
    name: str = "die_once"

    def process(self, task: NumTask) -> NumTask:
        marker = Path(self.marker_dir) / f"died-{task.data}"
        if task.data == self.victim and not marker.exists():
            marker.touch()
            os._exit(1)
        task.metadata["pid"] = os.getpid()
        return task


@dataclass
class DieOnceActorStage(DieOnceStage):
    """DieOnceStage with per-worker state, so it runs in an actor that Ray must restart."""

    name: str = "die_once_actor"

    def setup(self, worker_metadata: WorkerMetadata | None = None) -> None:
        self.pid = os.getpid()


HELD: list[bytearray] = []  # what FragmentingStage keeps, for the life of its worker


def _rss_anon_mib() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) / 1024 for line in status if line.startswith("RssAnon:"))


@dataclass
class FragmentingStage(ProcessingStage[NumTask, NumTask]):
    """Allocates `megabytes` in 64 KiB pieces and frees all but one in 16 (as decoding frames and
    encoding clips leave the heap), noting its worker's RssAnon (MiB) when the task starts."""

    megabytes: int = 256
    name: str = "fragmenting"

    def process(self, task: NumTask) -> NumTask:
        task.metadata["pid"] = os.getpid()
        task.metadata["anon_mib_at_start"] = _rss_anon_mib()
        pieces = [bytearray(64 << 10) for _ in range(self.megabytes * 16)]
        HELD.extend(pieces[15::16])  # the last piece is kept: the heap cannot shrink from its top
        return task


@dataclass
class SetupRecorderStage(ProcessingStage[NumTask, NumTask]):
    """Counts setup calls (per worker) and setup_on_node calls (files in `record_dir`)."""

    record_dir: str = ""
    name: str = "setup_recorder"

    def setup_on_node(self, node_info, worker_metadata=None) -> None:
        (Path(self.record_dir) / f"node-{node_info.node_id}-{time.time_ns()}").touch()

    def setup(self, worker_metadata: WorkerMetadata | None = None) -> None:
        self.worker = worker_metadata.worker_id if worker_metadata else "none"
        self.ready = True

    def process(self, task: NumTask) -> NumTask:
        assert self.ready, "process called before setup"
        task.metadata["worker"] = self.worker
        return task


class AddTwiceComposite(CompositeStage[NumTask, NumTask]):
    """A composite holding another composite: decomposes to add_1, add_2, add_3."""

    def decompose(self):
        return [AddStage(1), _Inner()]


class _Inner(CompositeStage[NumTask, NumTask]):
    def decompose(self):
        return [AddStage(2), AddStage(3)]


@dataclass
class SleepStage(ProcessingStage[NumTask, NumTask]):
    """A task that takes a known time without using the CPU; it records when it slept (wall clock)."""

    seconds: float = 1.0
    name: str = "sleep"
    resources: Resources = Resources(cpus=1.0)

    def process(self, task: NumTask) -> NumTask:
        start = time.time()
        time.sleep(self.seconds)
        task.metadata["slept"] = (start, time.time())
        return task


class NemoStyleStage(ProcessingStage[NumTask, NumTask]):
    """Written as NeMo Curator users write stages: name and resources assigned in `__init__`, a batch
    method that returns None for filtered inputs and lists for fan-out, no annotations, no flags."""

    def __init__(self, drop_multiple: int = 3):
        self.name = "nemo_style"
        self.resources = Resources(cpus=0.5)
        self.batch_size = 4
        self.drop_multiple = drop_multiple
        self.seen: list[int] = []

    def inputs(self):
        return ["data"], []

    def process(self, task):
        raise AssertionError("process_batch is the stage's entry point")

    def process_batch(self, tasks):
        out = []
        for task in tasks:
            if task.data % self.drop_multiple == 0:
                out.append(None)
            elif task.data % 2 == 0:
                out.append(
                    [NumTask(dataset_name=task.dataset_name, data=task.data * 10 + i) for i in range(2)]
                )
            else:
                out.append(task)
        return out


@dataclass
class PostInitNamedStage(ProcessingStage[NumTask, NumTask]):
    """NeMo's own stages set name and resources in `__post_init__`."""

    cpus: float = 0.25

    def __post_init__(self) -> None:
        self.name = "post_init_named"
        self.resources = Resources(cpus=self.cpus)

    def process(self, task: NumTask) -> NumTask:
        return task


class UnflaggedFanOut(ProcessingStage[NumTask, NumTask]):
    """Fans out by returning a list, with neither a `fans_out` flag nor a return annotation."""

    def __init__(self, fanout: int = 8):
        self.fanout = fanout

    def process(self, task):
        return [NumTask(dataset_name=task.dataset_name, data=i) for i in range(self.fanout)]


@dataclass
class PidStage(ProcessingStage[NumTask, NumTask]):
    """Sleeps, then records which worker process ran the task."""

    seconds: float = 0.5
    name: str = "pid"

    def process(self, task):
        time.sleep(self.seconds)
        task.metadata["pid"] = os.getpid()
        return task


@dataclass
class CrashOnSourceStage(ProcessingStage):
    """SIGKILLs its own worker process (as a native crash or the OOM killer would) on every attempt at a
    video whose path contains `victim`; passes the others on."""

    victim: str = "crash"
    name: str = "crash_on_source"

    def process(self, task):
        if self.victim in task.data.input_path:
            os.kill(os.getpid(), signal.SIGKILL)
        return task


@dataclass
class NodesAtStartStage(ProcessingStage[NumTask, NumTask]):
    """Fans one task out into `fanout`, noting on each which Ray nodes were alive then and their CPUs, and touches
    `started` (a path) so that a test can act once the run is under way."""

    fanout: int = 12
    started: str = ""
    name: str = "nodes_at_start"
    fans_out: ClassVar[bool] = True
    resources: Resources = Resources(cpus=1.0)

    def process(self, task: NumTask) -> list[NumTask]:
        import ray

        alive = sorted(n["NodeID"] for n in ray.nodes() if n["Alive"])
        cpus = ray.cluster_resources().get("CPU", 0.0)
        children = [NumTask(dataset_name=task.dataset_name, data=i) for i in range(self.fanout)]
        for child in children:
            child.metadata[self.name] = {"alive": alive, "cpus": cpus}
        Path(self.started).touch()
        return children


@dataclass
class NodeRecorderStage(ProcessingStage[NumTask, NumTask]):
    """Notes the Ray node each task ran on, under its own name."""

    name: str = "node_recorder"
    resources: Resources = Resources(cpus=1.0)

    def process(self, task: NumTask) -> NumTask:
        import ray

        task.metadata[self.name] = ray.get_runtime_context().get_node_id()
        return task
