"""Multi-node Ray clusters on this machine for the tests: every node with its own temp dir and ports."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from tests.ports import free_ports

RAY = str(Path(sys.executable).parent / "ray")
COMPONENT_PORTS = ("node-manager-port", "object-manager-port", "metrics-export-port", "runtime-env-agent-port",
                   "dashboard-agent-listen-port", "dashboard-agent-grpc-port")  # fmt: skip


def node_flags(node: int, worker_ports: int) -> list[str]:
    """Ports of node number `node`: its own 1,000-port worker range from `worker_ports`, and component
    ports outside every node's range."""
    low = worker_ports + node * 1000
    ports: list[int] = []
    while len(ports) < len(COMPONENT_PORTS):
        ports += [p for p in free_ports(len(COMPONENT_PORTS)) if not worker_ports <= p < worker_ports + 4000]
    return [*(f"--{n}={p}" for n, p in zip(COMPONENT_PORTS, ports, strict=False)),
            f"--min-worker-port={low}", f"--max-worker-port={low + 999}"]  # fmt: skip


def start_node(
    temp: Path, cpus: int, node: int, worker_ports: int, env: dict, head_port: int, head: bool = False,
    gpus: int = 0, extra: list[str] | None = None,
) -> subprocess.CompletedProcess:  # fmt: skip
    """`ray start` of a head (on `head_port`) or of a node joining it."""
    where = [f"--port={head_port}", "--head", "--include-dashboard=false"] if head else [
        f"--address=127.0.0.1:{head_port}"]  # fmt: skip
    return subprocess.run(
        [RAY, "start", *where, f"--num-cpus={cpus}", f"--num-gpus={gpus}", f"--temp-dir={temp}",
         "--node-ip-address=127.0.0.1", "--disable-usage-stats", *node_flags(node, worker_ports), *(extra or [])],
        env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip


def stop_nodes(temps: list[Path]) -> None:
    for signal_name in ("-TERM", "-KILL"):  # each node's processes, found by their temp dir
        for temp in reversed(temps):
            subprocess.run(["pkill", signal_name, "-f", str(temp)], check=False)
        time.sleep(2)
