"""Every tool against the simulated arm, across processes: sim_robot and arm_bridge run as
their own processes; this test calls tools over /robo_agent/tool_call and checks what the
bridge measured against what the probe saw on the controller topics."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from robo_agent.core.audit import read_audit_log
from robo_agent.core.robot_spec import load_robot

SPEC = load_robot("panda")
TRAJ = "/arm_controller/joint_trajectory"
GRIP = "/gripper_controller/commands"


@pytest.fixture(scope="module")
def bridge(sim_and_bridge: dict[str, Any], probe: Any) -> Any:
    return probe


def test_get_robot_state(bridge: Any) -> None:
    assert bridge.call("move_joints", {"positions": SPEC.home_array.tolist()})["ok"]
    assert bridge.call("set_gripper", {"action": "open"})["ok"]
    r = bridge.call("get_robot_state")
    assert r["ok"], r
    d = r["data"]
    assert list(d["joint_positions"]) == SPEC.joint_names
    assert np.allclose(list(d["joint_positions"].values()), SPEC.home_array, atol=0.02)
    assert 0.0 <= d["state_age_s"] < 0.1 and d["estop"] is False
    assert d["gripper_width"] == pytest.approx(0.08, abs=0.002)
    assert d["end_effector"]["frame"] == "panda_link0"
    assert len(d["end_effector"]["position"]) == 3


def test_move_joints_by_name_reports_measured_error(bridge: Any) -> None:
    bridge.clear()
    r = bridge.call("move_joints", {"joints": {"panda_joint1": 0.3}, "duration": 1.0})
    assert r["ok"] and r["data"]["reached"], r
    assert abs(r["data"]["measured"]["panda_joint1"] - 0.3) <= 0.02
    assert r["data"]["max_error_rad"] <= 0.02 and "reached" in r["message"]
    msgs = bridge.commands[TRAJ]
    assert len(msgs) == 1
    traj = msgs[0][1]
    assert traj.joint_names == SPEC.joint_names
    assert traj.points[-1].positions[0] == pytest.approx(0.3)
    state = bridge.call("get_robot_state")["data"]["joint_positions"]
    assert state["panda_joint1"] == pytest.approx(0.3, abs=0.02)


def test_move_joints_full_vector(bridge: Any) -> None:
    target = SPEC.home_array.copy()
    target[3] = -2.0
    r = bridge.call("move_joints", {"positions": target.tolist()})
    assert r["ok"], r
    assert np.allclose(list(r["data"]["measured"].values()), target, atol=0.02)


@pytest.mark.slow
def test_move_end_effector_absolute_and_relative(bridge: Any) -> None:
    r = bridge.call("move_end_effector", {"position": [0.45, 0.05, 0.25]})
    assert r["ok"], r
    assert r["data"]["end_effector_error_m"] < 0.01
    before = bridge.call("get_robot_state")["data"]["end_effector"]["position"]
    r = bridge.call("move_end_effector_relative", {"dz": 0.05, "dy": -0.03})
    assert r["ok"], r
    after = bridge.call("get_robot_state")["data"]["end_effector"]["position"]
    assert np.allclose(np.subtract(after, before), [0.0, -0.03, 0.05], atol=0.01)
    r = bridge.call("move_end_effector_relative", {"dyaw": 0.3})
    assert r["ok"], r


def test_gripper_close_and_open(bridge: Any) -> None:
    bridge.clear()
    r = bridge.call("set_gripper", {"action": "close"})
    assert r["ok"] and r["data"]["width_m"] < 0.005, r
    assert len(bridge.commands[GRIP]) == 1
    r = bridge.call("set_gripper", {"width": 0.06})
    assert r["ok"] and abs(r["data"]["width_m"] - 0.06) <= 0.003, r
    r = bridge.call("set_gripper", {"width": 0.5})  # clipped to the gripper range
    assert r["ok"] and r["data"]["target_width_m"] == pytest.approx(0.08)
    assert "clipped" in r["data"]


@pytest.mark.slow
def test_pick_up_the_cube(bridge: Any) -> None:
    """End to end: the measured results say the cube is held, and the cube really moves."""
    assert bridge.call("set_gripper", {"action": "open"})["ok"]
    cube = bridge.call("get_object_poses")["data"]["objects"]["object"]["position"]
    down = [1.0, 0.0, 0.0, 0.0]  # gripper pointing down
    above = [cube[0], cube[1], cube[2] + 0.1]
    assert bridge.call("move_end_effector", {"position": above, "orientation": down})["ok"]
    assert bridge.call("move_end_effector", {"position": cube})["ok"]
    grip = bridge.call("set_gripper", {"action": "close"})
    assert grip["ok"] and grip["data"]["holding_object"] is True, grip
    assert 0.03 < grip["data"]["width_m"] < 0.05  # the 4 cm cube between the fingers
    assert bridge.call("move_end_effector_relative", {"dz": 0.1})["ok"]
    lifted = bridge.call("get_object_poses")["data"]["objects"]["object"]["position"]
    assert lifted[2] > cube[2] + 0.08, lifted
    assert bridge.call("set_gripper", {"action": "open"})["ok"]
    assert bridge.wait_for(lambda: bridge.call("get_object_poses")["data"]["objects"][
        "object"]["position"][2] < 0.05, 5.0)  # dropped back onto the table
    assert bridge.call("move_end_effector_relative", {"dz": 0.1})["ok"]


def test_stop_sends_hold(bridge: Any) -> None:
    bridge.clear()
    r = bridge.call("stop")
    assert r["ok"], r
    assert bridge.wait_for(lambda: len(bridge.commands[TRAJ]) == 1, 2.0)
    assert bridge.commands[TRAJ][0][1].points == []  # empty trajectory = hold


def test_stop_preempts_a_running_motion(bridge: Any) -> None:
    home = bridge.call("move_joints", {"positions": SPEC.home_array.tolist()})
    assert home["ok"], home
    bridge.clear()
    out: dict[str, Any] = {}
    slow = threading.Thread(target=lambda: out.update(r=bridge.call(
        "move_joints", {"joints": {"panda_joint1": 1.2}, "duration": 4.0})))
    slow.start()
    assert bridge.wait_for(lambda: len(bridge.commands[TRAJ]) > 0, 5.0)
    bridge.call("stop")
    slow.join(10.0)
    r = out["r"]
    assert not r["ok"] and "interrupted by stop" in r["message"], r
    assert r["data"]["measured"]["panda_joint1"] < 1.0


def test_estop_interrupts_the_motion_and_refuses_the_queued_one(bridge: Any,
                                                                operator_token: str) -> None:
    assert bridge.call("move_joints", {"positions": SPEC.home_array.tolist()})["ok"]
    bridge.clear()
    out: dict[str, Any] = {}
    first = threading.Thread(target=lambda: out.update(a=bridge.call(
        "move_joints", {"joints": {"panda_joint1": 1.0}, "duration": 4.0})))
    queued = threading.Thread(target=lambda: out.update(b=bridge.call(
        "move_joints", {"joints": {"panda_joint1": -1.0}, "duration": 1.0})))
    first.start()
    assert bridge.wait_for(lambda: len(bridge.commands[TRAJ]) > 0, 5.0)
    queued.start()
    time.sleep(0.3)  # the second call is queued behind the running motion
    try:
        assert bridge.call("emergency_stop", {"reason": "test"})["ok"]
        first.join(10.0)
        queued.join(10.0)
        assert out["a"]["error"] == "estop" and "interrupted by emergency stop" in \
            out["a"]["message"], out["a"]
        assert out["b"]["error"] == "estop", out["b"]
        sent = [m for _, m in bridge.commands[TRAJ] if m.points]
        assert len(sent) == 1  # only the first motion; the rest are holds
    finally:
        assert bridge.call("reset_emergency_stop", token=operator_token)["ok"]


def test_object_poses_and_camera(bridge: Any) -> None:
    r = bridge.call("get_object_poses")
    assert r["ok"], r
    objs = r["data"]["objects"]
    assert set(objs) == {"object", "goal"}
    assert objs["object"]["frame"] == "panda_link0"
    assert 0.0 < objs["object"]["position"][2] < 0.1  # on the table
    r = bridge.call("get_camera_image", {"width": 160, "height": 120})
    assert r["ok"], r
    png = Path(r["image_path"]).read_bytes()
    assert png.startswith(b"\x89PNG") and r["data"]["width"] == 160
    assert "image_png" not in r


def test_policy_tools_without_that_policy(bridge: Any) -> None:
    r = bridge.call("list_policies", {})
    assert r["ok"], r
    r = bridge.call("run_policy", {"name": "no_such_policy", "goal": [0.5, 0.0, 0.3]})
    assert not r["ok"] and r["error"] == "unavailable"
    assert "no policy named 'no_such_policy'" in r["message"]
    r = bridge.call("stop_policy", {})
    assert r["ok"] and "no policy is running" in r["message"]


def test_estop_latches_across_interfaces(bridge: Any, ros_domain: int,
                                         sim_and_bridge: dict, operator_token: str) -> None:
    """An e-stop from an in-process executor (the MCP server's) stops the bridge too."""
    from robo_agent.ros.tool_executor import RosToolExecutor

    tmp = sim_and_bridge["tmp"]
    with RosToolExecutor(safety_policy="unattended", audit_log=tmp / "mcp_audit.jsonl",
                         node_name="mcp_tools", domain_id=ros_domain) as mcp:
        assert mcp.call("emergency_stop", {"reason": "test"}).ok
        assert bridge.wait_for(lambda: bridge.estop is True, 5.0)
        # The latched topic reaches the bridge process in its own time; wait for it.
        assert bridge.wait_for(lambda: bridge.call("get_robot_state")["data"]["estop"], 5.0)
        bridge.wait_for(lambda: False, 0.3)
        bridge.clear()
        r = bridge.call("move_joints", {"joints": {"panda_joint1": 0.1}})
        assert r["error"] == "estop" and "reset_emergency_stop" in r["message"]
        assert bridge.call("get_robot_state")["data"]["estop"] is True
        assert bridge.wait_for(lambda: False, 0.3) is False
        assert bridge.command_count() == 0
        r = bridge.call("reset_emergency_stop", token=operator_token)
        assert r["ok"] and r["data"]["was_latched"] is True
        assert mcp.node.estopped is False or bridge.wait_for(lambda: not mcp.node.estopped, 5)
    r = bridge.call("move_joints", {"joints": {"panda_joint1": 0.1}})
    assert r["ok"], r


@pytest.mark.slow
def test_confirmation_flow_and_dry_run(bridge: Any, ros_domain: int,
                                       sim_and_bridge: dict) -> None:
    """Default policy: a motion is held with a single-use plan id; confirm_plan executes it.
    Dry run: commands reach the preview topic only."""
    from robo_agent.ros.tool_executor import RosToolExecutor

    tmp = sim_and_bridge["tmp"]
    with RosToolExecutor(safety_policy="default", audit_log=tmp / "confirm.jsonl",
                         node_name="confirm_tools", domain_id=ros_domain) as ex:
        assert bridge.wait_for(lambda: ex.call("get_robot_state").ok, 5.0)
        bridge.prove_connected(lambda: ex.call("stop"))
        held = ex.call("move_joints", {"joints": {"panda_joint1": -0.2}})
        assert not held.ok and held.error == "needs_confirmation"
        plan_id = held.data["plan_id"]
        assert held.data["preview"]["to"]["panda_joint1"] == pytest.approx(-0.2)
        assert bridge.wait_for(lambda: False, 0.3) is False
        assert bridge.command_count() == 0  # nothing moved before confirmation
        done = ex.call("confirm_plan", {"plan_id": plan_id})
        assert done.ok and done.data["executed_tool"] == "move_joints", done
        again = ex.call("confirm_plan", {"plan_id": plan_id})
        assert again.error == "refused" and "already used" in again.message
        decisions = [r["decision"] for r in read_audit_log(tmp / "confirm.jsonl")]
        assert "refused" in decisions and "allowed" in decisions
    with RosToolExecutor(safety_policy="unattended", dry_run=True, node_name="dry_tools",
                         audit_log=tmp / "dry.jsonl", domain_id=ros_domain) as ex:
        assert bridge.wait_for(lambda: ex.call("get_robot_state").ok, 5.0)
        bridge.prove_connected(lambda: ex.call("stop"), "/robo_agent/preview" + TRAJ)
        r = ex.call("move_joints", {"joints": {"panda_joint1": 0.5}})
        assert r.ok and r.data["dry_run"] is True and "/robo_agent/preview/" in r.data["topic"]
        assert bridge.wait_for(lambda: len(bridge.commands["/robo_agent/preview" + TRAJ]) == 1)
        assert bridge.command_count() == 0


def test_audit_log_records_bridge_decisions(sim_and_bridge: dict) -> None:
    rows = read_audit_log(sim_and_bridge["audit"])
    assert {r["decision"] for r in rows} >= {"allowed", "clipped"}
    assert all(r["source"] == "/arm_bridge" for r in rows)
    json.dumps(rows)
