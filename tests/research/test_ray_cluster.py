"""`research run --backend ray --address` against a real two-node Ray cluster.

The cluster is two `ray start ... --block` processes on this machine (a head and one
worker node, each its own process group, sharing a fresh auth token). The worker node is
killed whole (SIGKILL to its process group) while it trains a trial: the run must go on,
retry that trial on a live node or record it as `crash` with the reason, keep the ledger
whole, and leave no process of the dead node behind — neither `train.py` nor its forked
sim workers. No timing is asserted; the timeouts only bound a hang (the machine is shared).
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
from research_settings import BUDGET, TASK, TINY
from robo_agent.autoresearch.ray_cluster import LoopbackCluster
from robo_agent.autoresearch.runner import Runner
from robo_agent.autoresearch.workspace import Workspace

pytestmark = [pytest.mark.research, pytest.mark.slow, pytest.mark.timeout(1200)]


def _procs_of(tmpdir: Path) -> dict[int, str]:
    """pid -> command line of every live process started under a node: its TMPDIR is in
    the environment, or (a sandboxed train.py, whose TMPDIR is the sandbox's private /tmp)
    its command line or working directory lies under the node's TMPDIR."""
    marker = f"TMPDIR={tmpdir}".encode()
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            env = (entry / "environ").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[-1].split()[0]
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        mine = marker in env or str(tmpdir) in cmd or cwd.startswith(str(tmpdir))
        if mine and state != "Z":
            found[int(entry.name)] = cmd
    return found


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A workspace with a locally trained baseline; a generous grace, because a busy
    machine must not turn these trials into timeouts (the budget is wall-clock)."""
    settings = TINY | {"grace_seconds": 90.0}
    ws = Workspace.init(tmp_path / "ws", task=TASK, budget=BUDGET, **settings)
    runner = Runner(ws, None, live=False)
    row = runner.run_baseline()
    runner.wait_for_plot()
    assert row.status == "baseline", (ws.trial_dir(0) / "failure.log").read_text()
    return ws.path


@pytest.fixture(params=[1], ids=["head-1-cpu"])
def cluster(request: pytest.FixtureRequest) -> Iterator[LoopbackCluster]:
    """A head with `param` CPUs (0: it runs no trial) and a worker node with one CPU."""
    pytest.importorskip("ray")
    root = tempfile.mkdtemp(prefix="rc", dir="/tmp")  # short: Ray's socket paths < 108 bytes
    c = LoopbackCluster(root, cpus_per_node=1)
    try:
        c.head(cpus=request.param)
        c.add_node()
        yield c
    finally:
        c.stop()
        shutil.rmtree(root, ignore_errors=True)


def _run_and_kill_worker(
    workspace: Path, cluster: LoopbackCluster, log: Path, trials: int
) -> subprocess.CompletedProcess:
    """Run the research on the cluster, kill the worker node while it trains; check that
    nothing of the node survives; returns the finished driver's exit status and output."""
    worker = cluster.nodes[1]
    cmd = [sys.executable, "-m", "robo_agent.cli", "research", "run", str(workspace), "--quiet",
           "--trials", str(trials), "--parallel", str(trials), "--proposer", "random",
           "--seed", "3", "--backend", "ray", "--address", cluster.address]  # fmt: skip
    with open(log, "wb") as out:
        driver = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=cluster.env, start_new_session=True
        )
    try:
        # wait until the worker node's train.py has forked its sim worker (same command
        # line), then kill the node mid-training
        deadline = time.monotonic() + 600
        while sum("train.py" in c for c in _procs_of(worker.tmpdir).values()) < 2:
            assert driver.poll() is None, log.read_text()[-3000:]
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
    return subprocess.CompletedProcess(cmd, rc, log.read_text(), "")


def _ray_logs(workspace: Path) -> dict[int, str]:
    ws = Workspace(workspace)
    return {r.trial: (ws.trial_dir(r.trial) / "ray.log").read_text()
            for r in ws.ledger.rows() if r.proposer != "baseline"}  # fmt: skip


def test_node_death_mid_trial_is_retried_and_leaves_no_orphans(
    workspace: Path, cluster: LoopbackCluster, tmp_path: Path
) -> None:
    """Two trials, one per node; the worker node dies; its trial is retried on the head."""
    proc = _run_and_kill_worker(workspace, cluster, tmp_path / "driver.log", trials=2)
    assert proc.returncode == 0, proc.stdout[-3000:]
    rows = Workspace(workspace).ledger.rows()
    assert [r.trial for r in rows] == [0, 1, 2], proc.stdout[-3000:]
    logs = _ray_logs(workspace)
    retried = [t for t, log in logs.items() if "attempt 2: ran on" in log]
    assert len(retried) == 1, logs
    assert "attempt 1: NodeDiedError" in logs[retried[0]] or "Error" in logs[retried[0]], logs
    for row in rows[1:]:  # the head was alive: the retry ran to the end
        assert row.status in ("keep", "discard"), row.description


@pytest.mark.parametrize("cluster", [0], ids=["head-0-cpu"], indirect=True)
def test_no_live_node_left_records_a_crash_and_the_run_ends_cleanly(
    workspace: Path, cluster: LoopbackCluster, tmp_path: Path
) -> None:
    """The only node with a CPU dies: the trial is a `crash` naming why, the ledger whole."""
    proc = _run_and_kill_worker(workspace, cluster, tmp_path / "driver.log", trials=1)
    assert proc.returncode == 0, proc.stdout[-3000:]
    rows = Workspace(workspace).ledger.rows()
    assert [(r.trial, r.status) for r in rows] == [(0, "baseline"), (1, "crash")], rows
    assert "no live node with a CPU left" in rows[1].description, rows[1].description
    assert "ray: " in rows[1].description
