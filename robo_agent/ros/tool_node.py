"""`ToolNode`: the rclpy node behind the tools: parameters, topics and the latest measurements.

It subscribes to `/joint_states` (joints matched by name), the latched e-stop, object
poses and the camera, and owns the publishers to the controller topics (or, in dry-run,
to the preview topics). Callbacks only store data and wake waiters; the tool logic lives
in `robo_agent.ros.tool_runner.ToolRunner`, which runs in the caller's thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from geometry_msgs.msg import PoseStamped
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool, Float64MultiArray, String
from trajectory_msgs.msg import JointTrajectory

from robo_agent.core.robot_spec import RobotSpec, load_robot
from robo_agent.core.tools import ToolError
from robo_agent.ros import interfaces as ifc

PARAMETERS: dict[str, tuple[object, str]] = {
    "robot": ("panda", "robot description name or YAML path"),
    "safety_policy": ("", "safety policy name in config/safety or a YAML path ('' = default)"),
    "audit_log": ("", "JSONL audit log path ('' = ~/.ros/robo_agent/audit.jsonl)"),
    "dry_run": (False, "true: commands go to the preview topics only (a policy may also set it)"),
    "joint_states_topic": (ifc.JOINT_STATES_TOPIC, "JointState input"),
    "trajectory_topic": ("", "JointTrajectory output; '' = the robot description's"),
    "position_topic": ("", "Float64MultiArray output (policy runner); '' = description's"),
    "gripper_topic": ("", "gripper Float64MultiArray output; '' = the description's"),
    "estop_topic": (ifc.ESTOP_TOPIC, "latched std_msgs/Bool e-stop shared by all executors"),
    "preview_prefix": (ifc.PREVIEW_PREFIX, "dry-run commands go to <prefix>/<controller topic>"),
    "objects_prefix": (ifc.OBJECTS_PREFIX, "object poses: <prefix>/<name>/pose"),
    "camera_topic": ("", "sensor_msgs/Image input; '' = the robot description's"),
    "camera_request_topic": (ifc.CAMERA_REQUEST_TOPIC, "String JSON image request output"),
    "image_dir": ("", "where camera PNGs are saved ('' = ~/.ros/robo_agent/images)"),
    "ik_tolerance": (0.01, "m, largest IK position residual accepted as reachable"),
    "orientation_tolerance": (0.1, "rad, largest IK orientation error accepted"),
    "settle_timeout": (2.0, "s allowed after a motion's duration to reach tolerance"),
    "policies": ("", "policy artifact folder for the policy tools ('' = "
                 "~/.ros/robo_agent/policies)"),
    "rehearsal_required": (False, "run_policy refuses artifacts without a passing rehearsal"),
}


@dataclass(frozen=True)
class JointSnapshot:
    """The latest measured arm state; `stamp` is the monotonic receipt time."""

    q: np.ndarray
    qd: np.ndarray
    gripper_q: np.ndarray | None
    stamp: float
    seq: int

    def age(self) -> float:
        return time.monotonic() - self.stamp


class ToolNode(Node):
    """Node with the tools' parameters, subscriptions and controller publishers."""

    def __init__(self, node_name: str = "robo_agent_tools", **kwargs: object) -> None:
        super().__init__(node_name, **kwargs)
        for name, (default, text) in PARAMETERS.items():
            self.declare_parameter(
                name, default, ParameterDescriptor(description=text, dynamic_typing=True))
        self.p = {name: self.get_parameter(name).value for name in PARAMETERS}
        self.spec: RobotSpec = load_robot(str(self.p["robot"]))
        ctl = self.spec.controllers
        self.trajectory_topic = str(self.p["trajectory_topic"]) or ctl.trajectory_topic
        self.position_topic = str(self.p["position_topic"]) or ctl.position_topic
        self.gripper_topic = str(self.p["gripper_topic"]) or ctl.gripper_topic
        ros_home = Path.home() / ".ros" / "robo_agent"
        self.audit_path = Path(str(self.p["audit_log"]) or ros_home / "audit.jsonl")
        self.image_dir = Path(str(self.p["image_dir"]) or ros_home / "images")

        self._index = {n: i for i, n in enumerate(self.spec.joint_names)}
        g = self.spec.gripper
        self._gindex = {n: i for i, n in enumerate(g.joints)} if g else {}
        self._cond = threading.Condition()
        self._q = np.full(self.spec.dof, np.nan)
        self._qd = np.zeros(self.spec.dof)
        self._gq = np.full(len(self._gindex), np.nan) if g else None
        self._stamp: float | None = None
        self._seq = 0
        self.estopped = False
        self.on_estop: Callable[[bool], None] | None = None  # set by the runner
        self._objects: dict[str, tuple[PoseStamped, float]] = {}
        self._object_subs: dict[str, object] = {}
        self._image: tuple[Image, float] | None = None
        self._image_event = threading.Event()

        self.create_subscription(JointState, str(self.p["joint_states_topic"]),
                                 self._on_joint_state, ifc.STATES)
        self.create_subscription(Bool, str(self.p["estop_topic"]), self._on_estop, ifc.LATCHED)
        self.camera_topic = str(self.p["camera_topic"]) or self.spec.camera_topic
        # Best effort, like camera drivers publish (a reliable reader would not match them).
        self.create_subscription(Image, self.camera_topic, self._on_image,
                                 qos_profile_sensor_data)
        self.pub_estop = self.create_publisher(Bool, str(self.p["estop_topic"]), ifc.LATCHED)
        self.pub_camera_request = self.create_publisher(
            String, str(self.p["camera_request_topic"]), ifc.COMMANDS)
        self._pubs: dict[tuple[str, bool], object] = {}
        self.dry_run = False  # the runner sets the effective value (parameter OR policy)

    # -- publishers: real or preview, created on first use --------------------------------
    def _pub(self, kind: str) -> object:
        topic = {"trajectory": self.trajectory_topic, "gripper": self.gripper_topic,
                 "position": self.position_topic}[kind]
        if topic is None:
            raise ValueError(f"robot {self.spec.name} has no {kind} controller topic")
        key = (kind, self.dry_run)
        if key not in self._pubs:
            msg_type = JointTrajectory if kind == "trajectory" else Float64MultiArray
            prefix = str(self.p["preview_prefix"])
            name = ifc.preview_topic(topic, prefix) if self.dry_run else topic
            self._pubs[key] = self.create_publisher(msg_type, name, ifc.COMMANDS)
        return self._pubs[key]

    def create_command_publishers(self) -> None:
        """Create the command publishers up front so the first command is not delayed by
        discovery (a publisher created at first use could drop its first message)."""
        self._pub("trajectory")
        if self.gripper_topic and self.spec.gripper:
            self._pub("gripper")

    def require_listener(self, kind: str, timeout: float = 1.0) -> None:
        """Raise ToolError('unavailable') unless a controller subscribes to the command topic.

        A command published before the controller is matched would be lost silently; a
        dry run's preview topic needs no listener."""
        if self.dry_run:
            return
        pub = self._pub(kind)
        t0 = time.monotonic()
        while pub.get_subscription_count() == 0:  # type: ignore[attr-defined]
            if time.monotonic() - t0 > timeout:
                raise ToolError("unavailable", f"no controller is listening on "
                                f"{pub.topic_name}; is the {kind} controller running?")  # type: ignore[attr-defined]
            time.sleep(0.01)

    def publish_trajectory(self, msg: JointTrajectory) -> str:
        pub = self._pub("trajectory")
        pub.publish(msg)  # type: ignore[attr-defined]
        return pub.topic_name  # type: ignore[attr-defined]

    def publish_gripper(self, positions: list[float]) -> str:
        pub = self._pub("gripper")
        pub.publish(Float64MultiArray(data=[float(v) for v in positions]))  # type: ignore[attr-defined]
        return pub.topic_name  # type: ignore[attr-defined]

    def publish_hold(self) -> str:
        """An empty trajectory: joint_trajectory_controller stops and holds position."""
        msg = JointTrajectory()
        msg.joint_names = list(self.spec.joint_names)
        return self.publish_trajectory(msg)

    def publish_estop(self, engaged: bool) -> None:
        self.estopped = engaged
        self.pub_estop.publish(Bool(data=engaged))

    # -- joint state -----------------------------------------------------------------------
    def _on_joint_state(self, msg: JointState) -> None:
        now = time.monotonic()
        with self._cond:
            n = min(len(msg.name), len(msg.position))
            for k in range(n):
                name = msg.name[k]
                if name in self._index:
                    i = self._index[name]
                    self._q[i] = msg.position[k]
                    self._qd[i] = msg.velocity[k] if k < len(msg.velocity) else 0.0
                elif self._gq is not None and name in self._gindex:
                    self._gq[self._gindex[name]] = msg.position[k]
            if np.all(np.isfinite(self._q)):
                self._stamp = now
                self._seq += 1
            self._cond.notify_all()

    def snapshot(self) -> JointSnapshot | None:
        """The latest complete arm state, or None if none was received yet."""
        with self._cond:
            if self._stamp is None:
                return None
            gq = self._gq.copy() if self._gq is not None else None
            return JointSnapshot(self._q.copy(), self._qd.copy(), gq, self._stamp, self._seq)

    def wait_for_state(self, after_seq: int, timeout: float) -> JointSnapshot | None:
        """Block until a state newer than `after_seq` arrives (or timeout)."""
        with self._cond:
            self._cond.wait_for(lambda: self._seq > after_seq, timeout=timeout)
        return self.snapshot()

    def gripper_width(self, snap: JointSnapshot) -> float | None:
        g = self.spec.gripper
        if g is None or snap.gripper_q is None or not np.all(np.isfinite(snap.gripper_q)):
            return None
        return g.width(snap.gripper_q)

    # -- e-stop, objects, camera -------------------------------------------------------------
    def _on_estop(self, msg: Bool) -> None:
        was, self.estopped = self.estopped, bool(msg.data)
        if self.on_estop is not None and was != self.estopped:
            self.on_estop(self.estopped)

    def refresh_object_subscriptions(self) -> None:
        """Subscribe to every <objects_prefix>/<name>/pose topic on the graph."""
        prefix = str(self.p["objects_prefix"]).rstrip("/") + "/"
        for topic, types in self.get_topic_names_and_types():
            if (topic.startswith(prefix) and topic.endswith("/pose")
                    and "geometry_msgs/msg/PoseStamped" in types):
                name = topic[len(prefix):-len("/pose")]
                if name and name not in self._object_subs:
                    self._object_subs[name] = self.create_subscription(
                        PoseStamped, topic, lambda m, n=name: self._on_object(n, m), ifc.COMMANDS)

    def _on_object(self, name: str, msg: PoseStamped) -> None:
        self._objects[name] = (msg, time.monotonic())

    def objects(self) -> dict[str, tuple[PoseStamped, float]]:
        return dict(self._objects)

    @property
    def object_topic_count(self) -> int:
        return len(self._object_subs)

    def _on_image(self, msg: Image) -> None:
        self._image = (msg, time.monotonic())
        self._image_event.set()

    def request_image(self, width: int, height: int, timeout: float) -> Image | None:
        """The next image on the camera topic, of any size (the caller resizes).

        The request is a hint for cameras that render on demand (`sim_robot`); a real
        camera driver streams and ignores it, so both are served by the same path.
        """
        import json

        self._image_event.clear()
        t0 = last = time.monotonic()
        request = String(data=json.dumps({"width": width, "height": height}))
        self.pub_camera_request.publish(request)
        while time.monotonic() - t0 < timeout:
            if time.monotonic() - last > 1.0:  # sent before the renderer was discovered
                self.pub_camera_request.publish(request)
                last = time.monotonic()
            self._image_event.wait(timeout=0.1)
            self._image_event.clear()
            img = self._image
            if img is not None and img[1] >= t0:
                return img[0]
        return None
