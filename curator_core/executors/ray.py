"""RayExecutor: stages run as Ray Data map operators (actor pools for stages with per-worker state, Ray
tasks for the others, consecutive stateless stages fused) that stream into one another.

We do not schedule anything ourselves: Ray Data's streaming engine moves blocks of tasks between
`map_batches` operators with bounded in-flight work. What this module adds is the sizing that keeps a
small machine from deadlocking (every pool must be able to hold one actor at the same time), the fusion of
stages, a project-private local cluster, and the adapters that run stages inside an actor or a task; when
the scheduling loop wakes is `ray_scheduling`'s.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import functools
import hashlib
import logging
import math
import os
import secrets
import shutil
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from curator_core import storage
from curator_core.executors import ray_scheduling
from curator_core.executors.base import Executor, RunResult, StageRunner, collect
from curator_core.resources import Resources
from curator_core.stage import NodeInfo, ProcessingStage, WorkerMetadata, fans_out_hint
from curator_core.storage import STORAGE_ENV
from curator_core.tasks import FailedTask, Task

logger = logging.getLogger(__name__)

GPU_MEMORY_ENV = "CURATOR_GPU_MEMORY_GB"
JOB_CONFIG_ENV = "RAY_JOB_CONFIG_JSON_ENV_VAR"  # set by Ray in a submitted job's entrypoint
ACTOR_AUTOSCALER_ENV = "RAY_DATA_ACTOR_AUTOSCALER"  # Ray Data's choice of actor pool autoscaler


def project_ray_tmpdir() -> str:
    """A temp dir private to this project checkout, short enough for Ray's unix sockets."""
    override = os.environ.get("CURATOR_RAY_TMPDIR")
    if override:
        return override
    digest = hashlib.sha1(str(Path.cwd().resolve()).encode()).hexdigest()[:8]
    return os.path.join(tempfile.gettempdir(), f"curator-ray-{digest}")


BLOCKS_PER_CPU = 4


def worker_runtime_env(runtime_env: dict | None = None) -> dict | None:
    """The runtime environment of the workers: `runtime_env` (a cluster's working_dir, py_modules, pip,
    env_vars) plus, when this process has a storage configuration, that configuration and the values of
    its credential variables, so that a worker on any node reaches the same object store."""
    env = dict(runtime_env or {})
    if STORAGE_ENV in os.environ:
        env["env_vars"] = {**storage.current().worker_env(), **env.get("env_vars", {})}
    return env or None


def ensure_ray(
    num_cpus: int | None = None,
    address: str | None = None,
    dashboard: bool = False,
    runtime_env: dict | None = None,
) -> float:
    """Connect to RAY_ADDRESS / `address`, reuse a running driver connection, or start a private local
    cluster (with its dashboard on 127.0.0.1 when `dashboard`; `dashboard_url()` tells where). The workers
    get `worker_runtime_env(runtime_env)`. Returns the seconds spent starting up."""
    import ray

    if ray.is_initialized():
        return 0.0
    # Inside a submitted job the job's runtime env already reaches its workers, and Ray refuses a second.
    runtime_env = None if os.environ.get(JOB_CONFIG_ENV) else worker_runtime_env(runtime_env)
    address = address or os.environ.get("RAY_ADDRESS")
    t0 = time.perf_counter()
    if address:
        if address.startswith("ray://"):
            raise RuntimeError(
                f"RAY_ADDRESS={address} is a Ray Client address; Ray Data cannot run over a ray:// client "
                "connection. Submit the pipeline as a Ray job instead (the Dagster project does this through "
                "dagster-ray's PipesRayJobClient), or run the driver on the cluster."
            )
        context = ray.init(address=address, log_to_driver=True, runtime_env=runtime_env)
    else:
        # A new local cluster turns token auth on and logs a warning that it did: for the private cluster
        # that is what we want (RAY_AUTH_MODE=disabled still opts out), so that one record is dropped. It
        # cannot be avoided otherwise: Ray reads RAY_AUTH_MODE once, when it is imported.
        with _quiet_token_auth_notice(), warnings.catch_warnings():
            # lancedb warns in every forked child; ray.init forks only to exec Ray's own binaries, which
            # never run lancedb code, so the warning (inherited by the child through the filter) is moot.
            warnings.filterwarnings("ignore", "lancedb fork support", RuntimeWarning)
            prune_dead_sessions(project_ray_tmpdir())
            _private_token_file()
            context = ray.init(
                address="local",
                num_cpus=num_cpus,
                include_dashboard=dashboard,
                runtime_env=runtime_env,
                dashboard_host="127.0.0.1",
                dashboard_port=_free_port() if dashboard else None,
                _temp_dir=project_ray_tmpdir(),
                log_to_driver=True,
                logging_level=logging.WARNING,
                _system_config={"num_workers_soft_limit": warm_workers(num_cpus or os.cpu_count() or 1)},
            )
    global _DASHBOARD_URL
    url = getattr(context, "dashboard_url", None)
    _DASHBOARD_URL = f"http://{url}" if url and not url.startswith("http") else url or None
    return time.perf_counter() - t0


_DASHBOARD_URL: str | None = None


def prune_dead_sessions(temp_dir: str) -> list[str]:
    """Remove the session directories of clusters that no longer run from the private cluster's temp dir
    (one is left per run otherwise). A session is alive while a process has one of its unix sockets
    bound (/proc/net/unix lists them); the newest dead one is kept, for its logs."""
    root = Path(temp_dir)
    try:
        bound = Path("/proc/net/unix").read_text()
    except OSError:
        return []  # no way to tell what is alive here: keep everything
    sessions = sorted(p for p in root.glob("session_*") if p.is_dir() and not p.is_symlink())
    dead = [p for p in sessions if f"{p}/" not in bound]
    removed = []
    for session in dead[:-1]:
        shutil.rmtree(session, ignore_errors=True)
        removed.append(str(session))
    return removed


TOKEN_FILE = "auth_token"  # the private cluster's token, in its temp dir


def _private_token_file() -> None:
    """Give the private cluster a token file that only its owner can read, before Ray starts: whoever
    reads it can run code on the cluster.

    Ray 2.60 otherwise writes one token, for every cluster this user starts, to ~/.ray/auth_token, and
    world-readable (0644). So the project's Ray temp dir gets one of its own, owner-only from the moment
    it exists; the processes of the cluster inherit RAY_AUTH_TOKEN_PATH from this one. A token the user
    chose is kept: RAY_AUTH_TOKEN as it is, the file RAY_AUTH_TOKEN_PATH names made owner-only."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return
    chosen = os.environ.get("RAY_AUTH_TOKEN_PATH")
    if chosen:
        with contextlib.suppress(OSError):
            if Path(chosen).stat().st_mode & 0o077:
                Path(chosen).chmod(0o600)
        return
    path = Path(project_ray_tmpdir()) / TOKEN_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as token:
            token.write(secrets.token_hex(32))
    os.environ["RAY_AUTH_TOKEN_PATH"] = str(path)


_TOKEN_AUTH_LOGGER = "ray._private.authentication.authentication_token_setup"


@contextlib.contextmanager
def _quiet_token_auth_notice():
    def keep(record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Token authentication is enabled for this Ray cluster")

    token_logger = logging.getLogger(_TOKEN_AUTH_LOGGER)
    token_logger.addFilter(keep)
    try:
        yield
    finally:
        token_logger.removeFilter(keep)


def dashboard_url() -> str | None:
    """The Ray dashboard of the cluster this process is connected to, when it has one."""
    import ray

    return _DASHBOARD_URL if ray.is_initialized() else None


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def warm_workers(cpus: int) -> int:
    """Idle worker processes the private cluster keeps between tasks and runs.

    Ray keeps one per CPU and ends the others after a second idle. A streaming run needs more at once:
    its light stages (listing, probing) still run while the heavy ones (encoding) start. So every run
    after the first booted new workers (measured on 2 cores: the second encoder began 1.1-1.8 s late, and
    the new processes spent ~2 CPU-s importing). Twice the CPUs, at most 8 more, stay warm."""
    return cpus + min(cpus, 8)


def gpu_memory_gb() -> float | None:
    """Memory of one GPU of the cluster in GiB, or None where it cannot be read (no silent guess)."""
    import ray

    if os.environ.get(GPU_MEMORY_ENV):
        return float(os.environ[GPU_MEMORY_ENV])
    if not ray.cluster_resources().get("GPU"):
        return None

    @ray.remote(num_gpus=1, num_cpus=0)
    def _probe() -> float | None:
        try:
            import torch

            if torch.cuda.is_available():
                return torch.cuda.get_device_properties(0).total_memory / 2**30
        except Exception:  # noqa: BLE001 - report "unknown", never guess
            return None
        return None

    return ray.get(_probe.remote(), timeout=120)


@dataclass(frozen=True)
class StagePlan:
    """How one stage is scheduled: the per-actor request and the pool's bounds."""

    num_cpus: float
    num_gpus: float
    resources: dict[str, float]
    min_workers: int
    max_workers: int
    initial_workers: int


def _shortfall(stages: list[ProcessingStage], cluster: dict, device_memory_gb: float | None) -> list[str]:
    """What the cluster lacks to hold one worker of each stage, naming the stages."""
    short = []
    cpu_stages = [s.name for s in stages if s.resources.cpus > 0]
    if cpu_stages and cluster.get("CPU", 0.0) <= 0:
        short.append(f"no CPU for {', '.join(cpu_stages[:3])}{' ...' if len(cpu_stages) > 3 else ''}")
    for stage in stages:
        res: Resources = stage.resources
        if res.requires_gpu:
            if res.gpu_memory_gb and device_memory_gb is None and not cluster.get("GPU"):
                short.append(f"stage {stage.name!r} needs a GPU; the cluster has 0")
                continue
            need = res.num_gpus(device_memory_gb)
            if need > cluster.get("GPU", 0.0) + 1e-9:
                short.append(
                    f"stage {stage.name!r} needs {need:g} GPU(s) per worker; the cluster has {cluster.get('GPU', 0.0):g}"
                )
    return short


def plan_stages(
    stages: list[ProcessingStage],
    cluster_cpus: float,
    cluster_gpus: float,
    device_memory_gb: float | None,
    max_workers_per_stage: int | None = None,
) -> list[StagePlan]:
    """Size each stage's actor pool so that the pipeline can always run and its bottleneck can grow.

    A pool's size is bounded by the real request: no more workers of a stage than the cluster has CPUs
    (and GPUs) for. Ray Data needs every operator running at once in streaming mode; if the requests add
    up to more than the cluster has, some pool never starts and the run hangs with no error. Idle light
    stages also keep their actors, so the bottleneck stage could never grow. So the CPU requests Ray sees
    are scaled down together until one actor of every stage plus the largest pool at its full size fit.
    The real CPU use is the same; only Ray's accounting changes.
    """
    cpu_requests = [max(0.0, float(s.resources.cpus)) for s in stages]
    whole_cpus = max(1, int(cluster_cpus))
    max_workers: list[int] = []
    gpu_requests: list[float] = []
    for stage, cpus in zip(stages, cpu_requests, strict=True):
        res: Resources = stage.resources
        num_gpus = res.num_gpus(device_memory_gb) if res.requires_gpu else 0.0
        if num_gpus and num_gpus > cluster_gpus + 1e-9:
            raise RuntimeError(
                f"stage {stage.name!r} needs {num_gpus:g} GPU(s) per worker but the cluster has {cluster_gpus:g}"
            )
        by_cpu = math.floor(cluster_cpus / cpus + 1e-9) if cpus > 0 else whole_cpus
        by_gpu = math.floor(cluster_gpus / num_gpus + 1e-9) if num_gpus else by_cpu
        workers = max(1, min(by_cpu, by_gpu, whole_cpus))
        if max_workers_per_stage:
            workers = max(1, min(workers, max_workers_per_stage))
        max_workers.append(workers)
        gpu_requests.append(num_gpus)
    total = sum(cpu_requests)
    growths = [(m - 1) * c for m, c in zip(max_workers, cpu_requests, strict=True)]
    growth = max(growths)
    # Leave one CPU free for Ray Data's own tasks (re-blocking after an actor stage that fans out runs as a
    # 1-CPU task; a task stage's re-blocking is fused into it, see _split_blocks).
    budget = max(cluster_cpus - 1.0, cluster_cpus * 0.5)
    scale = min(1.0, budget / (total + growth)) if total + growth > 0 else 1.0
    if scale < 1.0:
        logger.info("scaling the stages' CPU requests by %.2f so that every pool fits the cluster", scale)
    # A one-stage pipeline starts with every core busy instead of waiting for the autoscaler, and the
    # pool that may grow the most (the one the budget was sized for) starts at full size: its actors
    # start while the first stages read their inputs (measured: the second of two transcoding workers
    # began 2.3 s after the first when the autoscaler added it).
    initial = max(1, math.floor(cluster_cpus / total + 1e-9)) if total > 0 else 1
    widest = growths.index(growth) if growth > 0 else -1
    return [
        StagePlan(
            num_cpus=round(cpus * scale, 4),
            num_gpus=num_gpus,
            resources=stage.resources.custom_resources(),
            min_workers=1,
            max_workers=workers,
            initial_workers=workers if index == widest else min(workers, initial),
        )
        for index, (stage, cpus, num_gpus, workers) in enumerate(
            zip(stages, cpu_requests, gpu_requests, max_workers, strict=True)
        )
    ]


def _pack(items: list[Any]) -> np.ndarray:
    """Items travel between stages as cloudpickled bytes: an Arrow-native binary column, so Ray Data
    never tries (and fails) to convert task objects to Arrow, and user classes defined in scripts work."""
    from ray import cloudpickle

    column = np.empty(len(items), dtype=object)
    column[:] = [cloudpickle.dumps(item) for item in items]
    return column


def _unpack(column: Iterable[bytes]) -> list[Any]:
    from ray import cloudpickle

    return [cloudpickle.loads(blob) for blob in column]


def _node_session_dir() -> Path:
    """This node's Ray session directory (removed with the session), or the temp dir outside Ray."""
    try:
        import ray._private.worker as ray_worker

        return Path(ray_worker.global_worker.node.get_session_dir_path())
    except (AttributeError, ImportError):
        return Path(tempfile.gettempdir())


def _setup_on_node_once(stage: ProcessingStage, key: str, node: NodeInfo, metadata: WorkerMetadata) -> None:
    """Run `stage.setup_on_node` once per node and run, whichever actor gets there first. The lock and
    marker files live in the node's session directory, so they go when the session does."""
    lock_dir = _node_session_dir() / "curator-node-setup"
    lock_dir.mkdir(parents=True, exist_ok=True)
    done = lock_dir / f"{key}.done"
    with open(lock_dir / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not done.exists():
                stage.setup_on_node(node, metadata)
                done.touch()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _dead_nodes(ray: Any) -> set[str]:
    """Ids of the cluster's nodes that have died (Ray keeps them listed): compared before and after a
    run, the nodes the run lost."""
    return {n["NodeID"] for n in ray.nodes() if not n["Alive"]}


class CrashLedger:
    """The tasks each operator has begun and not yet finished, kept by one small actor per run.

    A worker process that dies (a native crash in a decoder, the out-of-memory killer) takes its block
    with it; Ray retries the block, and when every attempt dies, Ray Data drops it (max_errored_blocks)
    instead of failing the whole run. The tasks still open here at the end are the ones lost that way,
    and the run reports each as a failed input naming its file. Only tasks in flight are held.
    """

    def __init__(self) -> None:
        self.open: dict[tuple[str, str], list] = {}  # (operator, task id) -> [source, attempts, in block]
        self.retried = 0  # tasks that finished on a later attempt, after their worker died
        self.actor_starts: dict[str, int] = {}  # actor id -> times its constructor ran (Ray keeps the id)
        self.actor_stage: dict[str, str] = {}  # actor id -> the stage it runs

    def actor_started(self, actor_id: str, stage: str) -> None:
        self.actor_starts[actor_id] = self.actor_starts.get(actor_id, 0) + 1
        self.actor_stage[actor_id] = stage

    def begin(self, operator: str, entries: list[tuple[str, str | None]]) -> None:
        for task_id, source in entries:
            entry = self.open.setdefault((operator, task_id), [source, 0, len(entries)])
            entry[1] += 1

    def end(self, operator: str, task_ids: list[str]) -> None:
        for task_id in task_ids:
            entry = self.open.pop((operator, task_id), None)
            if entry is not None and entry[1] > 1:
                self.retried += 1

    def lost(self) -> list[tuple[str, str, str | None, int, int]]:
        return [(op, task_id, *entry) for (op, task_id), entry in sorted(self.open.items())]

    def faults(self) -> dict[str, int]:
        """What worker deaths cost the run: tasks retried and finished, tasks lost, and actors Ray restarted
        (an actor whose constructor ran more than once)."""
        restarts = sum(starts - 1 for starts in self.actor_starts.values())
        return {"retried_tasks": self.retried, "lost_tasks": len(self.open), "restarted_actors": restarts}

    def report(self) -> tuple[list[tuple[str, str, str | None, int, int]], dict[str, int], dict[str, int]]:
        """All the run's end needs, in one call: the lost tasks, the faults, and the actors each actor
        stage's pool started."""
        return self.lost(), self.faults(), dict(Counter(self.actor_stage.values()))


def _tracked(ledger: Any, operator: str, items: list[Any], run: Any) -> list[Any]:
    """`run(items)` with the tasks among them entered in the ledger before and struck off after (two
    short calls per block)."""
    if ledger is None:
        return run(items)
    import ray

    entries = [(t.task_id, getattr(t.data, "input_path", None)) for t in items if isinstance(t, Task)]
    _note(ray, ledger.begin, operator, entries)
    out = run(items)
    _note(ray, ledger.end, operator, [task_id for task_id, _ in entries])
    return out


@functools.cache
def _malloc_trim() -> Any:
    """glibc's `malloc_trim`, or None where the C library has none (musl, macOS)."""
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None


def release_freed_memory() -> None:
    """Give the pages that a block's work freed back to the OS, at the end of every block on a worker.

    glibc keeps freed memory in its arenas (one per decoder or encoder thread) for reuse, and the holes
    that decoded frames and encoded clips leave are seldom reused whole: an encode worker's RssAnon grew
    with every segment it encoded (measured in one process, 6 segments of a 1080p input: 241 -> 316 MiB
    after each segment; 42 -> 54 MiB trimmed after each). One call costs well under a millisecond.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def _note(ray: Any, method: Any, *args: Any) -> None:
    """One call to the ledger. Bookkeeping never fails a task: without its ledger (the driver going
    away), a task still runs; only the fault counts miss it."""
    try:
        ray.get(method.remote(*args))
    except ray.exceptions.RayActorError as exc:
        logger.warning("the run's crash ledger is gone; fault counts will miss this task: %s", exc)


def lost_task_failures(lost: list[tuple[str, str, str | None, int, int]]) -> list[FailedTask]:
    """One failed-task record per task whose worker died on every attempt."""
    failures = []
    for operator, task_id, source, attempts, in_block in lost:
        what = source or f"task {task_id}"
        company = f", in a block of {in_block} tasks" if in_block > 1 else ""
        failures.append(
            FailedTask(
                stage=operator,
                task_id=task_id,
                dataset_name="",
                error_type="WorkerCrashedError",
                message=f"worker crashed while processing {what} ({attempts} attempts{company})",
                source=source,
            )
        )
    return failures


class _StageActor:
    """Ray Data callable class: one instance per actor, holding one set-up copy of the stage."""

    def __init__(
        self,
        stage: ProcessingStage,
        node_setup_key: str,
        num_cpus: float,
        num_gpus: float,
        ledger: Any = None,
    ):
        import ray

        ctx = ray.get_runtime_context()
        actor_id = ctx.get_actor_id()
        if ledger is not None and actor_id:
            _note(ray, ledger.actor_started, actor_id, stage.name)
        metadata = WorkerMetadata(
            worker_id=actor_id or f"pid-{os.getpid()}",
            node_id=ctx.get_node_id(),
            num_cpus=num_cpus,
            num_gpus=num_gpus,
            gpu_ids=tuple(int(i) for i in ray.get_gpu_ids()),
        )
        _setup_on_node_once(stage, node_setup_key, NodeInfo(ctx.get_node_id()), metadata)
        stage.setup(metadata)
        self.stage = stage
        self.runner = StageRunner(stage, metadata)
        self.ledger = ledger

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        items = _unpack(batch["item"])
        out = _pack(_tracked(self.ledger, self.stage.name, items, self.runner.run))
        del items
        release_freed_memory()
        return {"item": out}

    def __del__(self) -> None:
        stage = getattr(self, "stage", None)
        if stage is not None:
            try:
                stage.teardown()
            except Exception:  # noqa: BLE001 - teardown must never mask the run's result
                logger.exception("teardown of %s failed", stage.name)


def needs_actor(stage: ProcessingStage) -> bool:
    """Stages with per-worker state (`setup`, `setup_on_node`, `teardown`) run in actors that keep it.
    The others run as Ray tasks on Ray's pooled worker processes, which stay warm between runs (an
    actor is a fresh process that spends about a second importing Ray Data before its first task) and
    which Ray Data fuses with a neighbouring stage."""
    kind = type(stage)
    return any(
        getattr(kind, hook) is not getattr(ProcessingStage, hook)
        for hook in ("setup", "setup_on_node", "teardown")
    )


def fuse_stages(stages: list[ProcessingStage], plans: list[StagePlan], streaming: bool) -> list[list[int]]:
    """Group consecutive stages that can run one after the other inside a single Ray task.

    Stages without per-worker state, GPUs or custom resources are fused, as Ray Data would fuse map
    operators with equal resource requests, except after a stage that fans out or may (`fans_out_hint`:
    its outputs are re-blocked first so they spread over the workers). A fused group hands its tasks from stage to
    stage in memory: an encoded clip never travels through the object store to be written, and fewer
    operators means fewer scheduling rounds and fewer idle worker processes. Batch mode keeps every
    stage separate, since each must finish before the next starts."""
    groups: list[list[int]] = []
    for index, (stage, plan) in enumerate(zip(stages, plans, strict=True)):
        last = groups[-1][-1] if groups else None
        if (
            streaming
            and last is not None
            and _fusable(stage, plan)
            and _fusable(stages[last], plans[last])
            and fans_out_hint(stages[last]) is False
        ):
            groups[-1].append(index)
        else:
            groups.append([index])
    return groups


def _fusable(stage: ProcessingStage, plan: StagePlan) -> bool:
    return not needs_actor(stage) and not plan.num_gpus and not plan.resources


def _task_function(stages: list[ProcessingStage], num_gpus: float, ledger: Any = None) -> Any:
    """A Ray Data task function running `stages` one after the other, named after them."""
    operator = "+".join(stage.name for stage in stages)

    def run_stages(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import ray

        ctx = ray.get_runtime_context()

        def run(items: list[Any]) -> list[Any]:
            for stage in stages:
                metadata = WorkerMetadata(
                    worker_id=ctx.get_worker_id(),
                    node_id=ctx.get_node_id(),
                    num_cpus=float(stage.resources.cpus),
                    num_gpus=num_gpus,
                )
                items = StageRunner(stage, metadata).run(items)
            return items

        out = _pack(_tracked(ledger, operator, _unpack(batch["item"]), run))
        release_freed_memory()
        return {"item": out}

    label = "+".join("".join(ch if ch.isalnum() else "_" for ch in stage.name) for stage in stages)
    run_stages.__name__ = run_stages.__qualname__ = f"Stage_{label}"
    return run_stages


def _actor_class(
    stage: ProcessingStage, setup_key: str, num_cpus: float, num_gpus: float, ledger: Any = None
) -> type:
    """A zero-argument actor class bound to `stage`, named after it (Ray Data shows the name).

    Binding by closure instead of constructor arguments keeps the stage out of the object store, where
    Ray could not recover it for an actor restart.
    """

    class BoundStageActor(_StageActor):
        def __init__(self) -> None:
            super().__init__(stage, setup_key, num_cpus, num_gpus, ledger)

    label = "".join(ch if ch.isalnum() else "_" for ch in stage.name)
    BoundStageActor.__name__ = BoundStageActor.__qualname__ = f"Stage_{label}"
    return BoundStageActor


def _split_blocks(ds: Any, rows_per_block: int) -> Any:
    """Re-block a fan-out stage's outputs so they spread over the workers, inside the fan-out's own task.

    `Dataset.repartition` adds an operator whose tasks ask for 1 CPU each, so Ray Data cannot fuse it with
    a stage that asks for another share (it fuses only equal requests). Those extra tasks each need a
    worker process while the first heavy tasks start (measured on 2 cores: 5 operators instead of 3, and
    the second encoder began up to 1.8 s late). The same repartition operator built with the fan-out
    task's own resources and pool size is fused into it by Ray Data's planner. An actor stage's outputs
    (or a Ray Data without these internals) get the plain repartition.
    """
    import ray.data

    upstream = ds._logical_plan.dag
    compute = getattr(upstream, "compute", None)
    try:
        from ray.data._internal.logical.interfaces import LogicalPlan
        from ray.data._internal.logical.operators.map_operator import StreamingRepartition
    except ImportError:
        compute = None
    if not isinstance(compute, ray.data.TaskPoolStrategy):
        return ds.repartition(target_num_rows_per_block=rows_per_block)
    op = StreamingRepartition(
        target_num_rows_per_block=rows_per_block,
        input_dependencies=[upstream],
        ray_remote_args=dict(upstream.ray_remote_args or {}),
        compute=compute,
    )
    return ray.data.Dataset._from_parent(ds, LogicalPlan(op, ds.context))


class RayExecutor(Executor):
    """Runs stages as Ray Data operators: actor pools for stages with per-worker state, Ray tasks (fused)
    for the others.

    execution_mode: "streaming" (all stages at once, bounded in-flight work) or "batch" (each stage
        completes before the next starts).
    num_cpus: CPUs of the local cluster this executor starts when none is running (default: all).
    max_workers_per_stage: cap on each pool's size (default: what the cluster holds).
    max_worker_restarts: how often a dead worker is restarted and its task retried.
    tasks_per_block: tasks that travel together between stages (default: enough for 4 blocks per CPU).
    show_progress: Ray Data's per-stage progress bars.
    scheduling_poll_s: when Ray Data's scheduling loop wakes to hand on finished work: "auto" (as soon as
        a task finishes; see `ray_scheduling`), or a fixed poll in seconds (None: Ray's own 0.1 s).
    """

    def __init__(
        self,
        execution_mode: str = "streaming",
        num_cpus: int | None = None,
        max_workers_per_stage: int | None = None,
        max_worker_restarts: int = 3,
        tasks_per_block: int | None = None,
        show_progress: bool = False,
        address: str | None = None,
        scheduling_poll_s: float | str | None = "auto",
        runtime_env: dict | None = None,
        follow_cluster: bool | None = None,
        resource_wait_s: float = 600.0,
    ):
        if execution_mode not in ("streaming", "batch"):
            raise ValueError(f"execution_mode must be 'streaming' or 'batch', got {execution_mode!r}")
        if not (
            scheduling_poll_s in (None, "auto")
            or (isinstance(scheduling_poll_s, int | float) and scheduling_poll_s > 0)
        ):
            raise ValueError(
                f"scheduling_poll_s must be 'auto', None or seconds > 0, got {scheduling_poll_s!r}"
            )
        self.execution_mode = execution_mode
        self.num_cpus = num_cpus
        self.max_workers_per_stage = max_workers_per_stage
        self.max_worker_restarts = max_worker_restarts
        self.tasks_per_block = tasks_per_block
        self.show_progress = show_progress
        self.address = address
        self.scheduling_poll_s = scheduling_poll_s
        self.runtime_env = runtime_env
        self.follow_cluster = follow_cluster
        self.resource_wait_s = resource_wait_s
        self.startup_time_s = 0.0

    @property
    def follows_cluster(self) -> bool:
        """Whether pools may grow with the cluster and planning waits for resources: on a cluster this
        executor connects to (it may scale); not on the private local one (it never changes)."""
        if self.follow_cluster is not None:
            return self.follow_cluster
        return bool(self.address or os.environ.get("RAY_ADDRESS"))

    def _wait_for_resources(self, stages: list[ProcessingStage]) -> tuple[dict, float | None]:
        """The cluster's resources once it can hold one worker of every stage: a CPU for the CPU stages
        (a head with none is normal) and the GPUs of the GPU stages. On a cluster that may scale this
        waits, up to `resource_wait_s`, saying which stage waits for what; then it fails naming them."""
        import ray

        deadline = time.monotonic() + (self.resource_wait_s if self.follows_cluster else 0.0)
        needs_gpu_memory = any(s.resources.gpu_memory_gb for s in stages)
        said = 0.0
        while True:
            cluster = ray.cluster_resources()
            device_memory = gpu_memory_gb() if needs_gpu_memory and cluster.get("GPU") else None
            short = _shortfall(stages, cluster, device_memory)
            if not short:
                return cluster, device_memory
            now = time.monotonic()
            if now >= deadline:
                waited = f" after waiting {self.resource_wait_s:g} s" if self.follows_cluster else ""
                raise RuntimeError(f"the cluster cannot run this pipeline{waited}: {'; '.join(short)}")
            if now - said >= 30.0:
                logger.warning(
                    "waiting up to %.0f s for the cluster to grow: %s", deadline - now, "; ".join(short)
                )
                said = now
            time.sleep(1.0)

    def execute(self, stages: list[ProcessingStage], initial_tasks: list[Task]) -> RunResult:
        import ray
        import ray.data
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        self.startup_time_s = ensure_ray(self.num_cpus, self.address, runtime_env=self.runtime_env)
        t0 = time.perf_counter()
        dead_before = _dead_nodes(ray)
        cluster, device_memory = self._wait_for_resources(stages)
        plans = plan_stages(
            stages,
            cluster.get("CPU", 1.0),
            cluster.get("GPU", 0.0),
            device_memory,
            self.max_workers_per_stage,
        )

        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = self.show_progress
        ctx.print_on_execution_start = self.show_progress
        if not self.show_progress:  # Ray Data logs every dataset start/finish at INFO
            logging.getLogger("ray.data").setLevel(logging.WARNING)
            # ... and warns once that the bars are off, which is this option's whole point.
            logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)
        ctx.execution_options.preserve_order = False
        # Grow a pool as soon as all its actors are busy (Ray's default waits for 1.75 tasks per actor,
        # which a pipeline of a few heavy tasks, like videos, never reaches: one worker would do it all).
        ctx.autoscaling_config.actor_pool_util_upscaling_threshold = 1.0
        # ... and shrink it only when none of its actors has work. Ray's default (half of them idle) took
        # away the spare that the rule above had just started, over and over; each new actor ran the
        # stage's setup (a model load) again.
        ctx.autoscaling_config.actor_pool_util_downscaling_threshold = 0.0
        # Grow a pool by utilization, not by the blocks queued before it: Ray Data 2.60's default
        # (BACKLOG_AWARE) sized the pool of a model stage to 16 actors for one video on a cluster this
        # executor follows (its pools have no upper size), because 15 blocks waited in its queue; those
        # blocks hold whole tasks, or none. The variable is read when each run starts; a value set by the
        # user is kept.
        os.environ.setdefault(ACTOR_AUTOSCALER_ENV, "DEFAULT")
        # Ray Data's per-operator reservations split the CPUs between operators and admit one task of a
        # Ray-task stage until its first one finishes (measured: the second of 2 workers started 1.09 s
        # late, and 200 x 50 ms tasks took 6.83 s instead of 5.65 s). plan_stages already sizes every
        # pool so that all stages fit at once, which is what the reservations are there to ensure.
        ctx.op_resource_reservation_enabled = False
        # Ray Data holds back an operator's outputs while its consumer holds few bytes. Our last stage
        # emits small task records that `take_all` keeps, so that policy stalled the writer until every
        # clip was encoded (and the encoders' outputs piled up in the object store meanwhile). The
        # object-store budget policy still bounds what is in flight.
        ctx.downstream_capacity_backpressure_ratio = None
        # Ray Data's memory warning compares a worker process's whole USS (PyAV, Arrow and model imports
        # included) with a per-CPU default scaled by the task's CPU request, which plan_stages shrinks for
        # scheduling: every light stage of a long run was reported as using "too much" memory.
        detectors = getattr(ctx, "issue_detectors_config", None)
        if detectors is not None and hasattr(detectors, "high_memory_detector_config"):
            detectors.high_memory_detector_config.detection_time_interval_s = -1
        ray_scheduling.configure(ctx, self.scheduling_poll_s)
        ctx.log_internal_stack_trace_to_stdout = False
        # A block whose worker died on every retry is dropped, not the run: the ledger names its tasks.
        ctx.max_errored_blocks = -1
        # On the driver's node: a node lost mid-run must not take the bookkeeping with it (measured: the
        # ledger on a worker node that died failed every task of the run after it).
        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
        ledger = (
            ray.remote(num_cpus=0, max_restarts=0)(CrashLedger).options(scheduling_strategy=here).remote()
        )

        rows_per_block = self._rows_per_block(len(initial_tasks), cluster.get("CPU", 1.0))
        num_blocks = max(1, math.ceil(len(initial_tasks) / rows_per_block))
        ds = ray.data.from_items([{"item": b} for b in _pack(initial_tasks)], override_num_blocks=num_blocks)
        run_key = f"{os.getpid()}-{time.time_ns()}"
        # The first stage can never have more tasks at once than there are input blocks.
        plans[0] = replace(plans[0], max_workers=min(plans[0].max_workers, num_blocks))
        plans[0] = replace(plans[0], initial_workers=min(plans[0].initial_workers, plans[0].max_workers))
        for group in fuse_stages(stages, plans, self.execution_mode == "streaming"):
            stage, plan = stages[group[0]], plans[group[0]]
            with warnings.catch_warnings():
                # Ray 2.60 deprecates **ray_remote_args but has no named parameter for restarts yet.
                warnings.simplefilter("ignore", DeprecationWarning)
                if needs_actor(stage):
                    ds = self._map_actor_stage(
                        ray, ds, stage, plan, f"{run_key}-{group[0]}", rows_per_block, ledger
                    )
                else:
                    ds = self._map_task_stages(
                        ray, ds, [stages[i] for i in group], [plans[i] for i in group], rows_per_block, ledger
                    )
            stage = stages[group[-1]]
            if fans_out_hint(stage) is not False:
                # One input may become many tasks in one block; split it so they spread over the workers.
                ds = _split_blocks(ds, rows_per_block)
            if self.execution_mode == "batch":
                ds = ds.materialize()
        items = []
        try:
            for row in ds.iter_rows():  # as take_all does, handing each finished task on as it arrives
                item = _unpack([row["item"]])[0]
                self._emit([item])
                items.append(item)
            lost, faults, actors = ray.get(ledger.report.remote())
            items += lost_task_failures(lost)
        finally:
            ray.kill(ledger)
        result = collect(items, [s.name for s in stages], time.perf_counter() - t0, self.startup_time_s)
        for name, count in actors.items():
            result.stage_stats[name].actors_started = count
        result.faults = {**faults, "lost_nodes": len(_dead_nodes(ray) - dead_before)}
        if any(result.faults.values()):
            logger.warning(
                "workers died: %d nodes lost, %d actors restarted, %d tasks retried and finished, %d lost",
                result.faults["lost_nodes"],
                faults["restarted_actors"],
                faults["retried_tasks"],
                faults["lost_tasks"],
            )
        return result

    def _rows_per_block(self, num_tasks: int, cluster_cpus: float) -> int:
        """Tasks that travel together. Every block costs a scheduling round trip (0.15-0.3 s measured
        between one block's end and the next one's start on a worker), so small tasks must share blocks;
        but enough blocks (4 per CPU) must remain to keep every worker busy to the end. Heavy tasks such
        as videos are few, so they still travel one per block."""
        if self.tasks_per_block:
            return self.tasks_per_block
        return max(1, math.ceil(num_tasks / max(1.0, cluster_cpus * BLOCKS_PER_CPU)))

    def _map_actor_stage(
        self,
        ray: Any,
        ds: Any,
        stage: ProcessingStage,
        plan: StagePlan,
        setup_key: str,
        rows_per_block: int,
        ledger: Any,
    ) -> Any:
        return ds.map_batches(
            _actor_class(stage, setup_key, float(stage.resources.cpus), plan.num_gpus, ledger),
            compute=ray.data.ActorPoolStrategy(
                min_size=plan.min_workers,
                max_size=None if self.follows_cluster else plan.max_workers,  # grows as nodes join
                initial_size=plan.initial_workers,
                # One task at a time per actor: a queued task waits for the actor it was sent to even
                # when another is idle (measured: one of two transcoding actors idle for the last 21 s).
                max_tasks_in_flight_per_actor=1,
            ),
            # Ray Data hands each pool actor its arguments as object refs, so with restarts on, Ray's core
            # worker logs one E-line per run ("constructor arguments in the object store and
            # max_restarts > 0", ray-project/ray#53727). It comes from C++ and cannot be filtered; Ray
            # Data holds those refs for the operator's life, so the restarts it warns about do work.
            max_restarts=self.max_worker_restarts,
            max_task_retries=self.max_worker_restarts,
            **self._map_args([stage], plan, rows_per_block),
        )

    def _map_task_stages(
        self,
        ray: Any,
        ds: Any,
        stages: list[ProcessingStage],
        plans: list[StagePlan],
        rows_per_block: int,
        ledger: Any,
    ) -> Any:
        plan = replace(
            plans[0],
            num_cpus=max(p.num_cpus for p in plans),
            max_workers=min(p.max_workers for p in plans),
        )
        return ds.map_batches(
            _task_function(stages, plan.num_gpus, ledger),
            compute=ray.data.TaskPoolStrategy(size=None if self.follows_cluster else plan.max_workers),
            max_retries=self.max_worker_restarts,
            **self._map_args(stages, plan, rows_per_block),
        )

    @staticmethod
    def _map_args(stages: list[ProcessingStage], plan: StagePlan, rows_per_block: int) -> dict[str, Any]:
        return {
            # A stage sees whole blocks; StageRunner cuts them into `stage.batch_size` chunks.
            "batch_size": max(1, rows_per_block, *(stage.batch_size for stage in stages)),
            "batch_format": "numpy",
            "zero_copy_batch": True,
            "num_cpus": plan.num_cpus,
            "num_gpus": plan.num_gpus or None,
            "resources": plan.resources or None,
            # The storage configuration of the moment, also when it was set after Ray started (a Dagster
            # run's second batch, a notebook): Ray merges these env_vars into the job's runtime env.
            **(
                {"runtime_env": {"env_vars": storage.current().worker_env()}}
                if STORAGE_ENV in os.environ
                else {}
            ),
        }
