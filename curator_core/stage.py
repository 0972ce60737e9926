"""Stages: the unit of work of a pipeline, and composites that expand into several stages.

A stage declares what it needs (`inputs`) and what it makes (`outputs`) as attribute names of the
task and of its `data`; `Pipeline.build` checks these declarations so they cannot drift into lies.
`name`, `resources` and `batch_size` may be properties or plain class attributes / dataclass fields.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from curator_core.resources import Resources
from curator_core.tasks import Task

X = TypeVar("X", bound=Task)
Y = TypeVar("Y", bound=Task)


@dataclass(frozen=True)
class NodeInfo:
    """The machine a worker runs on."""

    node_id: str = "local"


@dataclass(frozen=True)
class WorkerMetadata:
    """Who is running a stage: passed to `setup` so a stage can size thread pools or pick a device."""

    worker_id: str = "local"
    node_id: str = "local"
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    gpu_ids: tuple[int, ...] = field(default_factory=tuple)


class ProcessingStage(ABC, Generic[X, Y]):
    """Turns a task of type X into zero, one or many tasks of type Y.

    `process` returns a task (1:1), a list (fan-out; an empty list filters), or None (filtered).
    Stages that gain from batching (models) also define `process_batch`, which receives up to
    `batch_size` tasks at once and returns the outputs of all of them.
    """

    @property
    def name(self) -> str:
        return type(self).__name__

    @property
    def resources(self) -> Resources:
        return Resources()

    @property
    def batch_size(self) -> int:
        return 1

    # True for stages that turn one task into many (listing files, cutting a video into segments): the
    # Ray executor then re-blocks their outputs so the new tasks spread over the next stage's workers.
    fans_out: bool = False

    def inputs(self) -> tuple[list[str], list[str]]:
        """(task attributes, data attributes) this stage reads."""
        return [], []

    def outputs(self) -> tuple[list[str], list[str]]:
        """(task attributes, data attributes) this stage writes."""
        return [], []

    def setup_on_node(self, node_info: NodeInfo, worker_metadata: WorkerMetadata | None = None) -> None:
        """Once per node before any worker there calls `setup` (e.g. fetch weights to local disk)."""

    def setup(self, worker_metadata: WorkerMetadata | None = None) -> None:
        """Once per worker, before the first task (e.g. load a model)."""

    def teardown(self) -> None:
        """Once per worker when it is done."""

    @abstractmethod
    def process(self, task: X) -> Y | list[Y] | None: ...

    def process_batch(self, tasks: list[X]) -> list[Y]:
        """Default: `process` each task. Override to batch work across tasks."""
        out: list[Y] = []
        for task in tasks:
            result = self.process(task)
            if result is None:
                continue
            out.extend(result if isinstance(result, list) else [result])
        return out

    def has_batch_method(self) -> bool:
        return type(self).process_batch is not ProcessingStage.process_batch

    def with_(
        self,
        name: str | None = None,
        resources: Resources | None = None,
        batch_size: int | None = None,
    ) -> ProcessingStage[X, Y]:
        """A configured copy of this stage; the original is left as it is."""
        overrides = {
            k: v
            for k, v in (("name", name), ("resources", resources), ("batch_size", batch_size))
            if v is not None
        }
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        clone = copy.copy(self)
        clone.__class__ = _configured_class(type(self))
        clone.__dict__["_stage_overrides"] = {**self.__dict__.get("_stage_overrides", {}), **overrides}
        return clone

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


_CONFIGURED_CLASSES: dict[type, type] = {}


def _override_property(attr: str) -> property:
    def getter(self: Any) -> Any:
        overrides = self.__dict__.get("_stage_overrides", {})
        if attr in overrides:
            return overrides[attr]
        if attr in self.__dict__:  # a dataclass field set on the instance
            return self.__dict__[attr]
        return getattr(super(type(self), self), attr)

    return property(getter)


def _configured_class(base: type) -> type:
    """A subclass whose name/resources/batch_size read from per-instance overrides.

    A subclass (rather than instance attributes) is needed because the base class may define these
    as read-only properties.
    """
    if getattr(base, "_is_configured_copy", False):
        base = base.__mro__[1]
    if base not in _CONFIGURED_CLASSES:
        namespace = {attr: _override_property(attr) for attr in ("batch_size", "name", "resources")}
        namespace["_is_configured_copy"] = True
        namespace["__module__"] = base.__module__
        namespace["__qualname__"] = base.__qualname__
        _CONFIGURED_CLASSES[base] = type(base.__name__, (base,), namespace)
    return _CONFIGURED_CLASSES[base]


class CompositeStage(ProcessingStage[X, Y]):
    """A user-facing stage that expands into execution stages when the pipeline is built."""

    @abstractmethod
    def decompose(self) -> list[ProcessingStage]: ...

    def process(self, task: X) -> Y | list[Y] | None:
        raise RuntimeError(f"{self.name} is a CompositeStage: it is decomposed at build time, never run")


def expand_stages(stages: list[ProcessingStage]) -> list[ProcessingStage]:
    """Decompose composites recursively, keeping order."""
    out: list[ProcessingStage] = []
    for stage in stages:
        if isinstance(stage, CompositeStage):
            out.extend(expand_stages(stage.decompose()))
        else:
            out.append(stage)
    return out
