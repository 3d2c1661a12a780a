"""Fixtures for the cross-process ROS tests.

- every test here carries the `ros` marker;
- `ros_domain`: a random ROS_DOMAIN_ID (1..100) for this session with localhost-only
  discovery, so concurrent test runs never cross-talk; every process and context we
  start gets it explicitly (not only through os.environ, which other fixtures may touch);
- `RosProcess`: a node started as `python -m robo_agent.ros.<exe> --ros-args ...`, torn down
  with SIGINT, then SIGKILL, even when the test fails;
- `Probe`: a test-side rclpy node in its own context that records every message on the
  controller topics (to prove bad input never reaches them) and calls tools over the
  bridge's JSON topic pair.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

rclpy = pytest.importorskip("rclpy")

from rclpy.context import Context  # noqa: E402
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import Bool, Float64MultiArray, String  # noqa: E402
from trajectory_msgs.msg import JointTrajectory  # noqa: E402

from robo_agent.ros import interfaces as ifc  # noqa: E402

_HERE = Path(__file__).parent
OPERATOR_TOKEN = "test-operator-token-7f3a"  # the session bridge's operator_token parameter
CONTROLLER_TOPICS = {
    "/arm_controller/joint_trajectory": JointTrajectory,
    "/position_controller/commands": Float64MultiArray,
    "/gripper_controller/commands": Float64MultiArray,
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.ros)


_SEEN_DOMAINS: set[int] = set()


def free_domain(*taken: int) -> int:
    """A random domain in 1..100, avoiding `taken` and the one already in os.environ
    (another suite's fixture may have set it and still run nodes there)."""
    _SEEN_DOMAINS.add(int(os.environ.get("ROS_DOMAIN_ID", "0") or 0))
    domain = random.choice([d for d in range(1, 101) if d not in {*taken, *_SEEN_DOMAINS}])
    _SEEN_DOMAINS.add(domain)
    return domain


@pytest.fixture(scope="session")
def ros_domain() -> int:
    domain = free_domain()
    os.environ["ROS_DOMAIN_ID"] = str(domain)
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    return domain


def ros_env(domain: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
               PYTHONUNBUFFERED="1")
    return env


def ros_value(value: Any) -> str:
    """A parameter value as `-p name:=value` text (YAML), strings quoted."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return str(value)


class RosProcess:
    """A ROS node in its own process; stops with SIGINT (then SIGKILL)."""

    def __init__(self, cmd: Sequence[str], domain: int, log: Path,
                 params: dict[str, Any] | None = None) -> None:
        args = list(cmd)
        if params:
            args += ["--ros-args"] + [a for k, v in params.items()
                                      for a in ("-p", f"{k}:={ros_value(v)}")]
        self.log = log
        self._log_file = log.open("wb")
        self.proc = subprocess.Popen(args, stdout=self._log_file, stderr=subprocess.STDOUT,
                                     env=ros_env(domain))

    @classmethod
    def module(cls, exe: str, domain: int, log: Path, **params: Any) -> RosProcess:
        return cls([sys.executable, "-m", f"robo_agent.ros.{exe}"], domain, log, params)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, timeout: float = 10.0) -> int:
        """SIGINT, wait, then SIGKILL; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._log_file.close()
        return self.proc.returncode


class Probe:
    """Test-side node: records controller-topic traffic and calls tools over JSON topics."""

    def __init__(self, domain: int, name: str = "test_probe",
                 call_topic: str = ifc.TOOL_CALL_TOPIC,
                 result_topic: str = ifc.TOOL_RESULT_TOPIC) -> None:
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain)
        self.node = rclpy.create_node(name, context=self.context)
        self.lock = threading.Lock()
        self.commands: dict[str, list[Any]] = {t: [] for t in CONTROLLER_TOPICS}
        self.results: dict[str, dict[str, Any]] = {}
        self.states = 0
        self.last_state: JointState | None = None
        self.estop: bool | None = None
        self._ids = itertools.count()
        self._result_event = threading.Condition(self.lock)
        self.subs: dict[str, Any] = {}
        for topic, msg_type in CONTROLLER_TOPICS.items():
            for name in (topic, ifc.preview_topic(topic)):
                self.commands[name] = []
                self.subs[name] = self.node.create_subscription(
                    msg_type, name, lambda m, t=name: self._record(t, m), ifc.COMMANDS)
        self.node.create_subscription(String, result_topic, self._on_result, ifc.COMMANDS)
        self.node.create_subscription(JointState, ifc.JOINT_STATES_TOPIC, self._on_state,
                                      ifc.STATES)
        self.node.create_subscription(Bool, ifc.ESTOP_TOPIC, self._on_estop, ifc.LATCHED)
        self.call_pub = self.node.create_publisher(String, call_topic, ifc.COMMANDS)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except ExternalShutdownException:
            pass

    def _record(self, topic: str, msg: Any) -> None:
        with self.lock:
            self.commands[topic].append((time.monotonic(), msg))

    def _on_state(self, msg: JointState) -> None:
        self.states += 1
        self.last_state = msg

    def joint_position(self, name: str) -> float:
        """Latest measured position of a joint, by name."""
        msg = self.last_state
        assert msg is not None, "no /joint_states received"
        return msg.position[list(msg.name).index(name)]

    def _on_estop(self, msg: Bool) -> None:
        self.estop = msg.data

    def _on_result(self, msg: String) -> None:
        data = json.loads(msg.data)
        with self._result_event:
            self.results[str(data.get("id"))] = data
            self._result_event.notify_all()

    def command_count(self) -> int:
        """Messages received on the real controller topics (not the preview topics)."""
        with self.lock:
            return sum(len(self.commands[t]) for t in CONTROLLER_TOPICS)

    def clear(self) -> None:
        with self.lock:
            for v in self.commands.values():
                v.clear()

    def send_raw(self, text: str) -> None:
        self.call_pub.publish(String(data=text))

    def call(self, tool: str, arguments: Any = None, timeout: float = 20.0,
             raw: str | None = None, token: str | None = None) -> dict[str, Any]:
        """Call a tool on the arm_bridge over /robo_agent/tool_call; wait for its result.
        `token`: the operator token, which the human-only tools need."""
        call_id = f"t{next(self._ids)}"
        request = {"id": call_id, "tool": tool, "arguments": arguments}
        if token is not None:
            request["token"] = token
        text = raw if raw is not None else json.dumps(request)
        self.send_raw(text)
        with self._result_event:
            ok = self._result_event.wait_for(lambda: call_id in self.results, timeout=timeout)
        assert ok, f"no result for {tool} {arguments} within {timeout} s"
        return self.results.pop(call_id)

    def wait_publishers(self, topic: str, n: int, timeout: float = 15.0) -> None:
        """Wait until the probe is matched with n publishers on `topic`, so that an absent
        message proves nothing was sent (rather than that discovery was slow)."""
        sub = self.subs[topic]
        assert self.wait_for(lambda: sub.get_publisher_count() >= n, timeout), \
            f"{topic}: {sub.get_publisher_count()} publishers matched, expected {n}"

    def prove_connected(self, send: Any, topic: str = "/arm_controller/joint_trajectory",
                        timeout: float = 15.0) -> None:
        """Send a harmless command (a `stop`) until it arrives here: the sender's publisher
        is then matched with this probe, so an absent message later proves nothing was sent
        (DDS matching is per side; a reader seeing a writer does not mean the reverse)."""
        t0 = time.monotonic()
        while True:
            self.clear()
            send()
            if self.wait_for(lambda: len(self.commands[topic]) > 0, 1.0):
                break
            assert time.monotonic() - t0 < timeout, f"the probe never received a message on {topic}"
        time.sleep(0.1)
        self.clear()

    def wait_for(self, predicate: Any, timeout: float = 10.0) -> bool:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if predicate():
                return True
            time.sleep(0.02)
        return False

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=2.0)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        self.thread.join(timeout=2.0)


@pytest.fixture(scope="session")
def ros_process() -> type[RosProcess]:
    """The RosProcess class, for tests that start nodes themselves."""
    return RosProcess


@pytest.fixture(scope="session")
def operator_token() -> str:
    """The operator token of the session's arm_bridge (human-only tools need it)."""
    return OPERATOR_TOKEN


@pytest.fixture(scope="session")
def ros_probe_class() -> type[Probe]:
    return Probe


@pytest.fixture(scope="session")
def free_domain_fn() -> Any:
    return free_domain


@pytest.fixture(scope="session")
def probe(ros_domain: int) -> Iterator[Probe]:
    p = Probe(ros_domain)
    yield p
    p.close()


@pytest.fixture(scope="session")
def sim_and_bridge(ros_domain: int, probe: Probe,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One sim_robot and one arm_bridge process for the session (unattended policy)."""
    tmp = tmp_path_factory.mktemp("bridge")
    audit = tmp / "audit.jsonl"
    sim = RosProcess.module("sim_robot", ros_domain, tmp / "sim_robot.log", robot="panda")
    bridge = RosProcess.module("arm_bridge", ros_domain, tmp / "arm_bridge.log", robot="panda",
                               safety_policy="unattended", audit_log=str(audit),
                               image_dir=str(tmp / "images"), operator_token=OPERATOR_TOKEN)
    try:
        assert probe.wait_for(lambda: probe.states > 10, 30.0), sim.output()
        # The bridge is up when it answers a call (its subscriptions are matched).
        t0 = time.monotonic()
        while True:
            assert bridge.proc.poll() is None, bridge.output()
            probe.send_raw(json.dumps({"id": "ping", "tool": "get_robot_state"}))
            if probe.wait_for(lambda: "ping" in probe.results, 1.0) and \
                    probe.results.pop("ping")["ok"]:
                break
            assert time.monotonic() - t0 < 30.0, bridge.output()
        probe.prove_connected(lambda: probe.call("stop"))
        probe.prove_connected(lambda: probe.call("set_gripper", {"action": "open"}),
                              "/gripper_controller/commands")
        yield {"sim": sim, "bridge": bridge, "audit": audit, "tmp": tmp}
    finally:
        codes = (bridge.stop(), sim.stop())
    logs = f"{bridge.output()[-2000:]}\n{sim.output()[-2000:]}"
    assert codes == (0, 0), f"exit codes {codes}:\n{logs}"
