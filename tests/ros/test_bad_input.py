"""Bad input, one test per kind: each gets a clear error naming the limit, and NO message
reaches a controller topic (the probe listens on all of them, in its own process context,
while sim_robot and arm_bridge run as separate processes)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from sensor_msgs.msg import JointState

from robo_agent.core.audit import read_audit_log
from robo_agent.core.robot_spec import load_robot
from robo_agent.ros import interfaces as ifc

SPEC = load_robot("panda")
HOME = SPEC.home_array.tolist()
TRAJ = "/arm_controller/joint_trajectory"
SETTLE = 0.25  # s to let any stray command arrive at the probe


@pytest.fixture(scope="module")
def bridge(sim_and_bridge: dict[str, Any], probe: Any) -> Any:
    return probe


def assert_nothing_reached_controllers(probe: Any) -> None:
    time.sleep(SETTLE)
    assert probe.command_count() == 0, {t: len(v) for t, v in probe.commands.items()}


CASES = [
    ("out_of_range", "move_joints", {"joints": {"panda_joint2": 2.5}}, "refused",
     "outside its joint range [-1.8326, 1.8326]"),
    ("unknown_joint", "move_joints", {"joints": {"elbow": 0.1}}, "invalid_arguments",
     "unknown joint names ['elbow']"),
    ("wrong_length", "move_joints", {"positions": [0.0, 0.1, 0.2]}, "invalid_arguments",
     "has 3 values but panda has 7 joints"),
    ("max_step", "move_joints", {"joints": {"panda_joint1": 2.9}}, "refused", "max_step 2.5"),
    ("outside_workspace", "move_end_effector", {"position": [1.5, 0.0, 0.3]}, "refused",
     "outside the workspace box"),
    ("below_table", "move_end_effector", {"position": [0.5, 0.0, -0.05]}, "refused",
     "outside the workspace box"),
    ("keep_out", "move_end_effector", {"position": [0.0, 0.05, 0.2]}, "refused",
     "keep-out box 'base_column'"),
    ("unreachable", "move_end_effector", {"position": [0.85, 0.0, 0.7]}, "refused",
     "ik_tolerance"),
    ("relative_outside", "move_end_effector_relative", {"dz": 5.0}, "refused", "workspace"),
    ("missing_argument", "move_end_effector", {}, "invalid_arguments",
     "position: missing required argument"),
    ("extra_argument", "move_joints", {"positions": HOME, "speed": 2.0}, "invalid_arguments",
     "speed: unexpected argument"),
    ("wrong_type_list", "move_joints", {"positions": "home"}, "invalid_arguments",
     "positions: Input should be a valid list"),
    ("wrong_type_number", "set_gripper", {"width": "wide"}, "invalid_arguments", "width"),
    ("bad_quaternion", "move_end_effector", {"position": [0.4, 0, 0.3],
                                              "orientation": [0, 0, 0, 3]}, "invalid_arguments",
     "unit quaternion"),
    ("negative_duration", "move_joints", {"positions": HOME, "duration": -1.0},
     "invalid_arguments", "duration"),
    ("unknown_tool", "fly_to_the_moon", {}, "unknown_tool", "known tools: get_robot_state"),
    ("arguments_not_object", "move_joints", [0.1, 0.2], "invalid_arguments",
     "must be a JSON object"),
]


@pytest.mark.parametrize(("case", "tool", "args", "code", "needle"), CASES,
                         ids=[c[0] for c in CASES])
def test_bad_call_is_refused_and_nothing_moves(bridge: Any, case: str, tool: str, args: Any,
                                               code: str, needle: str) -> None:
    bridge.clear()
    r = bridge.call(tool, args)
    assert r["ok"] is False and r["error"] == code, r
    assert needle in r["message"], r["message"]
    assert_nothing_reached_controllers(bridge)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_values_are_refused(bridge: Any, literal: str) -> None:
    bridge.clear()
    # JSON has no NaN/inf, but Python's json (and many clients) write these literals.
    positions = f"[{literal}, 0, 0, -2, 0, 1.5, 0.7]"
    text = '{"id": "nf", "tool": "move_joints", "arguments": {"positions": ' + positions + "}}"
    bridge.send_raw(text)
    assert bridge.wait_for(lambda: "nf" in bridge.results, 10.0)
    r = bridge.results.pop("nf")
    assert r["error"] == "invalid_arguments" and "finite number" in r["message"], r
    assert_nothing_reached_controllers(bridge)


def test_malformed_request_gets_an_error(bridge: Any) -> None:
    bridge.clear()
    bridge.send_raw("move the arm please")
    assert bridge.wait_for(lambda: "None" in bridge.results, 10.0)
    r = bridge.results.pop("None")
    assert r["ok"] is False and "malformed tool call" in r["message"]
    assert_nothing_reached_controllers(bridge)


def test_calls_during_estop_are_refused(bridge: Any, operator_token: str) -> None:
    assert bridge.call("emergency_stop", {"reason": "bad input test"})["ok"]
    try:
        bridge.wait_for(lambda: False, SETTLE)
        bridge.clear()  # the e-stop itself sends a hold; count only what follows
        for tool, args in [("move_joints", {"positions": HOME}),
                           ("move_end_effector_relative", {"dz": 0.01}),
                           ("move_end_effector", {"position": [0.4, 0.0, 0.3]}),
                           ("set_gripper", {"action": "close"})]:
            r = bridge.call(tool, args)
            assert r["error"] == "estop" and "emergency stop is latched" in r["message"], r
        assert_nothing_reached_controllers(bridge)
    finally:
        assert bridge.call("reset_emergency_stop", token=operator_token)["ok"]


@pytest.mark.slow
def test_absent_and_stale_joint_states(bridge: Any, ros_domain: int, tmp_path: Any) -> None:
    """An executor whose /joint_states is absent, then stale, refuses to move."""
    from robo_agent.ros.tool_executor import RosToolExecutor

    topic = "/stale_test/joint_states"
    with RosToolExecutor(safety_policy="unattended", audit_log=tmp_path / "a.jsonl",
                         node_name="stale_tools", domain_id=ros_domain,
                         parameters={"joint_states_topic": topic}) as ex:
        bridge.prove_connected(lambda: ex.call("stop"))
        r = ex.call("move_joints", {"positions": HOME})
        assert r.error == "stale_state" and "no /joint_states message received" in r.message
        assert ex.call("get_robot_state").error == "stale_state"
        pub = bridge.node.create_publisher(JointState, topic, ifc.STATES)
        msg = JointState(name=SPEC.joint_names, position=HOME, velocity=[0.0] * 7)
        assert bridge.wait_for(lambda: (pub.publish(msg), ex.node.snapshot())[1] is not None, 5)
        time.sleep(0.7)  # older than the 0.5 s stale_state_timeout
        r = ex.call("move_joints", {"positions": HOME})
        assert r.error == "stale_state" and "above the stale_state_timeout of 0.5 s" in r.message
        r = ex.call("move_end_effector_relative", {"dz": 0.01})
        assert r.error == "stale_state"
        state = ex.call("get_robot_state")
        assert state.ok and state.data["stale"] is True
        assert_nothing_reached_controllers(bridge)
        bridge.node.destroy_publisher(pub)


@pytest.mark.slow
def test_burst_beyond_rate_limit(bridge: Any, ros_domain: int, tmp_path: Any) -> None:
    from robo_agent.ros.tool_executor import RosToolExecutor

    policy = tmp_path / "strict.yaml"
    policy.write_text(json.dumps({"name": "strict", "rate_limits": {
        "move_joints": {"max_calls": 1, "period": 60.0},
        "get_object_poses": {"max_calls": 2, "period": 60.0}}}))
    with RosToolExecutor(safety_policy=policy, audit_log=tmp_path / "rate.jsonl",
                         node_name="rate_tools", domain_id=ros_domain) as ex:
        assert bridge.wait_for(lambda: ex.call("get_robot_state").ok, 5.0)
        bridge.prove_connected(lambda: ex.call("stop"))
        first = ex.call("move_joints", {"positions": HOME})
        assert first.ok, first
        bridge.wait_for(lambda: False, SETTLE)
        bridge.clear()
        burst = [ex.call("move_joints", {"positions": HOME}) for _ in range(5)]
        assert all(r.error == "rate_limited" for r in burst)
        assert "at most 1 calls per 60.0 s" in burst[0].message
        reads = [ex.call("get_object_poses").error for _ in range(4)]
        assert reads == [None, None, "rate_limited", "rate_limited"]
        assert_nothing_reached_controllers(bridge)
        assert ex.call("stop").ok  # never rate-limited; sends a hold
        assert bridge.wait_for(lambda: bridge.command_count() >= 1, 5.0)
        time.sleep(SETTLE)
        assert bridge.command_count() == 1
        assert bridge.commands["/arm_controller/joint_trajectory"][0][1].points == []
        rows = read_audit_log(tmp_path / "rate.jsonl")
        assert sum(r["limit"] == "rate_limits" for r in rows) == 7


def test_bad_input_is_audited(sim_and_bridge: dict) -> None:
    rows = read_audit_log(sim_and_bridge["audit"])
    refused = [r for r in rows if r["decision"] == "refused"]
    assert len(refused) >= len(CASES) + 3 + 4
    limits = {r["limit"] for r in refused}
    assert {"joint_range", "workspace", "keep_out.base_column", "ik_tolerance", "max_step",
            "arguments", "estop", "joint_names", "dof"} <= limits
