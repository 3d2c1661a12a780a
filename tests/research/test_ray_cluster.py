"""`research run --backend ray --address` against a real two-node Ray cluster.

The cluster is two `ray start ... --block` processes on this machine (a head and one
worker node, each its own process group, one CPU each, sharing a fresh auth token). The
worker node is killed whole (SIGKILL to its process group) while it trains a trial: the
run must go on, retry that trial on the head, keep the ledger whole, and leave no process
of the dead node behind — neither `train.py` nor its forked sim workers.
No timing is asserted; the timeouts only bound a hang (the machine is shared).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from robo_agent.autoresearch.ray_cluster import LoopbackCluster
from robo_agent.autoresearch.workspace import Workspace

pytestmark = [pytest.mark.research, pytest.mark.slow, pytest.mark.timeout(1200)]


def _procs_of(tmpdir: Path) -> dict[int, str]:
    """pid -> command line of every live process started under a node (its TMPDIR)."""
    marker = f"TMPDIR={tmpdir}".encode()
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            env = (entry / "environ").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[-1].split()[0]
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in env and state != "Z":
            found[int(entry.name)] = cmd
    return found


@pytest.fixture
def cluster() -> Iterator[LoopbackCluster]:
    pytest.importorskip("ray")
    root = tempfile.mkdtemp(prefix="rc", dir="/tmp")  # short: Ray's socket paths < 108 bytes
    c = LoopbackCluster(root, cpus_per_node=1)
    try:
        c.head()
        c.add_node()
        yield c
    finally:
        c.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_node_death_mid_trial_is_retried_and_leaves_no_orphans(
    workspace: Path, cluster: LoopbackCluster, tmp_path: Path
) -> None:
    worker = cluster.nodes[1]
    out = tmp_path / "driver.log"
    cmd = [sys.executable, "-m", "robo_agent.cli", "research", "run", str(workspace), "--quiet",
           "--trials", "2", "--parallel", "2", "--proposer", "random", "--seed", "3",
           "--backend", "ray", "--address", cluster.address]  # fmt: skip
    with open(out, "wb") as log:
        driver = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env=cluster.env, start_new_session=True
        )
    try:
        # both trials start at once, one per node; wait until the worker node's train.py
        # has forked its sim worker (same command line), then kill the node mid-training
        deadline = time.monotonic() + 600
        while sum("train.py" in c for c in _procs_of(worker.tmpdir).values()) < 2:
            assert driver.poll() is None, out.read_text()[-3000:]
            assert time.monotonic() < deadline, "no trial trained on the worker node"
            time.sleep(0.2)
        cluster.kill(worker)

        deadline = time.monotonic() + 120
        while _procs_of(worker.tmpdir) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not _procs_of(worker.tmpdir), "processes outlived their node"

        rc = driver.wait(timeout=900)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, 9)
            driver.wait()
    text = out.read_text()
    assert rc == 0, text[-3000:]
    rows = Workspace(workspace).ledger.rows()
    assert [r.trial for r in rows] == [0, 1, 2], text[-3000:]
    ray_logs = {r.trial: (Path(workspace) / ".research" / "trials").glob(f"*{r.trial}/ray.log")
                for r in rows[1:]}  # fmt: skip
    logs = {t: next(iter(g)).read_text() for t, g in ray_logs.items()}
    retried = [t for t, log in logs.items() if "attempt 2: ran on" in log]
    assert len(retried) == 1, logs
    assert "attempt 1: " in logs[retried[0]] and "Error" in logs[retried[0]], logs
    for row in rows[1:]:  # the head was alive: the retry ran to the end
        assert row.status in ("keep", "discard"), row.description
