"""`robo-agent research trial`: the external proposer path (a coding agent drives git).

Covers a crash (log tail in the ledger, loop state intact), a timeout (killed at budget
plus grace), a change to a frozen file (rejected unrun) and the summary lines printed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from robo_agent.autoresearch.workspace import Workspace

from robo_agent.core.research_source import apply_values

pytestmark = [pytest.mark.research, pytest.mark.slow]


def _commit(ws: Workspace, message: str) -> str:
    ws.repo.run("commit", "-qam", message)
    return ws.repo.head()


def _trial(ws: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "robo_agent.cli", "research", "trial", str(ws), "--quiet"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_crash_is_logged_with_tail_and_branch_reset(workspace: Path) -> None:
    ws = Workspace(workspace)
    incumbent = ws.repo.head()
    source = (workspace / "train.py").read_text()
    broken = source.replace(
        "    cfg = parse_config()\n",
        "    cfg = parse_config()\n    raise RuntimeError('boom from the candidate')\n",
    )
    (workspace / "train.py").write_text(broken)
    candidate = _commit(ws, "try something that crashes")
    proc = _trial(workspace)
    assert proc.returncode == 1
    assert "status: crash" in proc.stdout and "score: nan" in proc.stdout
    row = ws.ledger.rows()[-1]
    assert (row.trial, row.status, row.commit, row.parent) == (1, "crash", candidate, incumbent)
    assert "exited with 1" in row.description
    assert "boom from the candidate" in (ws.trial_dir(1) / "failure.log").read_text()
    assert ws.repo.head() == incumbent and ws.repo.resolve("refs/trials/1") == candidate


def test_timeout_is_killed_at_cpu_budget_plus_grace(workspace: Path) -> None:
    ws = Workspace(workspace)
    source = (workspace / "train.py").read_text()
    # a busy loop that never stops on its own: its CPU time passes budget + grace
    spin = source.replace(
        "    cfg = parse_config()\n", "    cfg = parse_config()\n    while True:\n        pass\n"
    )
    (workspace / "train.py").write_text(spin)
    _commit(ws, "spin forever")
    proc = _trial(workspace)
    assert proc.returncode == 1 and "status: timeout" in proc.stdout
    row = ws.ledger.rows()[-1]
    cfg = ws.config
    assert row.status == "timeout"
    if "killed: CPU" in row.description:
        assert cfg.budget_seconds + cfg.grace_seconds <= row.cpu_seconds
        assert row.cpu_seconds < cfg.budget_seconds + cfg.grace_seconds + 2
    else:  # a loaded machine: the spin got under 1 CPU-s per s, the wall-clock limit came first
        assert "killed: wall-clock" in row.description
        limit = cfg.wall_factor * cfg.budget_seconds + cfg.grace_seconds
        assert limit <= row.train_seconds < limit + 5
        assert row.cpu_seconds < cfg.budget_seconds + cfg.grace_seconds + 2


def test_frozen_file_change_is_rejected_unrun(workspace: Path) -> None:
    ws = Workspace(workspace)
    incumbent = ws.repo.head()
    cfg = (workspace / "research.yaml").read_text()
    (workspace / "research.yaml").write_text(
        cfg.replace("budget_seconds: 6.0", "budget_seconds: 400.0")
    )
    _commit(ws, "more budget please")
    proc = _trial(workspace)
    assert proc.returncode == 1 and "status: rejected" in proc.stdout
    row = ws.ledger.rows()[-1]
    assert row.status == "rejected" and "research.yaml" in row.description
    assert not ws.trial_dir(row.trial).exists()  # never trained
    assert ws.repo.head() == incumbent


def test_valid_change_is_scored_and_prints_summary(workspace: Path) -> None:
    ws = Workspace(workspace)
    source = (workspace / "train.py").read_text()
    (workspace / "train.py").write_text(apply_values(source, {"learning_rate": 0.002}))
    candidate = _commit(ws, "higher learning rate")
    proc = _trial(workspace)
    assert proc.returncode == 0, proc.stderr
    for key in (
        "score",
        "final_distance",
        "smoothness",
        "train_seconds",
        "env_steps",
        "peak_mem_mb",
    ):
        assert f"\n{key}: " in "\n" + proc.stdout
    row = ws.ledger.rows()[-1]
    assert row.status in ("keep", "discard") and row.proposer == "external"
    assert row.description.startswith("higher learning rate")
    assert row.env_steps > 0 and row.peak_mem_mb > 50
    assert (ws.repo.head() == candidate) == (row.status == "keep")
