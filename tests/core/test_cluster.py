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
stages = [NodesAtStartStage(fanout=12, started=sys.argv[2]), SleepStage(seconds=2.0), NodeRecorderStage()]
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


def test_a_gpu_stage_waits_for_a_gpu_node_that_joins_and_runs_there(tmp_path):
    head_port = free_ports(1)[0]
    short = Path(tempfile.mkdtemp(prefix="cc-"))  # Ray's socket paths must stay under 107 bytes
    temps = [short / name for name in ("head", "cpu", "gpu")]
    try:
        for node, (temp, cpus) in enumerate(zip(temps[:2], (0, 1), strict=True)):
            done = start_node(temp, cpus, node, WORKER_PORTS, _env(), head_port, head=node == 0)
            assert done.returncode == 0, done.stderr[-2000:]
        address = f"127.0.0.1:{head_port}"
        # No GPU anywhere, and the cluster may not grow in time: the run fails, naming the stage.
        failing = _driver(address, "3", tmp_path / "failing.log")
        assert failing.wait(timeout=300) != 0
        assert (
            "after waiting 3 s: stage 'on_gpu' needs 1 GPU(s) per worker"
            in (tmp_path / "failing.log").read_text()
        )
        # A run that waits: a GPU node joins while it does, and the GPU stage runs there.
        log = tmp_path / "waiting.log"
        waiting = _driver(address, "240", log)
        deadline = time.time() + 120
        while "waiting up to" not in log.read_text():
            assert waiting.poll() is None and time.time() < deadline, log.read_text()[-2000:]
            time.sleep(0.5)
        done = start_node(temps[2], 1, 2, WORKER_PORTS, _env(), head_port, gpus=1)
        assert done.returncode == 0, done.stderr[-2000:]
        out, _ = waiting.communicate(timeout=300)
        assert waiting.returncode == 0, log.read_text()[-3000:]
        nodes = json.loads(out.strip().splitlines()[-1])
        assert "stage 'on_gpu' needs 1 GPU(s)" in log.read_text()  # the wait named the stage
        assert nodes["on_gpu"] == nodes["gpu_nodes"] and len(nodes["gpu_nodes"]) == 1  # ran on the new node
    finally:
        stop_nodes(temps)
        shutil.rmtree(short, ignore_errors=True)


def test_a_node_that_joins_mid_run_receives_tasks(tmp_path):
    head_port = free_ports(1)[0]
    short = Path(tempfile.mkdtemp(prefix="cj-"))
    temps = [short / name for name in ("head", "first", "joined")]
    try:
        for node, (temp, cpus) in enumerate(zip(temps[:2], (0, 1), strict=True)):
            done = start_node(temp, cpus, node, WORKER_PORTS, _env(), head_port, head=node == 0)
            assert done.returncode == 0, done.stderr[-2000:]
        started, log = tmp_path / "started", tmp_path / "join.log"
        # 12 tasks of 2 s: 24 s on the first node alone; the second joins once the run has fanned out.
        run = _driver(f"127.0.0.1:{head_port}", str(started), log, JOIN_DRIVER)
        deadline = time.time() + 120
        while not started.exists():
            assert run.poll() is None and time.time() < deadline, log.read_text()[-2000:]
            time.sleep(0.2)
        done = start_node(temps[2], 1, 2, WORKER_PORTS, _env(), head_port)
        assert done.returncode == 0, done.stderr[-2000:]
        out, _ = run.communicate(timeout=300)
        assert run.returncode == 0, log.read_text()[-3000:]
        tasks = json.loads(out.strip().splitlines()[-1])
        assert len(tasks) == 12
        (at_start,) = {tuple(alive) for alive, _, _ in tasks}  # the nodes alive when the run fanned out
        joined = [slept for _, node, slept in tasks if node not in at_start]
        first = [slept for _, node, slept in tasks if node in at_start]
        assert len(joined) >= 2, tasks  # the node that joined mid-run got a share of the work ...
        # ... while the first node kept working: the pool grew (a pool frozen at one worker also sends
        # tasks to the new node, one at a time)
        overlaps = [(a, b) for a in joined for b in first if a[0] < b[1] and b[0] < a[1]]
        assert overlaps, tasks
    finally:
        stop_nodes(temps)
        shutil.rmtree(short, ignore_errors=True)


@pytest.fixture(autouse=True)
def _no_local_ray_address(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
