"""policy_runner in its own process against real DDS: refusals, guards and motion.

Two set-ups, each in a private ROS domain:
- a `Feeder` node in this test process publishes /joint_states itself (complete, missing a
  joint, reversed, or stopping) and records every controller and preview message with the
  measured pose at that moment, so a test knows exactly what the runner saw;
- a real `sim_robot` process, for motion (e-stop and SIGINT mid-motion).
Policies are hand-built ONNX artifacts (`policy_artifacts.py`: a constant action, NaN),
so each test knows what the runner should command. Every test asserts that no recorded
command is farther from the measured pose than the envelope's step (vmax * dt, which is
below max_step) and that a refusal publishes nothing.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from policy_artifacts import constant_artifact, nan_artifact
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, Float64MultiArray
from trajectory_msgs.msg import JointTrajectory

from robo_agent.core.robot_spec import load_robot
from robo_agent.core.safety import SafetyEnvelope
from robo_agent.ros import interfaces as ifc

ROBOT = load_robot("panda")
NAMES = ROBOT.joint_names
HOME = ROBOT.home_array
TRAJ = "/arm_controller/joint_trajectory"
POS = "/position_controller/commands"
DT = 0.04
STEP_BOUND = float(np.max(SafetyEnvelope(ROBOT).vmax)) * DT  # the envelope's per-command cap
GOAL = "[0.45, 0.1, 0.3]"
RECORD_QOS = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)


class Feeder:
    """Publishes /joint_states (unless told otherwise) and records what the runner sends."""

    def __init__(self, domain: int, listen: bool = True, publish: bool = True) -> None:
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain)
        self.node = rclpy.create_node("feeder", context=self.context)
        self.lock = threading.Lock()
        self.q = HOME.copy()
        self.mode = "normal"  # normal | reversed | missing | silent
        self.commands: dict[str, list[tuple[float, np.ndarray, Any, float]]] = {}
        self.history: list[tuple[float, np.ndarray]] = []  # (sim's send time, pose)
        self.status: list[dict[str, str]] = []
        if listen:
            for topic, kind in ((TRAJ, JointTrajectory), (POS, Float64MultiArray)):
                for name in (topic, ifc.preview_topic(topic)):
                    self.commands[name] = []
                    # deep history: a busy test process must not drop a command
                    self.node.create_subscription(
                        kind, name, lambda m, info, t=name: self._record(t, m, info),
                        RECORD_QOS)
        self.node.create_subscription(DiagnosticArray, "/robo_agent/policy/status",
                                      self._on_status, ifc.COMMANDS)
        self.pub_state = self.node.create_publisher(JointState, "/joint_states", ifc.STATES)
        self.pub_estop = self.node.create_publisher(Bool, ifc.ESTOP_TOPIC, ifc.LATCHED)
        self.pub_goal = self.node.create_publisher(PoseStamped, "/robo_agent/policy/goal",
                                                   ifc.COMMANDS)
        if publish:
            self.node.create_timer(0.004, self._publish)  # 250 Hz, like sim_robot
        else:  # a real sim_robot publishes; record its measured pose
            # deep history: a busy test process must not lose a pose it pairs commands with
            self.node.create_subscription(JointState, "/joint_states", self._on_state,
                                          RECORD_QOS)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def _publish(self) -> None:
        if self.mode == "silent":
            return
        names, q = list(NAMES), list(self.q)
        if self.mode == "reversed":
            names, q = names[::-1], q[::-1]
        if self.mode == "missing":
            names, q = names[:-1], q[:-1]
        self.pub_state.publish(JointState(name=names, position=q, velocity=[0.0] * len(q)))

    def _on_state(self, msg: JointState, info: Any) -> None:
        index = {n: i for i, n in enumerate(msg.name)}
        with self.lock:
            self.q = np.array([msg.position[index[n]] for n in NAMES])
            self.history.append((info["source_timestamp"] * 1e-9, self.q))

    def _record(self, topic: str, msg: Any, info: Any) -> None:
        with self.lock:
            self.commands[topic].append((time.monotonic(), self.q.copy(), msg,
                                         info["source_timestamp"] * 1e-9))

    def _on_status(self, msg: DiagnosticArray) -> None:
        for st in msg.status:
            self.status.append({"message": st.message, **{kv.key: kv.value for kv in st.values}})

    def sent(self, topic: str) -> list[tuple[float, np.ndarray, Any]]:
        """(time, measured pose, message) per command. Against a real sim the time is the
        runner's send time and the pose the last one the sim *published* by then (both
        DDS source timestamps, one clock): a test process that falls behind on a loaded
        machine cannot pair a command with a pose from the wrong moment."""
        with self.lock:
            records = list(self.commands.get(topic, []))
            if not self.history:  # this feeder publishes the states itself
                return [(t, q, m) for t, q, m, _ in records]
            stamps = [ts for ts, _ in self.history]
            poses = [q for _, q in self.history]
        out = []
        for _, q, m, sent_at in records:
            k = bisect.bisect_right(stamps, sent_at) - 1
            out.append((sent_at, poses[k] if k >= 0 else q, m))
        return out

    def poses_before(self, t: float, window: float) -> list[np.ndarray]:
        """Every pose the sim published in the `window` seconds up to `t` (its clock)."""
        with self.lock:
            return [q for ts, q in self.history if t - window <= ts <= t]

    def last_status(self) -> dict[str, str]:
        return self.status[-1] if self.status else {}

    def wait(self, predicate: Any, timeout: float = 20.0) -> bool:
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


def positions(msg: Any) -> np.ndarray | None:
    if isinstance(msg, Float64MultiArray):
        return np.asarray(msg.data)
    if not msg.points:
        return None  # an empty trajectory: hold
    assert len(msg.points) == 1 and abs(ifc.duration_seconds(msg.points[0].time_from_start)
                                        - DT) < 1e-6
    index = {n: i for i, n in enumerate(msg.joint_names)}
    return np.array([msg.points[0].positions[index[n]] for n in NAMES])


def assert_steps_bounded(records: list[tuple[float, np.ndarray, Any]], slack: float = 0.0,
                         sim: Feeder | None = None) -> None:
    """Every command within the max step (+ slack) of the measured pose. Against a real
    sim (`sim`): of one of the poses it published in the 2 control periods before the
    runner sent the command — the runner plans from the state it last received and holds
    instead when that is older (the stale-state guard), so the exact pose it planned from
    is among them, whatever the load on this machine."""
    for t, measured, msg in records:
        q = positions(msg)
        if q is not None:
            seen = (sim.poses_before(t, 2 * DT + 0.005) if sim else []) or [measured]
            step = min(float(np.max(np.abs(q - m))) for m in seen)
            if step > STEP_BOUND + slack + 1e-9 and sim is not None:
                with sim.lock:  # what the sim published around it: (age s, distance rad)
                    near = [(round(t - ts, 4), round(float(np.max(np.abs(q - m))), 4))
                            for ts, m in sim.history if t - 0.2 <= ts <= t + 0.05]
                raise AssertionError(f"command {step:.4f} rad from measured; poses: {near}")
            assert step <= STEP_BOUND + slack + 1e-9, f"command {step:.4f} rad from measured"


@pytest.fixture(scope="module")
def domain(ros_domain: int, free_domain_fn: Any) -> int:
    return free_domain_fn(ros_domain)


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("artifacts")
    return {"constant": constant_artifact(tmp / "constant", [0.8, -0.5, 0.3, 0.6, 0.2, -0.4, 0.1]),
            "nan": nan_artifact(tmp / "nan")}


@pytest.fixture
def feeder(domain: int) -> Any:
    f = Feeder(domain)
    yield f
    f.close()


_STARTED: list[Any] = []


@pytest.fixture(autouse=True)
def _stop_runners() -> Any:
    """Stop every runner a test started, even when it failed."""
    yield
    while _STARTED:
        _STARTED.pop().stop()


def runner(ros_process: Any, domain: int, tmp: Path, artifact: Path, **params: Any) -> Any:
    base = {"artifact": str(artifact), "goal": GOAL, "audit_log": str(tmp / "audit.jsonl")}
    proc = ros_process.module("policy_runner", domain, tmp / "runner.log", **{**base, **params})
    _STARTED.append(proc)
    return proc


def finish(proc: Any, timeout: float = 30.0) -> int:
    try:
        return proc.proc.wait(timeout=timeout)
    finally:
        proc.stop()


# -- refusals: nothing starts, nothing is published ----------------------------------------
def _corrupt(folder: Path, data: bytes) -> None:
    (folder / "policy.onnx").write_bytes(data)
    spec = json.loads((folder / "policy.json").read_text())
    spec["model_sha256"] = hashlib.sha256(data).hexdigest()
    (folder / "policy.json").write_text(json.dumps(spec))


# The quick loop keeps one refusal per kind (an artifact onnxruntime cannot load, another
# robot's artifact, a goal outside); the others are `slow` (the artifact checks they reach
# are also unit-tested in tests/unit/test_artifact.py and tests/research/test_onnx_policy.py).
@pytest.mark.parametrize("case", [
    "corrupt", pytest.param("truncated", marks=pytest.mark.slow),
    pytest.param("checksum", marks=pytest.mark.slow), "other_robot", "goal_outside",
    pytest.param("format_version", marks=pytest.mark.slow)])
def test_bad_artifact_or_goal_is_refused_before_anything_is_published(
        case: str, feeder: Feeder, domain: int, ros_process: Any, tmp_path: Path) -> None:
    art = constant_artifact(tmp_path / "a", [0.5] * 7)
    params: dict[str, Any] = {}
    expect = ""
    if case == "corrupt":
        _corrupt(art, b"\x08\x07garbage that is not a protobuf" * 10)
        expect = "policy.onnx: onnxruntime cannot load"
    elif case == "truncated":
        _corrupt(art, (art / "policy.onnx").read_bytes()[:100])
        expect = "policy.onnx: onnxruntime cannot load"
    elif case == "checksum":
        (art / "policy.onnx").write_bytes((art / "policy.onnx").read_bytes() + b"\0")
        expect = "field model_sha256"
    elif case == "other_robot":
        params["robot"] = "iiwa"
        expect = "field robot is 'panda', the running robot is 'iiwa'"
    elif case == "goal_outside":
        params["goal"] = "[0.4, 0.0, -0.3]"
        expect = "outside the workspace"
    elif case == "format_version":
        spec = json.loads((art / "policy.json").read_text())
        spec["format_version"] = 99
        (art / "policy.json").write_text(json.dumps(spec))
        expect = "format_version"
    proc = runner(ros_process, domain, tmp_path, art, **params)
    code = finish(proc)
    assert code == 2, proc.output()
    assert expect in proc.output(), proc.output()
    assert "Traceback" not in proc.output()
    assert all(not feeder.sent(t) for t in feeder.commands), "a refused runner published"


# -- guards against a fed /joint_states ----------------------------------------------------
@pytest.mark.slow
def test_commands_stay_within_the_envelope_and_joints_match_by_name(
        feeder: Feeder, domain: int, ros_process: Any, artifacts: dict, tmp_path: Path) -> None:
    feeder.mode = "reversed"  # peers read positions in message order; we match by name
    proc = runner(ros_process, domain, tmp_path, artifacts["constant"], max_duration=1.0)
    assert finish(proc) == 0, proc.output()
    records = feeder.sent(TRAJ)
    moves = [positions(m) for _, _, m in records if positions(m) is not None]
    assert len(moves) > 10, proc.output()
    assert_steps_bounded(records)
    # soft start: the first command is close to the measured pose and the steps grow
    first = np.abs(moves[0] - HOME)
    assert float(first.max()) < 0.5 * STEP_BOUND
    # the constant action's sign per joint lands on the joint of that name
    signs = np.sign(np.array([0.8, -0.5, 0.3, 0.6, 0.2, -0.4, 0.1]))
    assert np.all(np.sign(moves[len(moves) // 2] - HOME) == signs)
    assert np.allclose(moves[-1], HOME)  # done: one hold at the measured pose
    assert feeder.last_status().get("state") == "done"


@pytest.mark.slow
def test_state_missing_a_joint_never_starts(feeder: Feeder, domain: int, ros_process: Any,
                                            artifacts: dict, tmp_path: Path) -> None:
    feeder.mode = "missing"
    proc = runner(ros_process, domain, tmp_path, artifacts["constant"])
    assert feeder.wait(lambda: len(feeder.status) > 5)
    time.sleep(0.5)
    assert feeder.last_status()["state"] == "idle"
    assert not any(positions(m) is not None for _, _, m in feeder.sent(TRAJ))
    assert proc.stop() == 0


def _run_until_stale(feeder: Feeder, domain: int, ros_process: Any, artifacts: dict,
                     tmp_path: Path) -> tuple[Any, int]:
    """A runner commanding, then /joint_states stops until it holds on `stale_state`:
    the runner process and the number of commands sent by then."""
    proc = runner(ros_process, domain, tmp_path, artifacts["constant"])
    assert feeder.wait(lambda: len(feeder.sent(TRAJ)) > 5), proc.output()
    feeder.mode = "silent"
    assert feeder.wait(lambda: feeder.last_status().get("last_guard") == "stale_state", 5)
    time.sleep(0.3)
    return proc, len(feeder.sent(TRAJ))


@pytest.mark.slow
def test_stale_state_holds_and_an_estop_then_holds_without_a_pose(
        feeder: Feeder, domain: int, ros_process: Any, artifacts: dict, tmp_path: Path) -> None:
    proc, n = _run_until_stale(feeder, domain, ros_process, artifacts, tmp_path)
    time.sleep(0.5)
    silent = feeder.sent(TRAJ)[n:]
    assert not silent, "commands sent while /joint_states was stale"
    assert positions(feeder.sent(TRAJ)[n - 1][2]) is None  # the hold was an empty trajectory
    # an e-stop while the state is stale: its hold is an empty trajectory too, never a
    # position at the last (old) pose
    feeder.pub_estop.publish(Bool(data=True))
    assert feeder.wait(lambda: feeder.last_status().get("state") == "estopped", 5)
    time.sleep(0.2)
    after = feeder.sent(TRAJ)[n:]
    assert after and all(positions(m) is None for _, _, m in after), after
    assert finish(proc) == 1, proc.output()  # a run ended by the e-stop is not a success
    feeder.pub_estop.publish(Bool(data=False))


@pytest.mark.slow
def test_stale_state_resumes_without_a_jump(
        feeder: Feeder, domain: int, ros_process: Any, artifacts: dict, tmp_path: Path) -> None:
    proc, n = _run_until_stale(feeder, domain, ros_process, artifacts, tmp_path)
    feeder.mode = "normal"
    assert feeder.wait(lambda: len(feeder.sent(TRAJ)) > n + 5)
    assert_steps_bounded(feeder.sent(TRAJ))
    assert proc.stop() == 0


@pytest.mark.slow
def test_nan_policy_holds_and_reports(feeder: Feeder, domain: int, ros_process: Any,
                                      artifacts: dict, tmp_path: Path) -> None:
    proc = runner(ros_process, domain, tmp_path, artifacts["nan"])
    assert feeder.wait(lambda: feeder.last_status().get("last_guard") == "nan_action"), \
        proc.output()
    time.sleep(0.3)
    moves = [positions(m) for _, _, m in feeder.sent(TRAJ)]
    assert all(m is None or np.allclose(m, HOME) for m in moves)  # only holds, at the pose
    assert "policy output is not 7 finite numbers" in feeder.last_status()["last_guard_reason"]
    assert proc.stop() == 0


@pytest.mark.slow
def test_goal_in_another_frame_is_refused(feeder: Feeder, domain: int, ros_process: Any,
                                          artifacts: dict, tmp_path: Path) -> None:
    proc = runner(ros_process, domain, tmp_path, artifacts["constant"], goal="")
    msg = PoseStamped()
    msg.header.frame_id = "world"
    msg.pose.position.x, msg.pose.position.z = 0.5, 0.3
    assert feeder.wait(lambda: feeder.pub_goal.get_subscription_count() > 0)
    assert feeder.wait(lambda: (feeder.pub_goal.publish(msg) or
                                "goal_refused" in feeder.last_status()), 10)
    text = feeder.last_status()["goal_refused"]
    assert "'world'" in text and "'panda_link0'" in text
    assert not any(positions(m) is not None for _, _, m in feeder.sent(TRAJ))
    assert proc.stop() == 0


@pytest.mark.slow
def test_dry_run_publishes_to_the_preview_topic_only(
        feeder: Feeder, domain: int, ros_process: Any, artifacts: dict, tmp_path: Path) -> None:
    proc = runner(ros_process, domain, tmp_path, artifacts["constant"], dry_run=True,
                  max_duration=0.5)
    assert finish(proc) == 0, proc.output()
    assert len(feeder.sent(ifc.preview_topic(TRAJ))) > 5
    assert not feeder.sent(TRAJ) and not feeder.sent(POS)


def test_no_controller_listening_holds_with_a_message(
        domain: int, ros_process: Any, artifacts: dict, tmp_path: Path) -> None:
    f = Feeder(domain, listen=False)
    try:
        proc = runner(ros_process, domain, tmp_path, artifacts["constant"])
        assert f.wait(lambda: f.last_status().get("last_guard") == "no_controller"), \
            proc.output()
        assert "no controller is listening on /arm_controller/joint_trajectory" in \
            f.last_status()["last_guard_reason"]
        assert proc.stop() == 0
    finally:
        f.close()


# -- motion on a real sim_robot ------------------------------------------------------------
@pytest.fixture(scope="module")
def sim_domain(ros_domain: int, domain: int, free_domain_fn: Any) -> int:
    return free_domain_fn(ros_domain, domain)


@pytest.fixture(scope="module")
def sim(sim_domain: int, ros_process: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    tmp = tmp_path_factory.mktemp("sim")
    # 100 Hz states: the test process records every message even on a loaded machine
    proc = ros_process.module("sim_robot", sim_domain, tmp / "sim_robot.log", robot="panda",
                              task="reach", joint_state_rate=100.0)
    f = Feeder(sim_domain, publish=False)
    assert f.wait(lambda: f.q is not None and not np.allclose(f.q, 0), 30), proc.output()
    yield f
    f.close()
    assert proc.stop() == 0, proc.output()


def _home(sim: Feeder) -> None:
    pub = sim.node.create_publisher(JointTrajectory, TRAJ, ifc.COMMANDS)
    assert sim.wait(lambda: pub.get_subscription_count() > 0)
    pub.publish(ifc.trajectory_msg(NAMES, [(1.0, HOME, None)]))
    assert sim.wait(lambda: float(np.max(np.abs(sim.q - HOME))) < 0.01, 10)
    sim.node.destroy_publisher(pub)
    time.sleep(0.2)
    with sim.lock:
        for v in sim.commands.values():
            v.clear()


def _moving(sim: Feeder, proc: Any) -> None:
    assert sim.wait(lambda: sim.last_status().get("state") == "running"
                    and len(sim.sent(TRAJ)) > 3, 20), proc.output()
    assert sim.wait(lambda: float(np.max(np.abs(sim.q - HOME))) > 0.05, 20), proc.output()


@pytest.mark.slow
def test_estop_mid_motion_holds_within_one_period(
        sim: Feeder, sim_domain: int, ros_process: Any, artifacts: dict, tmp_path: Path) -> None:
    _home(sim)
    sim.status.clear()
    proc = runner(ros_process, sim_domain, tmp_path, artifacts["constant"])
    _moving(sim, proc)
    sim.pub_estop.publish(Bool(data=True))
    try:
        assert sim.wait(lambda: sim.last_status().get("state") == "estopped", 5)
        time.sleep(0.5)
        records = sim.sent(TRAJ)
        status = sim.last_status()
        assert status["last_guard"] == "estop", status
        # obeyed within one control period of its arrival (measured by the runner)
        assert float(status["estop_reaction_ms"]) <= DT * 1000 + 10, status
        sent = [m for _, _, m in records if positions(m) is not None]
        # the runner's commands (those sent before this probe matched are missing), then
        # the hold at the measured pose as the last message
        assert 0 < len(sent) <= int(status["commands"]) + 1
        assert float(np.max(np.abs(positions(records[-1][2]) - records[-1][1]))) < STEP_BOUND
        assert_steps_bounded(records, sim=sim)
        assert finish(proc) == 1, proc.output()  # a run ended by the e-stop is not a success
    finally:
        sim.pub_estop.publish(Bool(data=False))
        time.sleep(0.2)


@pytest.mark.slow
def test_sigint_mid_motion_sends_one_hold_at_the_measured_pose_and_exits_0(
        sim: Feeder, sim_domain: int, ros_process: Any, artifacts: dict, tmp_path: Path) -> None:
    sim.pub_estop.publish(Bool(data=False))  # released (the latched value a runner gets)
    _home(sim)
    sim.status.clear()
    proc = runner(ros_process, sim_domain, tmp_path, artifacts["constant"])
    _moving(sim, proc)
    assert proc.stop() == 0, proc.output()
    time.sleep(0.3)
    records = sim.sent(TRAJ)
    assert records, ({k: len(v) for k, v in sim.commands.items()}, proc.output())
    _, measured, last = records[-1]
    hold = positions(last)
    # the hold is the pose the runner measured last (the arm moves on during delivery)
    assert hold is not None and float(np.max(np.abs(hold - measured))) < STEP_BOUND
    assert_steps_bounded(records, sim=sim)
    time.sleep(1.0)
    assert float(np.max(np.abs(sim.q - hold))) < 0.02, "the arm did not stop at the hold"
    assert "hold sent at the measured pose" in proc.output()
