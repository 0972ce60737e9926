"""Stages: the unit of work of a pipeline, and composites that expand into several stages.

A stage declares what it needs (`inputs`) and what it makes (`outputs`) as attribute names of the
task and of its `data`; `Pipeline.build` checks these declarations so they cannot drift into lies.
`name`, `resources` and `batch_size` may be class attributes, dataclass fields, properties or values
assigned in `__init__`; `with_` returns an independent copy with them replaced.
"""

from __future__ import annotations

import copy
import typing
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


STAGE_SETTINGS = ("name", "resources", "batch_size")  # what `with_` sets and a stage may declare any way


class _Setting:
    """The base class's `name` / `resources` / `batch_size`: a default computed from the stage, which
    assigning on the instance (`self.name = ...` in `__init__`, or `with_`) replaces for that instance."""

    def __init__(self, default: Any) -> None:
        self._default = default

    def __set_name__(self, owner: type, attr: str) -> None:
        self._attr = attr

    def __get__(self, stage: Any, owner: type | None = None) -> Any:
        if stage is None:
            return self
        if self._attr in stage.__dict__:
            return stage.__dict__[self._attr]
        return self._default(stage)

    def __set__(self, stage: Any, value: Any) -> None:
        stage.__dict__[self._attr] = value


def _assignable(prop: property, attr: str) -> property:
    """A subclass's read-only `name`/`resources`/`batch_size` property, made assignable per instance: a
    value assigned to the instance wins over the property's getter."""

    def getter(stage: Any) -> Any:
        return stage.__dict__[attr] if attr in stage.__dict__ else prop.fget(stage)

    def setter(stage: Any, value: Any) -> None:
        stage.__dict__[attr] = value

    return property(getter, setter, doc=prop.__doc__)


class ProcessingStage(ABC, Generic[X, Y]):
    """Turns a task of type X into zero, one or many tasks of type Y.

    `process` returns a task (1:1), a list (fan-out; an empty list filters), or None (filtered).
    Stages that gain from batching (models) also define `process_batch`, which receives up to
    `batch_size` tasks at once and returns, per input in order, a task, a list or None (or one flat
    list of outputs).

    `name`, `resources` and `batch_size` may be class attributes, dataclass fields, properties, or be
    assigned in `__init__` / `__post_init__`; `with_` returns an independent copy with them replaced.
    """

    name = _Setting(lambda stage: type(stage).__name__)
    resources = _Setting(lambda stage: Resources())
    batch_size = _Setting(lambda stage: 1)

    # Whether one input can become many tasks (listing files, cutting a video into segments): the Ray
    # executor then re-blocks the stage's outputs so they spread over the next stage's workers. None:
    # inferred from the return annotation of `process` (see `fans_out_hint`).
    fans_out: bool | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for attr in STAGE_SETTINGS:
            value = cls.__dict__.get(attr)
            if isinstance(value, property) and value.fset is None:
                setattr(cls, attr, _assignable(value, attr))

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

    def process_batch(self, tasks: list[X]) -> list[Y | list[Y] | None]:
        """Default: `process` each task, one result per input. Override to batch work across tasks."""
        return [self.process(task) for task in tasks]

    def has_batch_method(self) -> bool:
        return type(self).process_batch is not ProcessingStage.process_batch

    def with_(
        self,
        name: str | None = None,
        resources: Resources | None = None,
        batch_size: int | None = None,
    ) -> ProcessingStage[X, Y]:
        """An independent (deep) copy of this stage with the given settings replaced."""
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if resources is not None and not isinstance(resources, Resources):
            raise TypeError(
                f"{self.name}.with_: resources must be a Resources, got {type(resources).__name__}"
            )
        clone = copy.deepcopy(self)
        for attr, value in (("name", name), ("resources", resources), ("batch_size", batch_size)):
            if value is not None:
                setattr(clone, attr, value)
        return clone

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def fans_out_hint(stage: ProcessingStage) -> bool | None:
    """Whether `stage` can turn one task into many: its `fans_out` when set, else what `process` (or
    `process_batch`) is annotated to return: a list -> True, something else -> False, nothing -> None
    (unknown: the executor then treats it as one that may)."""
    if stage.fans_out is not None:
        return bool(stage.fans_out)
    method = type(stage).process
    try:
        returns = typing.get_type_hints(method).get("return", _MISSING)
    except Exception:  # noqa: BLE001 - unresolvable names: read the annotation's text instead
        returns = method.__annotations__.get("return", _MISSING)
    if returns is _MISSING:
        return None
    return _mentions_list(returns)


_MISSING = object()


def _mentions_list(annotation: Any) -> bool:
    if isinstance(annotation, str):
        return "list[" in annotation.replace(" ", "") or "List[" in annotation
    if annotation is list or typing.get_origin(annotation) is list:
        return True
    return any(_mentions_list(a) for a in typing.get_args(annotation))


class CompositeStage(ProcessingStage[X, Y]):
    """A user-facing stage that expands into execution stages when the pipeline is built.

    `with_` configures the sub-stages: NeMo Curator's per-sub-stage dict (`{sub_stage_name: {"resources":
    ..., "batch_size": ..., "name": ...}}`) and/or keywords (`name` renames the composite; `resources` and
    `batch_size` apply to every sub-stage). They are applied when the composite is decomposed, in the
    order given; a name that is not one of its sub-stages is an error there."""

    @abstractmethod
    def decompose(self) -> list[ProcessingStage]: ...

    def process(self, task: X) -> Y | list[Y] | None:
        raise RuntimeError(f"{self.name} is a CompositeStage: it is decomposed at build time, never run")

    def with_(
        self,
        sub_stage_settings: dict[str, dict[str, Any]] | None = None,
        /,
        name: str | None = None,
        resources: Resources | None = None,
        batch_size: int | None = None,
    ) -> CompositeStage[X, Y]:
        entries: list[tuple[str | None, dict[str, Any]]] = []
        for target, settings in (sub_stage_settings or {}).items():
            if not isinstance(settings, dict) or set(settings) - set(STAGE_SETTINGS):
                raise TypeError(
                    f"{self.name}.with_: the settings of sub-stage {target!r} must be a dict with keys among "
                    f"{', '.join(STAGE_SETTINGS)}, got {settings!r}"
                )
            entries.append((target, settings))
        shared = {k: v for k, v in (("resources", resources), ("batch_size", batch_size)) if v is not None}
        if shared:
            entries.append((None, shared))
        clone = copy.deepcopy(self)
        if name is not None:
            clone.name = name
        clone.__dict__["_sub_stage_settings"] = [*self.__dict__.get("_sub_stage_settings", []), *entries]
        return clone

    def decompose_and_apply_with(self) -> list[ProcessingStage]:
        """`decompose()`, then the settings given to `with_` applied to the sub-stages they name."""
        stages = list(self.decompose())
        for target, settings in self.__dict__.get("_sub_stage_settings", []):
            names = [s.name for s in stages]
            if target is not None and target not in names:
                raise ValueError(
                    f"{self.name}.with_ configures sub-stage {target!r}, which {type(self).__name__} does not "
                    f"have; its sub-stages are: {', '.join(names)}"
                )
            stages = [s.with_(**settings) if target in (None, s.name) else s for s in stages]
        return stages


def expand_stages(stages: list[ProcessingStage]) -> list[ProcessingStage]:
    """Decompose composites recursively (with their `with_` settings applied), keeping order."""
    out: list[ProcessingStage] = []
    for stage in stages:
        if isinstance(stage, CompositeStage):
            out.extend(expand_stages(stage.decompose_and_apply_with()))
        elif isinstance(stage, ProcessingStage):
            out.append(stage)
        else:
            raise TypeError(f"a pipeline holds stages, got {type(stage).__name__}: {stage!r}")
    return out
