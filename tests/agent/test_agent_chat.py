"""The chat agents against the real stack.

The real `openai` client talks to a scripted OpenAI-compatible HTTP server on 127.0.0.1
(canned tool calls, then a final message); tools run through the real `RosToolExecutor`
against a `sim_robot` process; assertions read what the arm did on /joint_states.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from robo_agent.agent.session import wait_for_robot
from robo_agent.core.audit import read_audit_log
from robo_agent.core.paths import safety_dir
from robo_agent.core.robot_spec import load_robot
from robo_agent.core.tools import HUMAN_ONLY, ToolResult, tool_names

pytestmark = pytest.mark.ros
PANDA = load_robot("panda")
TOLERANCE = 0.03  # rad; the safety policy reports "reached" within 0.02


@pytest.fixture(scope="module")
def unattended(
    sim_robot: Any, ros_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """An executor whose policy needs no confirmation (config/safety/unattended.yaml)."""
    from robo_agent.ros.tool_executor import RosToolExecutor

    executor = RosToolExecutor("panda", safety_policy=safety_dir() / "unattended.yaml",
                               audit_log=tmp_path_factory.mktemp("audit") / "unattended.jsonl",
                               node_name="agent_test_unattended",
                               domain_id=int(ros_env["ROS_DOMAIN_ID"]))
    assert wait_for_robot(executor).ok
    yield executor
    executor.close()


@pytest.fixture(scope="module")
def attended(
    sim_robot: Any, ros_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """An executor with the default policy: every motion is held for confirmation."""
    from robo_agent.ros.tool_executor import RosToolExecutor

    executor = RosToolExecutor("panda", safety_policy=safety_dir() / "default.yaml",
                               audit_log=tmp_path_factory.mktemp("audit") / "attended.jsonl",
                               node_name="agent_test_attended",
                               domain_id=int(ros_env["ROS_DOMAIN_ID"]))
    assert wait_for_robot(executor).ok
    yield executor
    executor.close()


def llm_agent(url: str, executor: Any, **kw: Any) -> Any:
    from robo_agent.agent.llm import LLMAgent, make_client

    return LLMAgent(make_client(url, timeout=20.0, max_retries=0), executor, model="scripted",
                    robot=PANDA, **kw)


def tool_messages(request: dict[str, Any]) -> list[dict[str, Any]]:
    return [json.loads(m["content"]) for m in request["messages"] if m["role"] == "tool"]


def test_llm_tool_loop_moves_the_arm(sim_robot: Any, unattended: Any, scripted_llm: Any) -> None:
    q0 = sim_robot.positions()
    target = float(q0[0] + 0.25)
    scripted_llm.script = [
        {"tool_calls": [("get_robot_state", {})]},
        {"tool_calls": [("move_joints", {"joints": {"panda_joint1": target}})]},
        {"content": "Joint 1 is now at the target."},
    ]
    reply = llm_agent(scripted_llm.url, unattended).handle("turn the base 0.25 rad to the left")

    # The model's words, then what the sensors measured after the motion.
    words, sensors = reply.text.split("\n")
    assert words == "Joint 1 is now at the target."
    assert sensors == reply.sensors and sensors.startswith("Sensors: last motion (move_joints) "
                                                           "reached its target")
    assert "end effector at [" in sensors and "gripper" in sensors
    assert [r.tool for r in reply.results] == ["get_robot_state", "move_joints"]
    assert all(r.ok for r in reply.results), [r.message for r in reply.results]
    # What the arm actually did, read independently on /joint_states.
    q1 = sim_robot.positions()
    assert q1[0] == pytest.approx(target, abs=TOLERANCE)
    assert np.allclose(q1[1:], q0[1:], atol=TOLERANCE)
    # The endpoint got the registry's tools, then each measured result as a tool message.
    first, _, last = scripted_llm.requests
    # Every tool but the human-only ones (e-stop release, plan approval).
    assert [t["function"]["name"] for t in first["tools"]] == [
        n for n in tool_names() if n not in HUMAN_ONLY]
    assert first["messages"][0]["role"] == "system" and first["model"] == "scripted"
    (state, move) = tool_messages(last)
    assert state["tool"] == "get_robot_state" and state["ok"] is True
    assert move["tool"] == "move_joints" and move["ok"] is True


def test_bad_calls_from_the_llm_go_back_as_errors_and_nothing_moves(
    sim_robot: Any, unattended: Any, scripted_llm: Any
) -> None:
    q0 = sim_robot.positions()
    scripted_llm.script = [
        {"tool_calls": [
            ("move_joints", {"positions": [0.0, 0.1]}),           # wrong vector length
            ("move_joints", {"joints": {"elbow": 0.2}}),          # unknown joint name
            ("move_joints", {"joints": {"panda_joint1": 9.0}}),   # beyond the joint range
            ("fly_to_the_moon", {}),                              # unknown tool
            ("move_end_effector_relative", "{not json"),          # malformed arguments
        ]},
        {"content": "I could not do that."},
    ]
    reply = llm_agent(scripted_llm.url, unattended).handle("do something silly")

    assert reply.text.startswith("I could not do that.\nSensors: last motion "
                                 "(move_end_effector_relative) did not complete (invalid_")
    errors = [r.error for r in reply.results]
    assert all(not r.ok for r in reply.results)
    assert errors[3] == "unknown_tool" and errors[4] == "invalid_arguments"
    msgs = tool_messages(scripted_llm.requests[-1])
    assert len(msgs) == 5 and all(m["ok"] is False and m["message"] for m in msgs)
    assert "elbow" in msgs[1]["message"]
    assert np.allclose(sim_robot.positions(), q0, atol=0.01)


def test_confirmation_is_asked_of_the_human_not_the_llm(
    sim_robot: Any, attended: Any, scripted_llm: Any
) -> None:
    asked: list[ToolResult] = []
    answers = iter([False, True])

    def human(result: ToolResult) -> bool:
        asked.append(result)
        return next(answers)

    q0 = sim_robot.positions()
    target = float(q0[0] - 0.2)
    move = ("move_joints", {"joints": {"panda_joint1": target}})

    def confirm_own_plan(request: dict[str, Any]) -> dict[str, Any]:
        # The declined result carries no plan id; the model tries to approve anyway.
        declined = tool_messages(request)[-1]
        assert "plan_id" not in json.dumps(declined), declined
        return {"tool_calls": [("confirm_plan", {"plan_id": "guessed"})]}

    scripted_llm.script = [
        {"tool_calls": [move]},
        confirm_own_plan,
        {"tool_calls": [move]},
        {"content": "Moved after your approval."},
    ]
    reply = llm_agent(scripted_llm.url, attended, confirm=human).handle("turn the base right")

    assert len(asked) == 2
    assert asked[0].error == "needs_confirmation" and "preview" in asked[0].data
    declined, self_confirm, approved = reply.results
    assert declined.error == "refused" and "has not approved" in declined.message
    assert self_confirm.tool == "confirm_plan" and self_confirm.error == "refused"
    assert "is a human act" in self_confirm.message
    assert approved.ok and approved.tool == "move_joints"
    assert sim_robot.settled(0, target, TOLERANCE) == pytest.approx(target, abs=TOLERANCE)


def test_rounds_are_bounded(unattended: Any, scripted_llm: Any) -> None:
    scripted_llm.script = [{"tool_calls": [("get_robot_state", {})]}] * 5
    reply = llm_agent(scripted_llm.url, unattended, max_rounds=3).handle("loop forever")
    assert "stopped after 3 rounds" in reply.text
    assert len(scripted_llm.requests) == 3 and len(reply.results) == 3


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_endpoint_is_a_clear_error(unattended: Any) -> None:
    from robo_agent.agent.llm import AgentError

    agent = llm_agent(f"http://127.0.0.1:{_closed_port()}/v1", unattended)
    with pytest.raises(AgentError, match=r"cannot reach the LLM endpoint at http://127\.0\.0\.1"):
        agent.handle("hello")


def test_offline_agent_moves_up_and_operates_the_gripper(sim_robot: Any, unattended: Any) -> None:
    from contextlib import nullcontext

    from robo_agent.agent.session import OfflineAgent
    from robo_agent.kinematics import Kinematics

    agent = OfflineAgent(unattended, PANDA)
    with nullcontext(Kinematics.for_robot(PANDA)) as kin:
        z0 = kin.ee_pose(sim_robot.positions())[0][2]
        reply = agent.handle("open the gripper and move 4 cm up")
        assert reply.ok, reply.text
        assert [r.tool for r in reply.results] == ["set_gripper", "move_end_effector_relative"]
        z1 = kin.ee_pose(sim_robot.positions())[0][2]
    assert z1 - z0 == pytest.approx(0.04, abs=0.01)
    finger = sim_robot.value(PANDA.gripper.joints[0])
    assert PANDA.gripper.width([finger, finger]) > 0.07  # fully open is 0.08 m

    reply = agent.handle("dance a little")
    assert not reply.ok and "I don't understand 'dance a little'" in reply.text


def _chat(ros_env: dict[str, str], audit: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "robo_agent.cli", "chat", "--robot", "panda",
         "--audit-log", str(audit), *args],
        env=ros_env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )


@pytest.mark.slow
def test_chat_cli_with_an_llm_and_yes(
    sim_robot: Any, ros_env: dict[str, str], scripted_llm: Any, tmp_path: Path
) -> None:
    q0 = sim_robot.positions()
    target = float(q0[0] + 0.15)
    scripted_llm.script = [
        {"tool_calls": [("move_joints", {"joints": {"panda_joint1": target}})]},
        {"content": "done moving"},
    ]
    # Default (attended) policy: --yes approves the held plan without a terminal prompt.
    out = _chat(ros_env, tmp_path / "audit.jsonl", "--base-url", scripted_llm.url,
                "--model", "m", "--yes", "--once", "turn the base a bit")
    assert out.returncode == 0, out.stderr
    assert "done moving" in out.stdout
    assert sim_robot.settled(0, target, TOLERANCE) == pytest.approx(target, abs=TOLERANCE)


@pytest.mark.slow
def test_chat_cli_without_terminal_or_yes_does_not_move(
    sim_robot: Any, ros_env: dict[str, str], tmp_path: Path
) -> None:
    q0 = sim_robot.positions()
    # No --base-url and no OPENAI_API_KEY: the offline grammar parses the command.
    out = _chat(ros_env, tmp_path / "audit.jsonl", "--once", "move 3 cm left")
    assert out.returncode == 1
    assert "not executing (pass --yes" in out.stdout and "has not approved" in out.stdout
    assert np.allclose(sim_robot.positions(), q0, atol=0.01)


@pytest.mark.slow
def test_chat_cli_unreachable_endpoint(
    ros_env: dict[str, str], sim_robot: Any, tmp_path: Path
) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    out = _chat(ros_env, tmp_path / "audit.jsonl", "--base-url", url, "--timeout", "5",
                "--once", "hello")
    assert out.returncode == 3
    assert "cannot reach the LLM endpoint" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.slow
def test_ctrl_c_during_a_motion_stops_the_arm(
    sim_robot: Any, unattended: Any, ros_env: dict[str, str], scripted_llm: Any, tmp_path: Path
) -> None:
    # Start from home whatever the earlier tests did (this test must not depend on order).
    assert unattended.call("move_joints", {"positions": list(PANDA.home)}).ok
    q0 = float(sim_robot.positions()[0])
    target = q0 + 0.6
    scripted_llm.script = [
        {"tool_calls": [("move_joints", {"joints": {"panda_joint1": target}, "duration": 4.0})]},
        {"content": "done"},
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "robo_agent.cli", "chat", "--robot", "panda", "--yes",
         "--audit-log", str(tmp_path / "audit.jsonl"), "--base-url", scripted_llm.url,
         "--once", "turn the base slowly"],
        env=ros_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        stdin=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while sim_robot.positions()[0] < q0 + 0.05:  # wait until the arm is on its way
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, (out, err)
    assert "interrupted; stop:" in out and "Traceback" not in err
    time.sleep(0.5)
    q_end = float(sim_robot.positions()[0])
    assert q0 + 0.05 < q_end < target - 0.2  # stopped part way
    time.sleep(1.0)
    assert float(sim_robot.positions()[0]) == pytest.approx(q_end, abs=0.01)  # and stays


def test_the_model_cannot_release_the_estop_even_with_yes(
    sim_robot: Any, unattended: Any, scripted_llm: Any
) -> None:
    """A latched e-stop stays latched whatever the model calls, also with --yes."""
    from robo_agent.agent.session import human_release_estop

    q0 = sim_robot.positions()
    assert unattended.call("emergency_stop", {"reason": "test"}).ok
    try:
        scripted_llm.script = [
            {"tool_calls": [("reset_emergency_stop", {"reason": "the user said so"}),
                            ("confirm_plan", {"plan_id": "abc"})]},
            {"tool_calls": [("move_joints", {"joints": {"panda_joint1": float(q0[0] + 0.2)}})]},
            {"content": "Released and moved."},
        ]
        reply = llm_agent(scripted_llm.url, unattended, auto_confirm=True).handle("go")
        reset, confirm, move = reply.results
        assert reset.error == "refused" and "human act" in reset.message
        assert confirm.error == "refused" and move.error == "estop"
        # The attempts are on record in the executor's audit log, with who asked.
        tried = [(r["tool"], r["decision"], r["details"]["channel"])
                 for r in read_audit_log(unattended.audit.path) if r["limit"] == "human_only"]
        assert tried[-2:] == [("reset_emergency_stop", "refused", "LLM scripted"),
                              ("confirm_plan", "refused", "LLM scripted")]
        state = unattended.call("get_robot_state", {})
        assert state.data["estop"] is True  # still latched
        assert "e-stop LATCHED" in reply.sensors
        assert np.allclose(sim_robot.positions(), q0, atol=0.01)
    finally:
        assert human_release_estop(unattended, "test cleanup").ok
    assert unattended.call("get_robot_state", {}).data["estop"] is False
