"""`sim_robot`: a PyBullet arm that speaks ros2_control topics, a stand-in for real hardware.

Publishes `/joint_states` at `joint_state_rate` (default 250 Hz) and follows
`/<arm>/joint_trajectory` (JointTrajectory, time-interpolated like
joint_trajectory_controller; joints matched by name; a new trajectory replaces the old
one; an empty one holds position), `/<position>/commands` (Float64MultiArray, one value
per arm joint, non-finite rejected like forward_command_controller) and
`/<gripper>/commands` (one position per gripper joint). Publishes the scene's object
poses (PoseStamped on /robo_agent/objects/<name>/pose) and camera images (rgb8
sensor_msgs/Image on the robot description's `camera_topic`, like a real camera driver)
on request (/robo_agent/camera/request, String JSON {"width", "height"}) or at
`camera_rate`.

Physics runs in its own thread on absolute deadlines, so the state rate does not drift;
ROS callbacks only hand commands over under a lock. A machine too busy to keep up (more
than 0.25 s behind) drops the lost time rather than burst: the simulated time, published
on `/clock` at `clock_rate`, then runs slower than the wall clock, and whoever times an
episode by the wall clock (the rehearsal) can measure by how much.

    python -m robo_agent.ros.sim_robot --ros-args -p robot:=panda -p task:=pick_and_place
"""

from __future__ import annotations

import json
import sys
import threading
import time

import numpy as np
import rclpy
from geometry_msgs.msg import PoseStamped
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64MultiArray, String
from trajectory_msgs.msg import JointTrajectory

from robo_agent.core.robot_spec import load_robot
from robo_agent.core.trajectory import Trajectory, TrajectoryError, build_trajectory
from robo_agent.ros import interfaces as ifc
from robo_agent.ros.node_main import run_node
from robo_agent.sim.facade import PyBullet
from robo_agent.sim.robot import SimRobot
from robo_agent.sim.tasks import task_class

PARAMETERS: dict[str, tuple[object, str]] = {
    "robot": ("panda", "robot description name or YAML path"),
    "task": ("", "scene: reach | push | pick_and_place; empty picks pick_and_place for "
             "robots with a gripper, reach otherwise"),
    "seed": (0, "seed for the scene's object and goal placement"),
    "joint_state_rate": (250.0, "Hz of /joint_states (also the control-loop rate)"),
    "physics_timestep": (0.002, "s, upper bound of one physics step"),
    "real_time_factor": (1.0, "sim seconds per wall second"),
    "object_pose_rate": (10.0, "Hz of the object pose topics (0 = off)"),
    "clock_rate": (50.0, "Hz of /clock, the simulated time (rosgraph_msgs/Clock, as a "
                   "Gazebo sim publishes it; it falls behind the wall clock when the "
                   "machine cannot keep up; 0 = off)"),
    "camera_rate": (0.0, "Hz of the camera topic (0 = only on request)"),
    "camera_width": (320, "default image width, px"),
    "camera_height": (240, "default image height, px"),
    "joint_states_topic": (ifc.JOINT_STATES_TOPIC, "JointState output topic"),
    "trajectory_topic": ("", "JointTrajectory input; empty = the robot description's"),
    "position_topic": ("", "Float64MultiArray input; empty = the robot description's"),
    "gripper_topic": ("", "gripper Float64MultiArray input; empty = the description's"),
    "gui": (False, "open the PyBullet GUI window"),
}


class SimRobotNode(Node):
    """PyBullet-backed arm under simulated ros2_control controllers."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__("sim_robot", **kwargs)
        for name, (default, text) in PARAMETERS.items():
            self.declare_parameter(
                name, default, ParameterDescriptor(description=text, dynamic_typing=True))
        p = {name: self.get_parameter(name).value for name in PARAMETERS}
        self.spec = load_robot(str(p["robot"]))
        rate = float(p["joint_state_rate"])
        rtf = float(p["real_time_factor"])
        if not (rate > 0 and rtf > 0 and float(p["physics_timestep"]) > 0):
            raise ValueError("joint_state_rate, real_time_factor and physics_timestep must be > 0")
        period = 1.0 / rate
        substeps = max(1, round(period / float(p["physics_timestep"])))
        self.sim = PyBullet("gui" if p["gui"] else "direct", timestep=period / substeps,
                            n_substeps=substeps)
        self.robot = SimRobot(self.sim, self.spec)
        task_name = str(p["task"]) or ("pick_and_place" if self.spec.gripper else "reach")
        self.task = task_class(task_name)(self.sim, self.robot)
        self.task.build()
        self.robot.reset()
        self.task.reset(np.random.default_rng(int(p["seed"])))
        self.wall_period = period / rtf
        self.params = p
        ctl = self.spec.controllers
        self.topics = {
            "trajectory": str(p["trajectory_topic"]) or ctl.trajectory_topic,
            "position": str(p["position_topic"]) or ctl.position_topic,
            "gripper": str(p["gripper_topic"]) or ctl.gripper_topic,
        }
        gripper_joints = self.spec.gripper.joints if self.spec.gripper else []
        self.state_names = [*self.spec.joint_names, *gripper_joints]
        self._all_joints = np.concatenate([self.robot.joints, self.robot.gripper_joints])

        self._lock = threading.Lock()
        self._traj: Trajectory | None = None
        self._traj_start = 0.0  # sim time the active trajectory started
        self._pending_traj: JointTrajectory | None = None
        self._pending_position: np.ndarray | None = None
        self._pending_gripper: float | None = None
        self._camera_requests: list[tuple[int, int]] = []
        self.sim_time = 0.0
        self.ticks = 0

        self.pub_state = self.create_publisher(JointState, str(p["joint_states_topic"]),
                                               ifc.STATES)
        self.pub_image = self.create_publisher(Image, self.spec.camera_topic, ifc.COMMANDS)
        self.pub_clock = self.create_publisher(Clock, ifc.CLOCK_TOPIC, ifc.STATES)
        self.object_names = ["object"] if self.task.has_object else []
        self.object_names.append("goal")
        self.pub_objects = {n: self.create_publisher(PoseStamped, ifc.object_topic(n),
                                                     ifc.COMMANDS) for n in self.object_names}
        self.create_subscription(JointTrajectory, self.topics["trajectory"], self._on_traj,
                                 ifc.COMMANDS)
        self.create_subscription(Float64MultiArray, self.topics["position"], self._on_position,
                                 ifc.COMMANDS)
        if self.topics["gripper"] and self.spec.gripper:
            self.create_subscription(Float64MultiArray, self.topics["gripper"],
                                     self._on_gripper, ifc.COMMANDS)
        self.create_subscription(String, ifc.CAMERA_REQUEST_TOPIC, self._on_camera_request,
                                 ifc.COMMANDS)
        self._running = True
        self._thread = threading.Thread(target=self._loop, name="sim_robot_physics", daemon=True)
        self._thread.start()
        self.get_logger().info(
            f"sim_robot: {self.spec.name}, task {task_name}, {rate:g} Hz x{rtf:g}, "
            f"{substeps} physics substeps; listening on {self.topics}")

    # -- command callbacks (ROS executor thread): validate, then hand over ---------------
    def _on_traj(self, msg: JointTrajectory) -> None:
        with self._lock:
            self._pending_traj = msg
            self._pending_position = None

    def _on_position(self, msg: Float64MultiArray) -> None:
        q = np.asarray(msg.data, dtype=np.float64)
        if q.shape != (self.spec.dof,) or not np.all(np.isfinite(q)):
            self.get_logger().error(
                f"{self.topics['position']}: rejected command {list(msg.data)} (need "
                f"{self.spec.dof} finite values)")
            return
        with self._lock:
            self._pending_position = q
            self._pending_traj = None

    def _on_gripper(self, msg: Float64MultiArray) -> None:
        g = self.spec.gripper
        assert g is not None
        v = np.asarray(msg.data, dtype=np.float64)
        if v.shape != (len(g.joints),) or not np.all(np.isfinite(v)):
            self.get_logger().error(f"{self.topics['gripper']}: rejected command {list(msg.data)}"
                                    f" (need {len(g.joints)} finite values)")
            return
        with self._lock:
            self._pending_gripper = g.width(v)

    def _on_camera_request(self, msg: String) -> None:
        try:
            req = json.loads(msg.data) if msg.data.strip() else {}
            size = (int(req.get("width", self.params["camera_width"])),
                    int(req.get("height", self.params["camera_height"])))
            if not (16 <= size[0] <= 1920 and 16 <= size[1] <= 1080):
                raise ValueError(f"image size {size} outside 16..1920 x 16..1080")
        except (ValueError, TypeError, AttributeError) as err:
            self.get_logger().error(f"camera request {msg.data!r} rejected: {err}")
            return
        with self._lock:
            self._camera_requests.append(size)

    # -- physics thread -----------------------------------------------------------------
    def _apply_commands(self, q: np.ndarray, qd: np.ndarray) -> None:
        with self._lock:
            traj_msg, self._pending_traj = self._pending_traj, None
            pos, self._pending_position = self._pending_position, None
            grip, self._pending_gripper = self._pending_gripper, None
        if traj_msg is not None:
            if not traj_msg.points:  # empty trajectory: stop and hold (like JTC)
                self._traj = None
                self.robot.set_joint_targets(q)
            else:
                # Start from the current setpoint so a replacement continues smoothly.
                start = self._traj.sample(self.sim_time - self._traj_start) if self._traj else q
                try:
                    self._traj = build_trajectory(
                        self.spec.joint_names, traj_msg.joint_names,
                        [ifc.duration_seconds(p.time_from_start) for p in traj_msg.points],
                        [p.positions for p in traj_msg.points],
                        [p.velocities for p in traj_msg.points], start, qd)
                    self._traj_start = self.sim_time
                except TrajectoryError as err:
                    self.get_logger().error(f"{self.topics['trajectory']}: rejected: {err}")
        if pos is not None:
            self._traj = None
            self.robot.set_joint_targets(pos)
        if grip is not None:
            self.robot.set_gripper_width(grip)
        if self._traj is not None:
            self.robot.set_joint_targets(self._traj.sample(self.sim_time - self._traj_start))

    def _publish_state(self, q_all: np.ndarray, qd_all: np.ndarray) -> None:
        msg = JointState()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.name = self.state_names
        msg.position = q_all.tolist()
        msg.velocity = qd_all.tolist()
        self.pub_state.publish(msg)

    def _publish_clock(self) -> None:
        msg = Clock()
        msg.clock.sec, msg.clock.nanosec = divmod(round(self.sim_time * 1e9), 10**9)
        self.pub_clock.publish(msg)

    def _publish_objects(self) -> None:
        stamp = self.get_clock().now().to_msg()
        for name, pub in self.pub_objects.items():
            if name == "goal":
                pos, orn = np.asarray(self.task.goal, dtype=float), np.array([0.0, 0, 0, 1])
            else:
                pos, orn = self.sim.get_base_pose(name)
            msg = PoseStamped()
            msg.header.stamp = stamp
            msg.header.frame_id = self.spec.base_frame
            (msg.pose.position.x, msg.pose.position.y, msg.pose.position.z) = map(float, pos)
            o = msg.pose.orientation
            o.x, o.y, o.z, o.w = map(float, orn)
            pub.publish(msg)

    def _publish_image(self, width: int, height: int) -> None:
        rgb = self.sim.render_rgb(width, height)  # the default pose shows arm and table
        msg = Image()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = "camera"
        msg.height, msg.width = height, width
        msg.encoding = "rgb8"
        msg.step = width * 3
        msg.data = rgb.tobytes()
        self.pub_image.publish(msg)

    def _loop(self) -> None:
        obj_every = self._every(float(self.params["object_pose_rate"]))
        clock_every = self._every(float(self.params["clock_rate"]))
        cam_every = self._every(float(self.params["camera_rate"]))
        deadline = time.perf_counter()
        while self._running:
            try:
                q_all, qd_all = self.sim.get_joint_states(self.robot.body, self._all_joints)
                dof = self.spec.dof
                self._apply_commands(q_all[:dof], qd_all[:dof])
                self.sim.step()
                self.sim_time += self.sim.dt
                self.ticks += 1
                q_all, qd_all = self.sim.get_joint_states(self.robot.body, self._all_joints)
                self._publish_state(q_all, qd_all)
                if obj_every and self.ticks % obj_every == 0:
                    self._publish_objects()
                if clock_every and self.ticks % clock_every == 0:
                    self._publish_clock()
                with self._lock:
                    requests, self._camera_requests = self._camera_requests, []
                if cam_every and self.ticks % cam_every == 0:
                    requests.append((int(self.params["camera_width"]),
                                     int(self.params["camera_height"])))
                for w, h in requests:
                    self._publish_image(w, h)
            except Exception as err:  # keep simulating; report what went wrong
                if not self._running or not rclpy.ok(context=self.context):
                    return
                self.get_logger().error(f"physics loop: {type(err).__name__}: {err}")
            deadline += self.wall_period
            delay = deadline - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            elif delay < -0.25:  # far behind (e.g. a large render): do not burst to catch up
                deadline = time.perf_counter()

    def _every(self, rate: float) -> int:
        return max(1, round(1.0 / (rate * self.wall_period))) if rate > 0 else 0

    def shutdown(self) -> None:
        """Stop the physics thread and close PyBullet."""
        self._running = False
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
        self.sim.close()


def main(args: list[str] | None = None) -> int:
    """Entry point for `sim_robot` / `python -m robo_agent.ros.sim_robot --ros-args ...`."""
    # ValueError/OSError: bad parameter, unknown robot/task; the message says which
    return run_node("sim_robot", SimRobotNode, SimRobotNode.shutdown, (ValueError, OSError), args)


if __name__ == "__main__":
    sys.exit(main())
