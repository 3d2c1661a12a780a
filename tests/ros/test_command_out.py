"""The runner's pre-serialized command: the bytes it publishes decode (with rclpy's own
deserializer) to exactly the message it would otherwise build, for both interfaces."""

from __future__ import annotations

import numpy as np
import pytest
from rclpy.serialization import deserialize_message
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory

from robo_agent.core.robot_spec import load_robot
from robo_agent.ros import interfaces as ifc
from robo_agent.ros.command_out import SerializedCommand


def test_trajectory_bytes_decode_to_the_built_message() -> None:
    robot = load_robot("panda")
    home = np.asarray(robot.home, dtype=np.float64)
    cmd = SerializedCommand(ifc.trajectory_msg(robot.joint_names, [(0.004, home, None)]),
                            lambda m, v: setattr(m.points[0], "positions", v.tolist()),
                            robot.dof)
    rng = np.random.default_rng(0)
    first = None
    for _ in range(20):
        q = home + rng.uniform(-1, 1, robot.dof)
        raw = cmd.encode(q)
        first = first or raw
        got = deserialize_message(raw, JointTrajectory)
        want = ifc.trajectory_msg(robot.joint_names, [(0.004, q, None)])
        assert got == want
        assert list(got.points[0].positions) == q.tolist()  # bit-exact
    # each call returns its own bytes: a queued (delayed) command never changes
    assert deserialize_message(first, JointTrajectory).points[0].positions[0] != q[0]


def test_position_controller_bytes_and_bad_sizes() -> None:
    cmd = SerializedCommand(Float64MultiArray(), lambda m, v: setattr(m, "data", v.tolist()),
                            3)
    got = deserialize_message(cmd.encode(np.array([0.1, -2.0, 3.5])), Float64MultiArray)
    assert list(got.data) == [0.1, -2.0, 3.5]
    with pytest.raises(ValueError, match="expected 3 positions"):
        cmd.encode(np.zeros(4))
