"""A worker node lost mid-step (issue #14, items 4-5), on a real multi-node Ray cluster on this machine: a
head with no CPUs and two 1-CPU nodes. The raylet of one node is SIGKILLed while the clips step runs: the
step completes on the other with the rows and media an uninterrupted run gives, no clip lost or written
twice, and its summary counts the lost node."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.cluster import start_node, stop_nodes
from tests.core.conftest import VIDEOS, batch_settings, clip_rows, media, stored_tasks
from tests.ports import free_ports

ROOT = Path(__file__).resolve().parents[2]
WORKER_PORTS = 30000  # 30000-32999: this test's nodes' worker ports (test_cluster's use 26000-28999)
DRIVER = """
import json, sys
from curator_core import RayExecutor
from curator_core.batches import BatchSettings, run_step
settings = BatchSettings.from_json(open(sys.argv[1]).read())
summary = run_step("clips", "b", settings, RayExecutor(address=sys.argv[2]))
with open(sys.argv[3], "w") as out:
    json.dump({"faults": summary.faults, "tables": summary.tables, "failures": summary.failures}, out)
"""
# Ray declares a node dead after missed health checks: seconds here, not the default half minute.
FAST_HEALTH_CHECKS = {"RAY_health_check_period_ms": "1000", "RAY_health_check_failure_threshold": "3",
                      "RAY_health_check_timeout_ms": "1000"}  # fmt: skip


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "CURATOR_RAY_TMPDIR")}
    return {**env, **FAST_HEALTH_CHECKS, "RAY_AUTH_MODE": "disabled", "PYTHONPATH": str(ROOT)}


def _raylet_pid(temp: Path) -> int:
    out = subprocess.run(["pgrep", "-f", f"raylet.*{temp}"], capture_output=True, text=True).stdout.split()
    assert out, f"no raylet running under {temp}"
    return int(out[0])


def test_a_node_lost_mid_step_costs_no_clip_and_is_counted(whole, landing, tmp_path):
    whole_root, whole = whole
    head_port = free_ports(1)[0]
    short = Path(tempfile.mkdtemp(prefix="cl-"))  # Ray's socket paths must stay under 107 bytes
    temps = [short / name for name in ("head", "w1", "w2")]
    root = tmp_path / "cluster"
    root.mkdir()
    settings = batch_settings(landing, root)
    (root / "settings.json").write_text(settings.to_json())
    try:
        for node, (temp, cpus) in enumerate(zip(temps, (0, 1, 1), strict=True)):
            done = start_node(temp, cpus, node, WORKER_PORTS, _env(), head_port, head=node == 0)
            assert done.returncode == 0, done.stderr[-2000:]
        log = root / "driver.log"
        with open(log, "w") as out:
            driver = subprocess.Popen(
                [sys.executable, "-c", DRIVER, str(root / "settings.json"), f"127.0.0.1:{head_port}",
                 str(root / "summary.json")],
                cwd=ROOT, env=_env(), stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.time() + 300
        while stored_tasks(root) < 3:  # part way: both nodes are encoding
            assert driver.poll() is None and time.time() < deadline, log.read_text()[-3000:]
            time.sleep(0.1)
        os.kill(_raylet_pid(temps[2]), signal.SIGKILL)
        assert driver.wait(timeout=600) == 0, log.read_text()[-4000:]
        summary = json.loads((root / "summary.json").read_text())
    finally:
        stop_nodes(temps)
        shutil.rmtree(short, ignore_errors=True)
    assert summary["faults"]["lost_nodes"] == 1, summary
    assert summary["tables"] == whole.tables and summary["failures"] == whole.failures, summary
    assert clip_rows(root) == clip_rows(whole_root)
    assert media(root) == media(whole_root)
    assert len({r["source_uri"] for r in clip_rows(root)}) == VIDEOS
