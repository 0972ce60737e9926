"""`nemo_curator.tasks`: `Task`, and `EmptyTask()` / `_EmptyTask` (one class: older NeMo docs name it
`_EmptyTask`) to seed a pipeline whose first stage makes its own inputs."""

from curator_core.tasks import EmptyTask, Task

_EmptyTask = EmptyTask

__all__ = ["EmptyTask", "Task", "_EmptyTask"]
