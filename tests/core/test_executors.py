"""Executors on a real local Ray (2 CPUs): same semantics in streaming, batch and local modes."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from curator_core import LocalExecutor, Pipeline, RayExecutor, Resources
from curator_core.executors import ray_scheduling
from curator_core.executors.ray import fuse_stages, plan_stages
from tests.core.stages import (
    AddStage,
    BatchSquareStage,
    DieOnceActorStage,
    DieOnceStage,
    FanOutFilterStage,
    FragmentingStage,
    NumTask,
    RaiseOnStage,
    SetupRecorderStage,
    SleepStage,
)


def _tasks(n: int) -> list[NumTask]:
    return [NumTask(dataset_name="nums", data=i) for i in range(n)]


def _pipeline() -> Pipeline:
    return Pipeline(
        "engine", [AddStage(1), FanOutFilterStage(), RaiseOnStage(bad_value=71), AddStage(2, "add_again")]
    )


def _signature(result) -> list[tuple[str, int]]:
    return [(t.task_id, t.data) for t in result.outputs]


@pytest.fixture(scope="module")
def local_result():
    return _pipeline().execute(LocalExecutor(), _tasks(20))


def test_local_fan_out_filter_and_failure(local_result):
    # data+1, multiples of 5 dropped (4 of 20: 5,10,15,20), others fan out x2, 71 raises.
    stats = local_result.stage_stats
    assert stats["fan_out_filter"].filtered == 4 and stats["fan_out_filter"].tasks_out == 32
    assert stats["raise_on"].failed == 1 and stats["raise_on"].tasks_out == 31
    assert len(local_result.outputs) == 31
    [failure] = local_result.failures
    assert (failure.stage, failure.task_id, failure.error_type) == ("raise_on", "6.1", "ValueError")
    assert "bad value 71" in failure.message
    assert ("0.0", 12) in _signature(local_result) and ("0.1", 13) in _signature(local_result)


@pytest.mark.parametrize("mode", ["streaming", "batch"])
def test_ray_modes_give_the_same_outputs_as_local(ray_cluster, local_result, mode):
    result = _pipeline().execute(RayExecutor(execution_mode=mode), _tasks(20))
    assert _signature(result) == _signature(local_result)
    assert [(f.stage, f.task_id) for f in result.failures] == [("raise_on", "6.1")]
    for name, stats in local_result.stage_stats.items():
        got = result.stage_stats[name]
        assert (got.tasks_in, got.tasks_out, got.filtered, got.failed) == (
            stats.tasks_in,
            stats.tasks_out,
            stats.filtered,
            stats.failed,
        )


def test_one_raising_task_loses_no_other_in_a_batch(ray_cluster):
    stage = RaiseOnStage(bad_value=3).with_(batch_size=10)
    result = Pipeline("p", [stage]).execute(RayExecutor(), _tasks(10))
    assert sorted(t.data for t in result.outputs) == [0, 1, 2, 4, 5, 6, 7, 8, 9]
    assert [f.task_id for f in result.failures] == ["3"]


def test_process_batch_receives_batches(ray_cluster):
    result = Pipeline("p", [BatchSquareStage(batch_size=8)]).execute(RayExecutor(), _tasks(16))
    assert sorted(t.data for t in result.outputs) == [i * i for i in range(16)]
    assert max(t.metadata["batch_len"] for t in result.outputs) > 1


@pytest.mark.parametrize(
    ("stage_class", "restarted_actors"),
    # a Ray task's worker is not an actor: nothing restarted; a stage with `setup` runs in an actor
    [(DieOnceStage, 0), (DieOnceActorStage, 1)],
)
def test_a_killed_worker_is_restarted_its_task_retried_and_counted(
    ray_cluster, tmp_path, stage_class, restarted_actors
):
    stage = stage_class(marker_dir=str(tmp_path), victim=3)
    result = Pipeline("p", [stage]).execute(RayExecutor(max_worker_restarts=2), _tasks(6))
    assert (tmp_path / "died-3").exists(), "the worker never died: the test proves nothing"
    assert sorted(t.data for t in result.outputs) == list(range(6))
    assert result.failures == []
    assert result.faults == {  # survived, and said so
        "retried_tasks": 1,
        "lost_tasks": 0,
        "restarted_actors": restarted_actors,
        "lost_nodes": 0,
    }


def test_a_worker_gives_back_what_a_block_freed(ray_cluster):
    """Memory a task freed is returned to the OS after its block, so a worker's memory follows what it
    holds, not what it has done (an encode worker grew with every segment it encoded)."""
    executor = RayExecutor(max_workers_per_stage=1, tasks_per_block=1)
    result = Pipeline("p", [FragmentingStage(megabytes=256)]).execute(executor, _tasks(4))
    by_worker: dict[int, list[float]] = {}
    for task in sorted(result.outputs, key=lambda t: t.metadata["anon_mib_at_start"]):
        by_worker.setdefault(task.metadata["pid"], []).append(task.metadata["anon_mib_at_start"])
    starts = max(by_worker.values(), key=len)
    assert len(starts) >= 2, by_worker  # tasks that followed each other on one worker
    # each task keeps 16 MiB of its 256: the next starts with about that much more, not 256 MiB more
    assert starts[-1] - starts[0] < 32 * len(starts), by_worker


def test_more_stages_than_cores_completes(ray_cluster):
    stages = [AddStage(1, f"add_{i}").with_(resources=Resources(cpus=1.0)) for i in range(5)]
    result = Pipeline("wide", stages).execute(RayExecutor(), _tasks(10))
    assert sorted(t.data for t in result.outputs) == [i + 5 for i in range(10)]


def test_setup_runs_before_process_and_setup_on_node_once(ray_cluster, tmp_path):
    result = Pipeline("p", [SetupRecorderStage(record_dir=str(tmp_path))]).execute(RayExecutor(), _tasks(8))
    assert len(result.outputs) == 8 and all(t.metadata["worker"] for t in result.outputs)
    assert len(list(tmp_path.iterdir())) == 1
    session = Path(ray_cluster._private.worker._global_node.get_session_dir_path())
    assert list((session / "curator-node-setup").glob("*.done"))  # removed with the session, not in /tmp


def test_dead_session_directories_are_pruned_and_the_live_one_kept(ray_cluster):
    from curator_core.executors.ray import prune_dead_sessions

    live = Path(ray_cluster._private.worker._global_node.get_session_dir_path())
    older, old = (
        live.parent / "session_2000-01-01_00-00-00_1_1",
        live.parent / "session_2000-01-02_00-00-00_1_1",
    )
    for dead in (older, old):
        (dead / "logs").mkdir(parents=True)
    assert str(older) in prune_dead_sessions(str(live.parent))
    assert live.exists() and not older.exists()
    assert old.exists()  # the newest dead session stays, for its logs


def test_plan_scales_cpu_requests_so_every_stage_fits():
    stages = [AddStage(i) for i in range(4)]
    plans = plan_stages(stages, cluster_cpus=2, cluster_gpus=0, device_memory_gb=None)
    assert sum(p.num_cpus for p in plans) <= 2
    assert all(p.min_workers == 1 and p.max_workers >= 1 for p in plans)


def test_plan_fails_fast_when_a_stage_needs_more_gpus_than_the_cluster_has():
    stage = AddStage(1).with_(resources=Resources(gpus=2))
    with pytest.raises(RuntimeError, match="add_1.*needs 2 GPU"):
        plan_stages([stage], cluster_cpus=2, cluster_gpus=0, device_memory_gb=None)


def test_plan_reports_unreadable_gpu_memory():
    stage = AddStage(1).with_(resources=Resources(gpu_memory_gb=8))
    with pytest.raises(RuntimeError, match="no GPU memory could be read"):
        plan_stages([stage], cluster_cpus=2, cluster_gpus=1, device_memory_gb=None)


class _FanOut(FanOutFilterStage):
    fans_out = True


def test_fusion_groups_consecutive_stateless_stages_until_a_fan_out():
    stages = [
        AddStage(1),
        _FanOut(),
        AddStage(2),
        AddStage(3).with_(resources=Resources(gpu_memory_gb=1.0)),
        AddStage(4),
        SetupRecorderStage(),
        AddStage(5),
        AddStage(6),
    ]
    plans = plan_stages(stages, cluster_cpus=2, cluster_gpus=1, device_memory_gb=16.0)
    # the fan-out ends its group; a GPU stage and a stage with setup (an actor) stand alone
    assert fuse_stages(stages, plans, streaming=True) == [[0, 1], [2], [3], [4], [5], [6, 7]]
    assert fuse_stages(stages, plans, streaming=False) == [[i] for i in range(len(stages))]


def test_fused_stages_keep_per_stage_stats_and_failures(ray_cluster):
    stages = [AddStage(1), RaiseOnStage(bad_value=4), AddStage(2, "add_again")]
    plans = plan_stages(stages, cluster_cpus=2, cluster_gpus=0, device_memory_gb=None)
    assert fuse_stages(stages, plans, streaming=True) == [[0, 1, 2]]
    result = Pipeline("fused", stages).execute(RayExecutor(), _tasks(8))
    assert sorted(t.data for t in result.outputs) == [i + 3 for i in range(8) if i != 3]
    assert [(f.stage, f.error_type) for f in result.failures] == [("raise_on", "ValueError")]
    assert {n: (s.tasks_in, s.tasks_out, s.failed) for n, s in result.stage_stats.items()} == {
        "add_1": (8, 8, 0),
        "raise_on": (8, 7, 1),
        "add_again": (7, 7, 0),
    }


def test_the_pool_the_plan_lets_grow_starts_at_full_size():
    stages = [AddStage(1).with_(resources=Resources(cpus=0.25)), SetupRecorderStage(), AddStage(2)]
    plans = plan_stages(stages, cluster_cpus=4, cluster_gpus=0, device_memory_gb=None)
    growth = [(p.max_workers - 1) * s.resources.cpus for s, p in zip(stages, plans, strict=True)]
    widest = growth.index(max(growth))
    assert plans[widest].initial_workers == plans[widest].max_workers > 1
    assert all(p.initial_workers == 1 for i, p in enumerate(plans) if i != widest)


@pytest.mark.parametrize(
    ("running", "outputs_waiting", "ready_again", "expected"),
    [
        (0, False, False, None),  # nothing can wake the loop: poll
        (2, False, False, ray_scheduling.HEARTBEAT_S),  # wait for the first task to finish
        (2, True, False, ray_scheduling.PENDING_POLL_S),  # the consumer frees budget, unsignalled
        (2, False, True, None),  # a ready task left unread: waiting would spin
    ],
)
def test_scheduling_wake_timeout(running, outputs_waiting, ready_again, expected):
    assert ray_scheduling.wake_timeout(running, outputs_waiting, ready_again) == expected


class _StepRecorder:
    """A Ray Data execution callback recording its operators and the wall time of every scheduling step."""

    steps: list[float] = []
    operators: list[str] = []

    def before_execution_starts(self, executor) -> None:
        type(self).steps = []
        type(self).operators = [op.name for op in executor._topology]

    def on_execution_step(self, executor) -> None:
        type(self).steps.append(time.time())

    def after_execution_succeeds(self, executor) -> None:
        pass

    def after_execution_fails(self, executor, error) -> None:
        pass


@pytest.fixture
def step_recorder(ray_cluster):
    ctx = ray_cluster.data.DataContext.get_current()
    ctx.custom_execution_callback_classes.append(_StepRecorder)
    yield _StepRecorder
    ctx.custom_execution_callback_classes.remove(_StepRecorder)


def _steps_while_tasks_run(recorder, poll) -> tuple[int, float]:
    """Scheduling steps taken while two sleeping tasks both run, and how long that was (seconds).

    The window is read from the tasks' own clocks, so a slow start on a loaded machine does not
    count start-up steps as steps taken while waiting."""
    fan_out = FanOutFilterStage(drop_multiple=1000)
    fan_out.fans_out = True  # its two outputs must reach two workers
    pipeline = Pipeline("sleep", [fan_out, SleepStage(seconds=3.0)])
    result = pipeline.execute(RayExecutor(scheduling_poll_s=poll), [NumTask(dataset_name="nums", data=1)])
    assert len(result.outputs) == 2 and not result.failures
    slept = [task.metadata["slept"] for task in result.outputs]
    start, end = max(s for s, _ in slept) + 0.2, min(e for _, e in slept) - 0.2
    assert end - start > 0.8, f"the two tasks overlapped for only {end - start + 0.4:.2f} s"
    return sum(1 for t in recorder.steps if start <= t <= end), end - start


def test_scheduling_loop_wakes_when_a_task_finishes_not_on_a_timer(step_recorder):
    from ray.data._internal.execution import metadata_fetcher, streaming_executor_state

    prefetch_on_thread = metadata_fetcher._PREFETCH_ON_THREAD

    polled, polled_s = _steps_while_tasks_run(step_recorder, 0.1)
    woken, woken_s = _steps_while_tasks_run(step_recorder, "auto")
    # While both tasks sleep nothing finishes: a 0.1 s poll steps ~10 times a second, the wake only
    # once per heartbeat.
    assert polled >= 0.5 * polled_s / 0.1, (polled, polled_s)
    assert woken <= woken_s / ray_scheduling.HEARTBEAT_S + 2, (woken, woken_s)
    assert woken / woken_s < 0.5 * polled / polled_s, (woken, woken_s, polled, polled_s)
    # The fan-out re-blocks its outputs in its own task: no separate repartition operator.
    assert not any(name.startswith("StreamingRepartition") for name in step_recorder.operators)
    assert any("StreamingRepartition" in name for name in step_recorder.operators)
    # Other Ray Data users in this process get Ray's own wait and metadata mode back.
    assert streaming_executor_state.WAIT_FOR_TASK_COMPLETION_TIMEOUT_S == ray_scheduling.RAY_POLL_S
    assert metadata_fetcher._PREFETCH_ON_THREAD is prefetch_on_thread


def test_scheduling_wake_falls_back_to_ray_polling_when_an_internal_moved(ray_cluster):
    from ray.data._internal.execution import metadata_fetcher, streaming_executor_state

    prefetch_on_thread = metadata_fetcher._PREFETCH_ON_THREAD
    callback = ray_scheduling.wake_on_task_completion()()
    callback.before_execution_starts(object())
    assert streaming_executor_state.WAIT_FOR_TASK_COMPLETION_TIMEOUT_S == 0.0
    assert metadata_fetcher._PREFETCH_ON_THREAD is False
    callback.on_execution_step(object())  # an executor without the attributes the wake reads
    assert not callback.enabled
    assert streaming_executor_state.WAIT_FOR_TASK_COMPLETION_TIMEOUT_S == ray_scheduling.RAY_POLL_S
    assert metadata_fetcher._PREFETCH_ON_THREAD is prefetch_on_thread


def test_the_local_clusters_token_file_is_readable_by_its_owner_only(tmp_path, monkeypatch):
    from curator_core.executors.ray import _private_token_file

    token = tmp_path / "auth_token"
    token.write_text("secret")
    token.chmod(0o644)  # as Ray 2.60 writes it
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(token))
    _private_token_file()
    assert token.stat().st_mode & 0o777 == 0o600


TOKEN_DRIVER = """
import json, os
import ray
from ray._raylet import AuthenticationMode, get_authentication_mode
from curator_core.executors.ray import ensure_ray
ensure_ray(num_cpus=1)
ran = ray.get(ray.remote(lambda: os.environ.get("RAY_AUTH_TOKEN_PATH")).remote())
print(json.dumps({"token_auth": get_authentication_mode() == AuthenticationMode.TOKEN, "path": os.environ["RAY_AUTH_TOKEN_PATH"], "worker": ran}))
"""


def test_the_private_cluster_has_a_token_file_of_its_own(tmp_path):
    """Token auth on, with the token in the project's Ray temp dir (0600 from its creation), not in the
    user's ~/.ray/auth_token that Ray 2.60 shares between clusters and writes world-readable."""
    import json
    import subprocess
    import sys
    import tempfile

    short = Path(tempfile.mkdtemp(prefix="ct-"))  # Ray's socket paths must stay under 107 bytes
    home = tmp_path / "home"
    home.mkdir()
    drop = ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(HOME=str(home), CURATOR_RAY_TMPDIR=str(short), PYTHONPATH=str(Path(__file__).parents[2]))
    try:
        done = subprocess.run(
            [sys.executable, "-c", TOKEN_DRIVER], env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr[-3000:]
        seen = json.loads(done.stdout.strip().splitlines()[-1])
        token = short / "auth_token"
        assert seen == {"token_auth": True, "path": str(token), "worker": str(token)}
        assert token.stat().st_mode & 0o777 == 0o600 and len(token.read_text()) == 64
        assert not (home / ".ray" / "auth_token").exists()
    finally:
        subprocess.run(["pkill", "-f", str(short)], check=False)
        shutil.rmtree(short, ignore_errors=True)


def test_a_video_whose_worker_always_dies_is_a_failed_input_and_the_rest_completes(
    ray_cluster, tmp_path, three_shots
):
    from curator_core.video.reader import VideoReader
    from curator_core.video.report import run_summary
    from tests.core.stages import CrashOnSourceStage

    for name in ("a.mp4", "crash me.mp4", "c.mp4"):
        (tmp_path / name).write_bytes(three_shots.read_bytes())
    pipeline = Pipeline("p", [VideoReader(str(tmp_path)), CrashOnSourceStage(victim="crash me")])
    result = pipeline.execute(RayExecutor(max_worker_restarts=1))
    assert sorted(Path(t.data.input_path).name for t in result.outputs) == ["a.mp4", "c.mp4"]
    (failure,) = result.failures
    crashed = str(tmp_path / "crash me.mp4")
    assert failure.source == crashed and failure.error_type == "WorkerCrashedError"
    assert f"worker crashed while processing {crashed} (2 attempts)" in failure.message
    assert [f["source"] for f in run_summary(result)["failed"]] == [crashed]
    assert run_summary(result)["faults"] == {
        "retried_tasks": 0,
        "lost_tasks": 1,
        "restarted_actors": 0,
        "lost_nodes": 0,
    }
