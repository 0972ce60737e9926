"""Pools that follow the cluster (issue #14, item 4), on a real multi-node Ray cluster on this machine: a
head with no CPUs and a 1-CPU node; then either a GPU node that joins while a run waits for it, or a CPU
node that joins while a run is under way. Ray is told the GPU node has a GPU (`--num-gpus=1`); the stage
only asks Ray for one, it does not use CUDA."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.cluster import start_node, stop_nodes
from tests.ports import free_ports

ROOT = Path(__file__).resolve().parents[2]
WORKER_PORTS = 26000  # 26000-28999: the three nodes' worker ports (test_storage's cluster uses 23000-24999)
DRIVER = """
import json, sys
from curator_core import Pipeline, RayExecutor, Resources
from tests.core.stages import NodeRecorderStage, NumTask
stages = [NodeRecorderStage(name="on_cpu"), NodeRecorderStage(name="on_gpu", resources=Resources(cpus=0.5, gpus=1))]
executor = RayExecutor(address=sys.argv[1], resource_wait_s=float(sys.argv[2]))
result = Pipeline("p", stages).execute(executor, [NumTask(dataset_name="n", data=i) for i in range(6)])
ran = {k: sorted({t.metadata[k] for t in result.outputs}) for k in ("on_cpu", "on_gpu")}
import ray
ran["gpu_nodes"] = [n["NodeID"] for n in ray.nodes() if n["Alive"] and n["Resources"].get("GPU")]
print(json.dumps(ran))
"""

JOIN_DRIVER = """
import json, sys
from curator_core import Pipeline, RayExecutor
from tests.core.stages import NodeRecorderStage, NodesAtStartStage, NumTask, SleepStage
stages = [NodesAtStartStage(fanout=16, started=sys.argv[2]), SleepStage(seconds=2.0), NodeRecorderStage()]
result = Pipeline("p", stages).execute(RayExecutor(address=sys.argv[1]), [NumTask(dataset_name="n", data=0)])
print(json.dumps([[t.metadata[k] for k in ("nodes_at_start", "node_recorder", "slept")] for t in result.outputs]))
"""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "CURATOR_RAY_TMPDIR")}
    return {**env, "RAY_AUTH_MODE": "disabled", "PYTHONPATH": str(ROOT)}


def _driver(address: str, arg: str, log: Path, script: str = DRIVER) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", script, address, arg], cwd=ROOT, env=_env(),
        stdout=subprocess.PIPE, stderr=open(log, "w"), text=True,
    )  # fmt: skip


class Cluster:
    """A head with no CPUs and a 1-CPU node, started once for this module; tests add nodes to it."""

    def __init__(self) -> None:
        self.head_port = free_ports(1)[0]
        self.short = Path(tempfile.mkdtemp(prefix="cc-"))  # Ray's socket paths must stay under 107 bytes
        self.temps: list[Path] = []
        self.address = f"127.0.0.1:{self.head_port}"

    def start(self, cpus: int, gpus: int = 0) -> None:
        node = len(self.temps)  # 0 is the head; each node gets its own 1,000 worker ports
        self.temps.append(self.short / f"node{node}")
        done = start_node(self.temps[-1], cpus, node, WORKER_PORTS, _env(), self.head_port, head=node == 0,
                          gpus=gpus)  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]


@pytest.fixture(scope="module")
def cluster():
    nodes = Cluster()
    try:
        nodes.start(0)
        nodes.start(1)
        yield nodes
    finally:
        stop_nodes(nodes.temps)
        shutil.rmtree(nodes.short, ignore_errors=True)


def test_a_gpu_stage_waits_for_a_gpu_node_that_joins_and_runs_there(cluster, tmp_path):
    # No GPU anywhere, and the cluster may not grow in time: the run fails, naming the stage.
    failing = _driver(cluster.address, "3", tmp_path / "failing.log")
    assert failing.wait(timeout=300) != 0
    assert (
        "after waiting 3 s: stage 'on_gpu' needs 1 GPU(s) per worker"
        in (tmp_path / "failing.log").read_text()
    )
    # A run that waits: a GPU node joins while it does, and the GPU stage runs there.
    log = tmp_path / "waiting.log"
    waiting = _driver(cluster.address, "240", log)
    deadline = time.time() + 120
    while "waiting up to" not in log.read_text():
        assert waiting.poll() is None and time.time() < deadline, log.read_text()[-2000:]
        time.sleep(0.5)
    cluster.start(1, gpus=1)
    out, _ = waiting.communicate(timeout=300)
    assert waiting.returncode == 0, log.read_text()[-3000:]
    nodes = json.loads(out.strip().splitlines()[-1])
    assert "stage 'on_gpu' needs 1 GPU(s)" in log.read_text()  # the wait named the stage
    assert nodes["on_gpu"] == nodes["gpu_nodes"] and len(nodes["gpu_nodes"]) == 1  # ran on the new node


def test_a_node_that_joins_mid_run_receives_tasks(cluster, tmp_path):
    started, log = tmp_path / "started", tmp_path / "join.log"
    # 16 tasks of 2 s on the nodes there (one or two CPUs); another joins once the run has fanned out.
    run = _driver(cluster.address, str(started), log, JOIN_DRIVER)
    deadline = time.time() + 120
    while not started.exists():
        assert run.poll() is None and time.time() < deadline, log.read_text()[-2000:]
        time.sleep(0.2)
    cluster.start(1)
    out, _ = run.communicate(timeout=300)
    assert run.returncode == 0, log.read_text()[-3000:]
    tasks = json.loads(out.strip().splitlines()[-1])
    assert len(tasks) == 16
    (start,) = {json.dumps(at_start, sort_keys=True) for at_start, _, _ in tasks}  # when it fanned out
    start = json.loads(start)
    joined = [node for _, node, _ in tasks if node not in start["alive"]]
    assert len(joined) >= 2, tasks  # the node that joined mid-run got a share of the work ...
    # ... and the pool grew: more tasks ran at once than the CPUs there at the start (a pool frozen at
    # plan time also sends tasks to the new node, but never more at once)
    events = sorted([(a, 1) for _, _, (a, _) in tasks] + [(b, -1) for _, _, (_, b) in tasks])
    running = [sum(step for _, step in events[: i + 1]) for i in range(len(events))]
    assert max(running) > start["cpus"], (start, tasks)


@pytest.fixture(autouse=True)
def _no_local_ray_address(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
