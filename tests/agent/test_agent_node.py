"""The `agent` node as its own process: NL commands on /robo_agent/command, JSON replies.

Runs with the default (attended) policy and the offline grammar. Approval is a human act:
only an operator message on /robo_agent/operator carrying the node's operator_token
approves a held plan; a bare "yes" on the command topic does not.
"""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from robo_agent.core.robot_spec import load_robot

pytestmark = [pytest.mark.ros, pytest.mark.slow]
PANDA = load_robot("panda")


class CommandClient:
    """Publishes commands and collects replies, in its own rclpy context."""

    def __init__(self, domain_id: int) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from std_msgs.msg import String

        self.String = String
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node("agent_test_commander", context=self.context)
        self.pub = self.node.create_publisher(String, "/robo_agent/command", 10)
        self.operator_pub = self.node.create_publisher(String, "/robo_agent/operator", 10)
        self.replies: queue.Queue[dict[str, Any]] = queue.Queue()
        self.node.create_subscription(
            String, "/robo_agent/reply", lambda m: self.replies.put(json.loads(m.data)), 10
        )
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except Exception:
            pass

    def wait_for_agent(self, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
        """Until a "cancel" round trip works (no plan is held, so the node answers it
        without tools or LLM). DDS discovery is asynchronous: seeing our command subscriber
        does not mean the node's reply writer has matched our reader yet."""
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the agent node exited with status {proc.returncode}")
            if time.monotonic() > deadline:
                raise TimeoutError("the agent node did not answer 'cancel' within 30 s")
            if self.pub.get_subscription_count() and self.node.count_publishers(
                "/robo_agent/reply"
            ):
                self.pub.publish(self.String(data="cancel"))
                try:
                    self.replies.get(timeout=1.0)
                except queue.Empty:
                    continue
                time.sleep(0.2)  # late duplicates of the handshake, if any
                while not self.replies.empty():
                    self.replies.get_nowait()
                return
            time.sleep(0.05)

    def ask(self, text: str, timeout: float = 20.0) -> dict[str, Any]:
        self.pub.publish(self.String(data=text))
        reply = self.replies.get(timeout=timeout)
        assert reply["command"] == text
        return reply

    def operator(self, token: str, action: str, timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + 5.0
        while not self.operator_pub.get_subscription_count():
            assert time.monotonic() < deadline, "no subscriber on /robo_agent/operator"
            time.sleep(0.05)
        self.operator_pub.publish(self.String(data=json.dumps({"token": token,
                                                                "action": action})))
        return self.replies.get(timeout=timeout)

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        self.context.try_shutdown()


def start_agent_node(
    ros_env: dict[str, str], tmp_path: Path, *params: str
) -> Iterator[CommandClient]:
    log = open(tmp_path / "agent_node.log", "w")
    args = ["-p", "robot:=panda", "-p", f"audit_log:={tmp_path / 'audit.jsonl'}"]
    for param in params:
        args += ["-p", param]
    proc = subprocess.Popen(
        [sys.executable, "-m", "robo_agent.ros.agent_node", "--ros-args", *args],
        env=ros_env, stdout=log, stderr=subprocess.STDOUT,
    )
    client = CommandClient(int(ros_env["ROS_DOMAIN_ID"]))
    try:
        try:
            client.wait_for_agent(proc)
        except (RuntimeError, TimeoutError) as err:
            log.flush()
            pytest.fail(f"{err}:\n{(tmp_path / 'agent_node.log').read_text()[-3000:]}")
        yield client
    finally:
        client.close()
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


TOKEN = "operator-secret-for-tests"


@pytest.fixture
def agent_node(sim_robot: Any, ros_env: dict[str, str], tmp_path: Path) -> Iterator[CommandClient]:
    """The node with the offline grammar (no LLM configured) and the default policy."""
    yield from start_agent_node(ros_env, tmp_path, f"operator_token:={TOKEN}")


def test_commands_confirmation_and_replies_over_topics(
    agent_node: CommandClient, sim_robot: Any
) -> None:
    from contextlib import nullcontext

    from robo_agent.kinematics import Kinematics

    with nullcontext(Kinematics.for_robot(PANDA)) as kin:
        z0 = kin.ee_pose(sim_robot.positions())[0][2]

        state = agent_node.ask("what is the robot state")
        assert state["ok"] and state["results"][0]["tool"] == "get_robot_state"

        held = agent_node.ask("move 3 cm up")
        assert not held["ok"]
        assert "Held for confirmation" in held["text"] and "/robo_agent/operator" in held["text"]
        assert kin.ee_pose(sim_robot.positions())[0][2] == pytest.approx(z0, abs=0.003)

        # Anyone can publish "yes" on the command topic: that is not approval.
        for word in ("yes", "confirm"):
            bare = agent_node.ask(word)
            assert not bare["ok"] and "not approved" in bare["text"]
        wrong = agent_node.operator("guessed-token", "confirm")
        assert not wrong["ok"] and "wrong operator token" in wrong["text"]
        released = agent_node.ask("reset the emergency stop")  # a human act, not topic text
        assert not released["ok"] and "human act" in released["text"]
        assert kin.ee_pose(sim_robot.positions())[0][2] == pytest.approx(z0, abs=0.003)

        done = agent_node.operator(TOKEN, "confirm")
        assert done["ok"], done["text"]
        assert done["results"][0]["tool"] == "move_end_effector_relative"
        assert kin.ee_pose(sim_robot.positions())[0][2] - z0 == pytest.approx(0.03, abs=0.01)

    nothing = agent_node.operator(TOKEN, "confirm")
    assert not nothing["ok"] and "no plan waiting" in nothing["text"]

    unknown = agent_node.ask("juggle three balls")
    assert not unknown["ok"] and "I don't understand" in unknown["text"]

    stop = agent_node.ask("stop")
    assert stop["ok"] and stop["results"][0]["tool"] == "stop"


def test_llm_mode_the_human_confirms_on_the_topic(
    sim_robot: Any, ros_env: dict[str, str], tmp_path: Path, scripted_llm: Any
) -> None:
    q0 = sim_robot.positions()
    target = float(q0[0] + 0.2)
    scripted_llm.script = [
        {"tool_calls": [("move_joints", {"joints": {"panda_joint1": target}})]},
        {"content": "The move is waiting for your approval."},
    ]
    nodes = start_agent_node(ros_env, tmp_path, f"base_url:={scripted_llm.url}", "model:=m",
                             f"operator_token:={TOKEN}")
    client = next(nodes)
    try:
        held = client.ask("turn the base a little to the left")
        assert "The move is waiting for your approval." in held["text"]
        assert "Held for confirmation" in held["text"] and not held["ok"]
        assert held["results"][0]["error"] == "refused"
        assert sim_robot.positions()[0] == pytest.approx(q0[0], abs=0.01)
        # The LLM was told the operator has not approved: it never saw a way to approve.
        told = [m for m in scripted_llm.requests[-1]["messages"] if m["role"] == "tool"]
        assert "has not approved" in told[-1]["content"]

        assert not client.ask("yes")["ok"]  # unauthenticated: not approval
        assert sim_robot.positions()[0] == pytest.approx(q0[0], abs=0.01)
        done = client.operator(TOKEN, "confirm")
        assert done["ok"], done["text"]
        assert sim_robot.settled(0, target, 0.03) == pytest.approx(target, abs=0.03)
        assert len(scripted_llm.requests) == 2  # confirming did not involve the LLM
    finally:
        nodes.close()
