"""The iiwa and the xArm6 through the bridge too (the Panda has its own full suite):
sim_robot and arm_bridge as processes for each robot, tools called over the JSON topics,
results checked against the robot path's kinematics and the measured joint state."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from robo_agent.core.robot_spec import load_robot
from robo_agent.kinematics import Kinematics

pytestmark = pytest.mark.slow  # a sim_robot and an arm_bridge per robot: ~5-8 s each


@pytest.fixture(scope="module", params=["iiwa", "xarm6"])
def arm(request: pytest.FixtureRequest, ros_domain: int, free_domain_fn: Any,
        ros_process: Any, ros_probe_class: Any,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any]]:
    name = request.param
    domain = free_domain_fn(ros_domain)
    tmp = tmp_path_factory.mktemp(name)
    probe = ros_probe_class(domain, name=f"probe_{name}")
    sim = ros_process.module("sim_robot", domain, tmp / "sim_robot.log", robot=name)
    bridge = ros_process.module("arm_bridge", domain, tmp / "arm_bridge.log", robot=name,
                                safety_policy="unattended", audit_log=str(tmp / "audit.jsonl"))
    try:
        assert probe.wait_for(lambda: probe.states > 10, 30.0), sim.output()
        t0 = time.monotonic()
        while True:
            assert bridge.proc.poll() is None, bridge.output()
            probe.send_raw(json.dumps({"id": "ping", "tool": "get_robot_state"}))
            if probe.wait_for(lambda: "ping" in probe.results, 1.0) and \
                    probe.results.pop("ping")["ok"]:
                break
            assert time.monotonic() - t0 < 30.0, bridge.output()
        probe.prove_connected(lambda: probe.call("stop"))
        yield load_robot(name), probe
    finally:
        codes = (bridge.stop(), sim.stop())
        probe.close()
    assert codes == (0, 0), f"{bridge.output()[-2000:]}\n{sim.output()[-2000:]}"


def test_state_and_motions(arm: tuple[Any, Any]) -> None:
    spec, probe = arm
    kin = Kinematics.for_robot(spec)
    goal = spec.home_array.copy()
    goal[0] += 0.3
    r = probe.call("move_joints", {"positions": goal.tolist(), "duration": 1.5})
    assert r["ok"] and r["data"]["reached"], r
    state = probe.call("get_robot_state")["data"]
    assert list(state["joint_positions"]) == spec.joint_names
    q = np.array(list(state["joint_positions"].values()))
    assert np.allclose(q, goal, atol=0.02)
    ee = state["end_effector"]
    assert ee["frame"] == spec.base_frame
    np.testing.assert_allclose(ee["position"], kin.ee_pose(q)[0], atol=2e-4)  # rounded

    up = probe.call("move_end_effector_relative", {"dz": 0.05})
    assert up["ok"], up
    after = probe.call("get_robot_state")["data"]["end_effector"]["position"]
    assert after[2] - ee["position"][2] == pytest.approx(0.05, abs=0.01)
    assert np.allclose(after[:2], ee["position"][:2], atol=0.01)

    target = [after[0] - 0.05, after[1], after[2]]
    moved = probe.call("move_end_effector", {"position": target})
    assert moved["ok"], moved
    final = probe.call("get_robot_state")["data"]["end_effector"]["position"]
    assert np.linalg.norm(np.subtract(final, target)) < 0.01


def test_refusals(arm: tuple[Any, Any]) -> None:
    spec, probe = arm
    grip = probe.call("set_gripper", {"action": "open"})
    assert not grip["ok"] and grip["error"] == "unavailable"
    far = probe.call("move_end_effector", {"position": [3.0, 0.0, 0.5]})
    assert not far["ok"] and "workspace" in far["message"], far
    # A joint goal that takes the flange through the table is refused, naming the link
    # (its collision mesh dips below z = 0 while the flange frame's origin stays above).
    assert probe.call("move_joints", {"positions": spec.home_array.tolist()})["ok"]
    low = spec.home_array.copy()
    low[1] += 1.2  # shoulder forward, down to the table
    r = probe.call("move_joints", {"positions": low.tolist()})
    assert not r["ok"] and "link" in r["message"] and "table" in r["message"], r
