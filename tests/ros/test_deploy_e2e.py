"""End to end: a policy trained and exported by the research trainer (`autoresearch/train.py`,
a real short training run, not the full research loop) -> `robo-agent rehearse` (a few
episodes over DDS vs the Gymnasium env) -> installed in a policy folder -> `run_policy`
through the MCP server (real MCP client, stdio) and through the offline grammar
(`robo-agent chat --once "run policy reach to X Y Z"`) reaches the goal on `sim_robot`,
checked independently with forward kinematics of the measured /joint_states."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from robo_agent.core.artifact import load_rehearsal, load_spec
from robo_agent.core.paths import safety_dir
from robo_agent.core.robot_spec import load_robot
from robo_agent.kinematics import Kinematics

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
TASK = "robo_agent/PandaReach-v0"
# A fixed amount of experience makes the policy the same on any machine under any load
# (train.py is bit-repeatable); measured: 16 000 steps train a Reach policy that succeeds
# in 10/10 rehearsal episodes, ROS and direct alike. The CPU cap only guards the test.
BUDGET_STEPS = 16_000
BUDGET_S = 150
GOALS = ([0.5, 0.1, 0.3], [0.4, -0.1, 0.2])


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("train")
    subprocess.run([sys.executable, str(ROOT / "autoresearch" / "train.py"), "--task", TASK,
                    "--budget-steps", str(BUDGET_STEPS), "--budget-seconds", str(BUDGET_S),
                    "--seed", "1", "--out", str(out)],
                   check=True, timeout=BUDGET_S + 120, capture_output=True)
    return out / "artifact"


def _ee(probe_class: Any, domain: int) -> np.ndarray:
    """The end effector from one fresh /joint_states (a probe of our own)."""
    probe = probe_class(domain, "e2e_probe")
    try:
        assert probe.wait_for(lambda: probe.last_state is not None, 10)
        robot = load_robot("panda")
        q = [probe.joint_position(n) for n in robot.joint_names]
        return Kinematics.for_robot(robot).ee_pose(q)[0]
    finally:
        probe.close()


def test_export_rehearse_install_and_run_policy_via_mcp_and_grammar(
        trained: Path, ros_domain: int, free_domain_fn: Any, ros_process: Any,
        ros_probe_class: Any, tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "robo_agent.cli", "rehearse", str(trained),
                          "--episodes", "3", "--json"], capture_output=True, text=True,
                         timeout=600)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert {"episodes", "ros_success", "direct_success", "parity", "final_error_m",
            "loop_rate_hz", "passed", "artifact_sha256"} <= set(result)
    # on a failure: the per-episode lines (final errors) and where the runner logs are
    assert result["passed"], (result, out.stderr[-3000:])
    spec = load_spec(trained)
    assert load_rehearsal(trained).artifact_sha256 == spec.model_sha256

    policies = tmp_path / "policies"
    shutil.copytree(trained, policies / "reach")
    domain = free_domain_fn(ros_domain)
    env = {**os.environ, "ROS_DOMAIN_ID": str(domain),
           "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    sim = ros_process.module("sim_robot", domain, tmp_path / "sim.log", robot="panda",
                            task="reach")
    try:
        time.sleep(2.0)
        # -- through the MCP server ------------------------------------------------------
        import anyio
        from mcp import Client
        from mcp.client.stdio import StdioServerParameters

        params = StdioServerParameters(
            command=sys.executable,
            args=["-m", "robo_agent.cli", "mcp", "--robot", "panda", "--safety",
                  str(safety_dir() / "unattended.yaml"), "--policies", str(policies),
                  "--audit-log", str(tmp_path / "mcp_audit.jsonl")], env=env)

        async def session() -> dict[str, Any]:
            async with Client(params, read_timeout_seconds=90) as client:
                listed = await client.call_tool("list_policies", {})
                run = await client.call_tool("run_policy", {"name": "reach",
                                                            "goal": GOALS[0],
                                                            "duration": 6.0})
                return {"list": listed, "run": run}

        got = anyio.run(session)
        listing = "\n".join(c.text for c in got["list"].content if c.type == "text")
        assert "reach" in listing and "rehearsal passed" in listing, listing
        text = "\n".join(c.text for c in got["run"].content if c.type == "text")
        assert "reached the goal" in text, text
        assert np.linalg.norm(_ee(ros_probe_class, domain) - GOALS[0]) < 0.05

        # -- through the offline grammar ---------------------------------------------------
        goal = GOALS[1]
        chat = subprocess.run(
            [sys.executable, "-m", "robo_agent.cli", "chat", "--robot", "panda", "--offline",
             "--safety", str(safety_dir() / "unattended.yaml"), "--policies", str(policies),
             "--audit-log", str(tmp_path / "chat_audit.jsonl"), "--once",
             f"run policy reach to {goal[0]} {goal[1]} {goal[2]} for 6 s"],
            env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        assert chat.returncode == 0, chat.stdout + chat.stderr
        assert "reached the goal" in chat.stdout, chat.stdout
        assert np.linalg.norm(_ee(ros_probe_class, domain) - goal) < 0.05
    finally:
        assert sim.stop() == 0, sim.output()
