"""A real Ray cluster of several nodes on this machine, for tests and benchmarks.

Each node is a ``ray start --block`` process in a session of its own, so a node is
killed (raylet, agents and the workers that fate-share with its raylet) with one
signal to its process group, and nothing else Ray runs on the machine is touched
(``ray stop`` would stop every Ray process of the user).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

RAY = str(Path(sys.executable).with_name("ray"))

# The cluster notices a killed node after a few seconds instead of half a minute.
FAST_FAILURE_DETECTION = {
    "RAY_health_check_period_ms": "1000",
    "RAY_health_check_failure_threshold": "3",
    "RAY_health_check_initial_delay_ms": "1000",
}


# A test cluster on 127.0.0.1: no usage report, no token (Ray 2.60 turns token auth on
# for `ray start` once ~/.ray/auth_token exists, which its own `ray.init()` writes).
LOCAL_ONLY = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Node:
    """One ``ray start`` process and what it was started with."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def kill(self) -> None:
        """Kill the node's whole process group at once, as a lost machine would vanish."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)


@dataclass
class Cluster:
    """A head node and worker nodes; ``address`` is what ``--ray-address`` takes."""

    address: str
    temp_dir: Path
    nodes: list[Node] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    started_s: float = 0.0

    def add_node(self, name: str, num_cpus: int, resources: dict[str, float]) -> Node:
        args = [
            RAY,
            "start",
            "--block",
            f"--address={self.address}",
            "--node-ip-address=127.0.0.1",
            f"--num-cpus={num_cpus}",
            "--num-gpus=0",
            f"--resources={json.dumps(resources)}",
            "--disable-usage-stats",
            f"--dashboard-agent-listen-port={free_port()}",
            f"--min-worker-port={free_port_range()}",
            f"--max-worker-port={free_port_range.last}",
        ]
        return self._spawn(name, args)

    def _spawn(self, name: str, args: list[str]) -> Node:
        log = self.temp_dir / f"{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                args, stdout=out, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
            )
        node = Node(name, proc, log)
        self.nodes.append(node)
        return node

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    def wait_for_nodes(self, count: int, timeout_s: float = 180.0) -> None:
        """Until ``count`` nodes are alive (asked from a separate process: a test process
        that stays connected to Ray would be a second driver)."""
        script = (
            "import ray, sys, time\n"
            f"ray.init(address={self.address!r}, logging_level='ERROR')\n"
            f"deadline = time.time() + {timeout_s}\n"
            f"while sum(n['Alive'] for n in ray.nodes()) < {count}:\n"
            "    if time.time() > deadline: sys.exit(1)\n"
            "    time.sleep(0.5)\n"
        )
        checker = subprocess.Popen(
            [sys.executable, "-c", script],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            while checker.poll() is None:
                dead = [n.name for n in self.nodes if n.proc.poll() is not None]
                if dead:
                    raise RuntimeError(f"Ray node {dead[0]} exited:\n{self.logs()}")
                time.sleep(0.5)
        finally:
            if checker.poll() is None:
                checker.kill()
            checker.wait()
        if checker.returncode != 0:
            raise RuntimeError(f"{count} Ray nodes did not come up:\n{self.logs()}")

    def logs(self) -> str:
        return "\n".join(
            f"--- {n.name}\n{n.log.read_text(errors='replace')[-3000:]}" for n in self.nodes
        )

    def stop(self) -> None:
        # Workers first, then the head: the head's GCS is what the others report to.
        for node in reversed(self.nodes):
            if node.proc.poll() is None:
                os.killpg(node.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for node in reversed(self.nodes):
            with suppress(subprocess.TimeoutExpired):
                node.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            if node.proc.poll() is None:
                os.killpg(node.proc.pid, signal.SIGKILL)
                node.proc.wait(timeout=30)
            # What the group leader left behind (agents reparented to init).
            with suppress(ProcessLookupError):
                os.killpg(node.proc.pid, signal.SIGKILL)


class _PortRange:
    """Disjoint worker-port ranges per node (two raylets on one machine must not share)."""

    def __init__(self) -> None:
        self.next = 20000 + (os.getpid() % 200) * 100
        self.last = 0

    def __call__(self) -> int:
        first = self.next
        self.last = first + 99
        self.next += 100
        return first


free_port_range = _PortRange()


@contextmanager
def ray_cluster(
    head_cpus: int = 1,
    head_resources: dict[str, float] | None = None,
    workers: tuple[tuple[str, int, dict[str, float]], ...] = (),
) -> Iterator[Cluster]:
    """A head node and ``workers`` (name, CPUs, custom resources); always stopped at the end."""
    temp_dir = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # Ray's socket paths are short
    env = {**os.environ, **FAST_FAILURE_DETECTION, **LOCAL_ONLY}
    env.pop("RAY_ADDRESS", None)
    port = free_port()
    cluster = Cluster(address=f"127.0.0.1:{port}", temp_dir=temp_dir, env=env)
    started = time.monotonic()
    try:
        cluster._spawn(
            "head",
            [
                RAY,
                "start",
                "--head",
                "--block",
                f"--port={port}",
                "--node-ip-address=127.0.0.1",
                f"--num-cpus={head_cpus}",
                "--num-gpus=0",
                f"--resources={json.dumps(head_resources or {'head_node': 1})}",
                "--include-dashboard=false",
                "--disable-usage-stats",
                f"--temp-dir={temp_dir}",
                f"--dashboard-agent-listen-port={free_port()}",
                f"--min-worker-port={free_port_range()}",
                f"--max-worker-port={free_port_range.last}",
            ],
        )
        cluster.wait_for_nodes(1)
        for name, cpus, resources in workers:
            cluster.add_node(name, cpus, resources)
        cluster.wait_for_nodes(1 + len(workers))
        cluster.started_s = time.monotonic() - started
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(temp_dir, ignore_errors=True)
