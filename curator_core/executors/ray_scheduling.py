"""When Ray Data's scheduling loop wakes up: as soon as a task finishes, not on a timer.

Ray Data 2.60 begins every scheduling step by waiting up to 0.1 s for *all* running tasks, so a worker
whose task ended idles until that wait times out, and the loop steps ten times a second however long the
tasks run. A step costs the driver 5-6 ms of CPU (measured with py-spy: 3.4 CPU-s in a 65 s video run on
2 cores, taken from the workers). Here Ray Data's own wait takes only what is already done, and an
execution callback ends each step by waiting for the *first* task to finish. So the loop steps when
there is something to do: once per finished task, plus a heartbeat for what no task signals (the
autoscaler, the consumer taking outputs).

This reaches into Ray Data internals that have no public setting (the wait constant, the executor's
topology, operator tasks' waitables, the metadata fetcher's mode), only for the length of our executions.
Where one is missing, Ray Data keeps its own 0.1 s poll.
"""

from __future__ import annotations

import functools
import logging
import time
from typing import Any

logger = logging.getLogger(__name__)

RAY_POLL_S = 0.1  # Ray Data's own wait
HEARTBEAT_S = 0.5  # the longest a step sleeps when no task finishes
PENDING_POLL_S = 0.02  # the wait while something is pending that no task completion signals


def set_ray_wait(seconds: float) -> bool:
    """Set Ray Data's wait for running tasks at the start of each step; False where it has none."""
    from ray.data._internal.execution import streaming_executor_state

    if not hasattr(streaming_executor_state, "WAIT_FOR_TASK_COMPLETION_TIMEOUT_S"):
        return False
    streaming_executor_state.WAIT_FOR_TASK_COMPLETION_TIMEOUT_S = seconds
    return True


def wake_timeout(running: int, outputs_waiting: bool, ready_again: bool) -> float | None:
    """How long the end of a step may wait for the first of `running` tasks to finish; None: sleep
    `PENDING_POLL_S` instead of waiting on tasks.

    - no task running: nothing can wake the loop, so it polls;
    - outputs wait for the consumer: once it takes them, the stages held back by their bytes may go on,
      and no task signals that;
    - a task reported ready last step is ready again: Ray Data left its output unread (held back by a
      budget) or it yielded another block; waiting on it would return at once and spin the loop.
    """
    if running == 0 or ready_again:
        return None
    return PENDING_POLL_S if outputs_waiting else HEARTBEAT_S


def swap_metadata_prefetch(on_thread: bool) -> bool | None:
    """Set whether Ray Data fetches block metadata on a background thread; returns the mode it replaced,
    None where Ray Data has no such mode.

    Ray Data 2.60 fetches it on a thread and hands the blocks on at the next step; a loop that sleeps until
    a task finishes would hold them until then. Inline fetching (Ray Data's own fallback mode) hands them
    on in the step that read them."""
    from ray.data._internal.execution import metadata_fetcher

    previous = getattr(metadata_fetcher, "_PREFETCH_ON_THREAD", None)
    if previous is not None:
        metadata_fetcher._PREFETCH_ON_THREAD = on_thread
    return previous


@functools.cache
def wake_on_task_completion() -> type:
    """The execution callback class (Ray Data makes one per execution) that ends each scheduling step by
    waiting for the first running task to finish."""
    import ray
    from ray.data._internal.execution.execution_callback import ExecutionCallback

    class WakeOnTaskCompletion(ExecutionCallback):
        def before_execution_starts(self, executor: Any) -> None:
            self.last_ready: set[Any] = set()
            self.prefetch_on_thread = swap_metadata_prefetch(False)
            self.enabled = self.prefetch_on_thread is not None and set_ray_wait(0.0)
            if not self.enabled:
                self._restore()

        def on_execution_step(self, executor: Any) -> None:
            if not self.enabled:
                return
            try:
                self._wait_for_first_task(executor)
            except Exception:  # noqa: BLE001 - an internal that moved must not fail the run: poll instead
                logger.warning(
                    "scheduling wake disabled; Ray Data polls every %s s", RAY_POLL_S, exc_info=True
                )
                self._restore()

        def _wait_for_first_task(self, executor: Any) -> None:
            topology = executor._topology or {}
            waitables = [task.get_waitable() for op in topology for task in op.get_active_tasks()]
            outputs_waiting = bool(executor._output_node[1].output_queue.num_blocks)
            seen = [w for w in waitables if w in self.last_ready]
            ready_again = bool(seen) and bool(
                ray.wait(seen, num_returns=len(seen), timeout=0, fetch_local=False)[0]
            )
            timeout = wake_timeout(len(waitables), outputs_waiting, ready_again)
            if timeout is None:
                time.sleep(PENDING_POLL_S)
                return
            ready, _ = ray.wait(waitables, num_returns=1, timeout=timeout, fetch_local=False)
            self.last_ready = set(ready)

        def _restore(self) -> None:
            """Ray Data's own poll and metadata mode, for the rest of this run and for other users."""
            self.enabled = False
            set_ray_wait(RAY_POLL_S)
            if self.prefetch_on_thread is not None:
                swap_metadata_prefetch(self.prefetch_on_thread)

        def after_execution_succeeds(self, executor: Any) -> None:
            self._restore()

        def after_execution_fails(self, executor: Any, error: Exception) -> None:
            self._restore()

    return WakeOnTaskCompletion


def configure(ctx: Any, poll_s: float | str | None) -> None:
    """`poll_s`: "auto" wakes the loop when a task finishes; a number is Ray Data's wait in seconds on
    every step (its own default, 0.1 s, when None)."""
    callback, classes = wake_on_task_completion(), ctx.custom_execution_callback_classes
    if poll_s == "auto":
        if callback not in classes:
            classes.append(callback)
        return
    if callback in classes:
        classes.remove(callback)
    set_ray_wait(RAY_POLL_S if poll_s is None else float(poll_s))
