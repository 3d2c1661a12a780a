"""`robo-agent deploy` as a user runs it, against a real `sim_robot` in a private domain:
refused without a passing rehearsal (nothing published), a dry run that reaches only the
preview topic, and an unrehearsed run (audit-logged) that moves the arm and prints live
status lines until the runner is done."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from policy_artifacts import constant_artifact

pytestmark = pytest.mark.slow
TRAJ = "/arm_controller/joint_trajectory"
GOAL = ["0.45", "0.1", "0.3"]


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # a constant small action: the arm moves (joint 1 turns), never reaches this goal
    return constant_artifact(tmp_path_factory.mktemp("deploy") / "reach",
                             [0.3, 0, 0, 0, 0, 0, 0])


@pytest.fixture
def sim(ros_domain: int, free_domain_fn: Any, ros_process: Any, ros_probe_class: Any,
        tmp_path: Path) -> Any:
    domain = free_domain_fn(ros_domain)
    proc = ros_process.module("sim_robot", domain, tmp_path / "sim.log", robot="panda")
    probe = ros_probe_class(domain, "deploy_probe")
    assert probe.wait_for(lambda: probe.last_state is not None, 30), proc.output()
    try:
        yield domain, probe
    finally:
        probe.close()
        proc.stop()


def _deploy(domain: int, artifact: Path, home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ROS_DOMAIN_ID": str(domain), "HOME": str(home),
           "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    return subprocess.run([sys.executable, "-m", "robo_agent.cli", "deploy", str(artifact),
                           "--goal", *GOAL, *args], env=env, capture_output=True, text=True,
                          timeout=120)


def test_refused_without_a_rehearsal_and_nothing_published(sim: Any, artifact: Path,
                                                            tmp_path: Path) -> None:
    domain, probe = sim
    out = _deploy(domain, artifact, tmp_path, "--max-duration", "1")
    assert out.returncode == 2, out.stderr
    assert "rehearsal required" in out.stderr and "rehearsal.json" in out.stderr
    time.sleep(0.5)
    assert probe.command_count() == 0


def test_dry_run_reaches_only_the_preview_topic(sim: Any, artifact: Path,
                                                tmp_path: Path) -> None:
    domain, probe = sim
    before = probe.joint_position("panda_joint1")
    out = _deploy(domain, artifact, tmp_path, "--dry-run", "--allow-unrehearsed",
                  "--max-duration", "1")
    assert out.returncode == 0, out.stderr
    last = [x for x in out.stderr.splitlines() if x.startswith("deploy: ")][-1]
    assert int(re.search(r"(\d+) commands", last).group(1)) > 5, last  # all to the preview
    assert "/robo_agent/preview" + TRAJ in out.stderr  # the runner names where they went
    time.sleep(0.3)
    assert probe.command_count() == 0
    assert abs(probe.joint_position("panda_joint1") - before) < 1e-3  # the arm stayed


def test_unrehearsed_run_moves_the_arm_and_prints_live_status(sim: Any, artifact: Path,
                                                              tmp_path: Path) -> None:
    domain, probe = sim
    before = probe.joint_position("panda_joint1")
    out = _deploy(domain, artifact, tmp_path, "--allow-unrehearsed", "--max-duration", "1.5",
                  "--status-period", "0.5")
    assert out.returncode == 0, out.stderr
    assert "WARNING: running without a passing rehearsal (audit-logged)" in out.stderr
    audit = (tmp_path / ".ros" / "robo_agent" / "audit.jsonl").read_text()
    assert "--allow-unrehearsed" in audit
    lines = [x for x in out.stderr.splitlines() if x.startswith("deploy: ")]
    states = [x.split(" | ")[0] for x in lines]
    assert "deploy: running" in states and states[-1] == "deploy: done", lines
    assert "m to goal" in lines[-1] and "max_duration" in lines[-1]
    # the runner's own count (this probe's subscription may match the short-lived runner's
    # publisher late on a loaded machine), and the arm's measured motion as the proof
    sent = int(re.search(r"(\d+) commands", lines[-1]).group(1))
    assert sent > 10, lines[-1]
    time.sleep(0.3)
    assert probe.joint_position("panda_joint1") > before + 0.05  # the arm turned
