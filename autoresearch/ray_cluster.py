"""A real Ray cluster of several nodes on this machine's loopback (tests, benchmarks, trying
`--backend ray --address` before pointing it at a real cluster).

Each node is `ray start ... --block` in its own process group (its own session), so one
node can be killed whole — raylet, object store and its task workers — with one
`killpg`, as a machine dying would, and `stop()` ends exactly the processes this object
started (never `ray stop`, which would end every Ray on the machine). Every node gets
disjoint ports and its own `TMPDIR` (so the trial folders of a node are findable), and
all of them share one fresh auth token (`RAY_AUTH_MODE=token`, `RAY_AUTH_TOKEN_PATH`):
Ray 2.60 switches to token auth when it finds a token file, and a token left in
`~/.ray` by another local Ray must neither let us in nor lock us out.
"""

from __future__ import annotations

import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

START_TIMEOUT = 180.0  # generous: a loaded 2-core machine starts a raylet slowly


class ClusterError(RuntimeError):
    """A node did not start or join in time."""


@dataclass
class Node:
    name: str
    proc: subprocess.Popen
    tmpdir: Path
    log: Path

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ray_cli() -> list[str]:
    # the `ray` of this interpreter, wherever its console script is
    return [sys.executable, "-c", "from ray.scripts.scripts import main; main()"]


class LoopbackCluster:
    """`head()` first, then `add_node()`; `address` is what `--address` takes."""

    def __init__(self, root: str | Path, cpus_per_node: int = 1) -> None:
        self.root = Path(root)  # keep it short: Ray's socket paths must stay < 108 bytes
        self.root.mkdir(parents=True, exist_ok=True)
        self.cpus = cpus_per_node
        token = self.root / "auth_token"
        token.write_text(secrets.token_hex(32))
        token.chmod(0o600)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        self.env.update(
            RAY_AUTH_MODE="token",
            RAY_AUTH_TOKEN_PATH=str(token),
            RAY_USAGE_STATS_ENABLED="0",
        )
        self.nodes: list[Node] = []
        self.address = ""
        self._worker_port = random.randrange(20_000, 40_000, 200)

    def _start(self, name: str, extra: list[str], cpus: int) -> Node:
        tmp = self.root / name
        tmp.mkdir(exist_ok=True)
        ports = {
            "--node-manager-port": _free_port(),
            "--object-manager-port": _free_port(),
            "--dashboard-agent-listen-port": _free_port(),
            "--dashboard-agent-grpc-port": _free_port(),
            "--runtime-env-agent-port": _free_port(),
            "--metrics-export-port": _free_port(),
            "--min-worker-port": self._worker_port,
            "--max-worker-port": self._worker_port + 99,
        }
        self._worker_port += 100
        cmd = [*_ray_cli(), "start", *extra, "--node-ip-address=127.0.0.1",
               f"--num-cpus={cpus}", "--num-gpus=0",
               f"--object-store-memory={200 * 2**20}", "--disable-usage-stats", "--block",
               *(f"{k}={v}" for k, v in ports.items())]  # fmt: skip
        env = dict(self.env, TMPDIR=str(tmp))
        log = self.root / f"{name}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        node = Node(name, proc, tmp, log)
        self.nodes.append(node)
        return node

    def _start_and_wait(self, name: str, extra: list[str], cpus: int) -> Node:
        """Start a node and wait until the head counts it; once more if it gave up.

        `ray start` waits a fixed 30 s for its raylet to register and then exits; on a
        loaded 2-core machine that can happen, and a second start usually gets through.
        """
        node = self._start(name, extra, cpus)
        try:
            self.wait_for_nodes(sum(n.alive for n in self.nodes))
        except ClusterError:
            if node.alive:  # alive but not counted in time: a real problem
                raise
            self.kill(node)  # its group's stragglers
            self.nodes.remove(node)
            node = self._start(name, extra, cpus)
            self.wait_for_nodes(sum(n.alive for n in self.nodes))
        return node

    def head(self, cpus: int | None = None) -> str:
        """Start the head (`cpus` 0: a head that runs no trial); returns the address."""
        port = _free_port()
        self.address = f"127.0.0.1:{port}"
        self._start_and_wait("head", ["--head", f"--port={port}", "--include-dashboard=false",
                                      f"--temp-dir={self.root / 'ray'}"],
                             self.cpus if cpus is None else cpus)  # fmt: skip
        return self.address

    def add_node(self) -> Node:
        if not self.address:
            raise ClusterError("start the head first")
        name = f"node{len(self.nodes)}"
        return self._start_and_wait(name, [f"--address={self.address}"], self.cpus)

    def alive_nodes(self) -> int:
        """Nodes the head reports alive (asked from a short-lived driver process, so this
        process never connects to Ray and keeps no token cached)."""
        code = (
            f"import ray; ray.init(address='{self.address}', log_to_driver=False); "
            "print(sum(n['Alive'] for n in ray.nodes()))"
        )
        env = dict(self.env, RAY_ADDRESS="")
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
        )
        try:
            return int(out.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return 0

    def wait_for_nodes(self, count: int, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = [n for n in self.nodes if not n.alive]
            if dead:
                raise ClusterError(f"{dead[0].name} exited: {dead[0].log.read_text()[-2000:]}")
            if self.alive_nodes() >= count:
                return
            time.sleep(2.0)
        raise ClusterError(f"fewer than {count} Ray nodes alive after {timeout:.0f} s")

    def kill(self, node: Node) -> None:
        """The node dies as a machine would: SIGKILL to its whole process group."""
        try:
            os.killpg(node.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        node.proc.wait()

    def stop(self) -> None:
        """End the nodes this object started, workers first, the head last."""
        for node in reversed(self.nodes):
            if node.alive:
                os.killpg(node.proc.pid, signal.SIGTERM)
                try:
                    node.proc.wait(timeout=10)  # Ray drains for up to 30 s; no need here
                except subprocess.TimeoutExpired:
                    pass
            try:
                os.killpg(node.proc.pid, signal.SIGKILL)  # stragglers of the group
            except ProcessLookupError:
                pass
            node.proc.wait()

    def __enter__(self) -> LoopbackCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
