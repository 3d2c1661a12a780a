"""The research loop end to end: kill -9 mid-trial, resume, parallel rounds, status, export.

Real parts throughout: the runner is a separate `robo-agent research run` process, the
trials are real train.py runs (tiny budgets) scored by the frozen evaluator process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from robo_agent.autoresearch.workspace import Workspace

from robo_agent.policy import OnnxPolicy

pytestmark = [pytest.mark.research, pytest.mark.slow]


def _run_cmd(ws: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "robo_agent.cli", "research", "run", str(ws), "--quiet",
            "--seed", "0", *extra]  # fmt: skip


def _wait_for(predicate, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _processes_using(path: Path) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if any(str(path) in part for part in (p.info["cmdline"] or [])):
                found.append(p)
        except psutil.Error:
            continue
    return found


def test_kill_9_mid_trial_then_resume_loses_and_duplicates_nothing(
    workspace: Path, tmp_path: Path
) -> None:
    ws = Workspace(workspace)
    log = open(tmp_path / "runner.log", "wb")
    runner = subprocess.Popen(
        _run_cmd(workspace, "--trials", "3", "--parallel", "2"), stdout=log, stderr=log
    )
    pending = ws.state / "pending.json"
    logs = [ws.trial_dir(t) / "r0" / "train.log" for t in (1, 2)]
    _wait_for(lambda: pending.exists() and all(p.exists() for p in logs), 60, "round 1 to train")
    time.sleep(1.0)  # both candidates are mid-training now
    in_flight = json.loads(pending.read_text())
    assert [e["trial"] for e in in_flight] == [1, 2]
    runner.send_signal(signal.SIGKILL)
    runner.wait(10)
    # the training processes die with the runner (PR_SET_PDEATHSIG), nothing lingers
    _wait_for(lambda: not _processes_using(workspace), 10, "trial processes to exit")
    assert [r.trial for r in ws.ledger.rows()] == [0]

    proc = subprocess.run(
        _run_cmd(workspace, "--trials", "3", "--parallel", "2"),
        capture_output=True, text=True, timeout=150, check=False,
    )  # fmt: skip
    log.close()
    assert proc.returncode == 0, proc.stderr + (tmp_path / "runner.log").read_text()
    rows = ws.ledger.rows()
    assert [r.trial for r in rows] == [0, 1, 2, 3]
    # the resumed trials are the very commits that were in flight when killed
    assert {r.trial: r.commit for r in rows[1:3]} == {e["trial"]: e["commit"] for e in in_flight}
    assert rows[0].status == "baseline"
    assert all(r.status in ("keep", "discard", "crash", "timeout") for r in rows[1:])
    assert all(r.proposer == "optuna" and r.parent for r in rows[1:])
    for r in rows[1:]:
        assert ws.repo.resolve(f"refs/trials/{r.trial}") == r.commit
        assert ws.repo.changed_files(r.parent, r.commit) == ["train.py"]
        if r.status in ("keep", "discard"):
            assert r.margin > 0 and r.incumbent == pytest.approx(rows[0].score)
    kept = [r for r in rows if r.status in ("baseline", "keep")]
    assert ws.repo.head() == kept[-1].commit and ws.repo.dirty_files() == []
    assert not pending.exists()
    assert (workspace / "progress.png").stat().st_size > 1000

    status = subprocess.run(
        [sys.executable, "-m", "robo_agent.cli", "research", "status", str(workspace)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert status.returncode == 0 and f"best: trial {kept[-1].trial} commit" in status.stdout
    assert "smallest detectable gain: " in status.stdout and "CPU s" in status.stdout

    out = tmp_path / "exported"
    export = subprocess.run(
        [sys.executable, "-m", "robo_agent.cli", "export", str(workspace), "--trial", "0",
         "--out", str(out)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert export.returncode == 0, export.stderr
    # the tiny test budget leaves the policy far below the export threshold: it says so
    low = rows[0].score < 0.5
    assert (f"warning: trial 0 scores {rows[0].score:.3f}" in export.stderr) == low
    policy = OnnxPolicy(out)
    prov = policy.spec.provenance
    assert prov.workspace_commit == rows[0].commit and prov.trial == 0
    assert prov.score == pytest.approx(rows[0].score)
    assert prov.evaluation_seeds == [] and prov.training_seconds > 0  # the seeds stay secret
    assert prov.evaluation_episodes == ws.config.eval_episodes
    assert policy.spec.joint_names[0] == "panda_joint1" and policy.spec.control_dt > 0
    again = subprocess.run(
        [sys.executable, "-m", "robo_agent.cli", "export", str(workspace), "--out", str(out)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert again.returncode == 2 and "not empty" in again.stderr
    assert sorted(os.listdir(out)) == ["policy.json", "policy.onnx"]
