"""Topic names, QoS profiles and message helpers shared by robo_agent's ROS nodes.

Only `robo_agent.ros` imports rclpy. Topic names here are the defaults; every node takes
them as parameters too.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence

import numpy as np
from builtin_interfaces.msg import Duration as DurationMsg
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

JOINT_STATES_TOPIC = "/joint_states"
ESTOP_TOPIC = "/robo_agent/estop"
TOOL_CALL_TOPIC = "/robo_agent/tool_call"
TOOL_RESULT_TOPIC = "/robo_agent/tool_result"
PREVIEW_PREFIX = "/robo_agent/preview"
OBJECTS_PREFIX = "/robo_agent/objects"  # /robo_agent/objects/<name>/pose (PoseStamped)
CAMERA_TOPIC = "/camera/image_raw"
CLOCK_TOPIC = "/clock"  # rosgraph_msgs/Clock: sim_robot's simulated time, as Gazebo's
CAMERA_REQUEST_TOPIC = "/robo_agent/camera/request"  # std_msgs/String JSON {"width", "height"}

# Latched e-stop: a late joiner gets the current state (like /robot_description).
LATCHED = QoSProfile(
    depth=1,
    history=HistoryPolicy.KEEP_LAST,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)
# Commands and tool calls: reliable, volatile, like ros2_control's controllers.
COMMANDS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
# /joint_states: joint_state_broadcaster publishes reliable; a reliable subscriber
# matches it, a best-effort one would too. We keep reliable to match both.
STATES = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
# Status (the policy runner's DiagnosticArray): a monitor that matches late (DDS discovery
# can take seconds on a busy machine, longer than a short run) still gets the recent past.
STATUS = QoSProfile(depth=10, history=HistoryPolicy.KEEP_LAST,
                    reliability=ReliabilityPolicy.RELIABLE,
                    durability=DurabilityPolicy.TRANSIENT_LOCAL)
SENSOR = qos_profile_sensor_data


def duration_msg(seconds: float) -> DurationMsg:
    sec = int(np.floor(seconds))
    return DurationMsg(sec=sec, nanosec=round((seconds - sec) * 1e9) % 1_000_000_000)


def duration_seconds(msg: DurationMsg) -> float:
    return float(msg.sec) + float(msg.nanosec) * 1e-9


def trajectory_msg(
    joint_names: Sequence[str],
    points: Sequence[tuple[float, np.ndarray, np.ndarray | None]],
) -> JointTrajectory:
    """A JointTrajectory starting 'now' (zero stamp), as joint_trajectory_controller expects."""
    msg = JointTrajectory()
    msg.joint_names = list(joint_names)
    for t, q, qd in points:
        pt = JointTrajectoryPoint()
        # array('d') is rclpy's fast path for float64[] fields (no per-element checks).
        pt.positions = array("d", np.asarray(q, dtype=np.float64).tobytes())
        if qd is not None:
            pt.velocities = array("d", np.asarray(qd, dtype=np.float64).tobytes())
        pt.time_from_start = duration_msg(t)
        msg.points.append(pt)
    return msg


def preview_topic(topic: str, prefix: str = PREVIEW_PREFIX) -> str:
    """Where a dry run publishes what would have gone to `topic`."""
    return prefix.rstrip("/") + "/" + topic.lstrip("/")


def object_topic(name: str, prefix: str = OBJECTS_PREFIX) -> str:
    return f"{prefix.rstrip('/')}/{name}/pose"
