"""Robots in simulation: a `RobotSpec` instantiated in a `PyBullet`.

`SimRobot` drives the arm joints (and the gripper, if the description has one) with
PyBullet position motors whose force limits are the description's effort limits.
Joints are matched by name from the description, never by URDF order. End-effector poses
come out in the robot's base frame (REP-105), wherever the base stands in the world.

FK/IK without physics (for controllers, wrappers and the robot) is
`robo_agent.kinematics.Kinematics` (Pinocchio, the same URDF).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from robo_agent.sim.facade import DATA_PATH, PyBullet, as_vector

from robo_agent.core.geometry import quat_mul
from robo_agent.core.robot_spec import RobotSpec


def _rotation(q: np.ndarray) -> np.ndarray:
    """Rotation matrix of a unit quaternion (x, y, z, w)."""
    x, y, z, w = q / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


class SimRobot:
    """A robot description loaded into a `PyBullet` sim as body `body`.

    End-effector poses and velocities are reported in the robot's base frame (REP-105),
    what the robot's own kinematics gives, wherever the base stands in the world; every
    robo_agent task puts the base at the world origin, where the two frames coincide.
    """

    def __init__(
        self,
        sim: PyBullet,
        spec: RobotSpec,
        body: str = "robot",
        base_position: Sequence[float] | None = None,
    ) -> None:
        self.sim = sim
        self.spec = spec
        self.body = body
        self.dof = spec.dof
        self.joint_names = list(spec.joint_names)
        pos = spec.base_position if base_position is None else base_position
        # World -> base frame; skipped (bit-identical results) for a base at the origin.
        self._base_pos = np.asarray(pos, dtype=np.float64)
        self._base_inv_rot = _rotation(np.asarray(spec.base_orientation, dtype=np.float64)).T
        x, y, z, w = spec.base_orientation
        self._base_inv_quat = np.array([-x, -y, -z, w]) / np.linalg.norm([x, y, z, w])
        self._at_origin = bool(np.allclose(self._base_pos, 0.0)
                               and np.allclose(self._base_inv_rot, np.eye(3)))
        sim.load_urdf(
            body,
            spec.urdf_path(DATA_PATH),
            base_position=pos,
            base_orientation=spec.base_orientation,
            fixed_base=True,
        )
        try:
            self.joints = sim.joint_indices(body, self.joint_names)
            self.ee_link = sim.link_index(body, spec.ee_link)
            g = spec.gripper
            self.gripper_joints = (
                sim.joint_indices(body, g.joints) if g else np.zeros(0, dtype=np.int64)
            )
        except ValueError as err:
            raise ValueError(f"robot '{spec.name}' does not match its URDF: {err}") from None
        self.lower, self.upper = spec.lower, spec.upper
        self.velocity_limits = spec.velocity_limits
        self.forces = spec.effort_limits
        # Arm and gripper joints in one index array: one PyBullet call reads or commands all.
        self._all_joints = np.concatenate([self.joints, self.gripper_joints])
        ng = len(self.gripper_joints)
        self._all_forces = np.concatenate([self.forces, np.full(ng, g.effort if g else 0.0)])
        self._targets = np.concatenate([spec.home_array, np.zeros(ng)])
        self._gripper_target = spec.gripper.max_width if spec.gripper else None

    # -- commands ------------------------------------------------------------------------
    def reset(self, q: np.ndarray | None = None, gripper_width: float | None = None) -> None:
        """Teleport to `q` (default: home) with the gripper at `gripper_width` (default open).

        The motors are set to hold that pose.
        """
        q = self.spec.home_array if q is None else as_vector(q, self.dof, "q")
        self._check_limits(q)
        g = self.spec.gripper
        if gripper_width is not None and g is None:
            raise ValueError(f"robot '{self.spec.name}' has no gripper")
        targets = q.copy()
        if g is not None:
            width = g.max_width if gripper_width is None else float(gripper_width)
            if not np.isfinite(width):
                raise ValueError(f"gripper_width must be finite, got {gripper_width!r}")
            width = float(np.clip(width, 0.0, g.max_width))
            targets = np.concatenate([q, g.joint_positions(width)])
            self._gripper_target = width
        self.sim.reset_joints(self.body, self._all_joints, targets)
        self._targets = targets
        self._command()

    def _check_limits(self, q: np.ndarray) -> None:
        out = (q < self.lower - 1e-9) | (q > self.upper + 1e-9)
        if np.any(out):
            names = [n for n, o in zip(self.joint_names, out, strict=True) if o]
            raise ValueError(
                f"q outside the joint limits of {self.spec.name} for {names}: {q.tolist()}"
            )

    def set_joint_targets(self, q: np.ndarray, limit_velocity: bool = False) -> None:
        """Position-control targets for the arm joints, clipped to the joint limits.

        `limit_velocity=True` also caps each motor at the joint's velocity limit (what a
        real controller enforces for large jumps; costs one PyBullet call per joint).
        """
        q = as_vector(q, self.dof, "joint targets")
        self._targets[: self.dof] = np.clip(q, self.lower, self.upper)
        self._command(limit_velocity)

    def set_gripper_width(self, width: float) -> None:
        """Command the gripper opening (m), clipped to [0, max_width]."""
        g = self.spec.gripper
        if g is None:
            raise ValueError(f"robot '{self.spec.name}' has no gripper")
        w = float(width)
        if not np.isfinite(w):
            raise ValueError(f"gripper width must be finite, got {width!r}")
        w = float(np.clip(w, 0.0, g.max_width))
        self._gripper_target = w
        self._targets[self.dof :] = g.joint_positions(w)
        self._command()

    def set_targets(self, q: np.ndarray, gripper_width: float | None = None) -> None:
        """Hot-path command for envs: already-validated arm targets (+ gripper) in one call."""
        self._targets[: self.dof] = q
        if gripper_width is not None and self.spec.gripper is not None:
            self._gripper_target = gripper_width
            self._targets[self.dof :] = self.spec.gripper.joint_positions(gripper_width)
        self._command()

    def _command(self, limit_velocity: bool = False) -> None:
        vmax = None
        if limit_velocity:
            vmax = np.concatenate([self.velocity_limits, np.full(len(self.gripper_joints), 0.2)])
        self.sim.control_joints(self.body, self._all_joints, self._targets, self._all_forces, vmax)

    # -- state ---------------------------------------------------------------------------
    @property
    def joint_targets(self) -> np.ndarray:
        """The arm's current position-control targets (a copy)."""
        return self._targets[: self.dof].copy()

    @property
    def gripper_target(self) -> float | None:
        """The commanded gripper width in m (None without a gripper)."""
        return self._gripper_target

    def read_state(self, with_gripper: bool = True) -> tuple[np.ndarray, np.ndarray, float | None]:
        """Arm positions, arm velocities and gripper width from one PyBullet call."""
        q, qd = self.sim.get_joint_states(self.body, self._all_joints)
        g = self.spec.gripper
        width = g.width(q[self.dof :]) if g is not None and with_gripper else None
        return q[: self.dof], qd[: self.dof], width

    def joint_positions(self) -> np.ndarray:
        """Measured arm joint positions (rad), in the description's joint order."""
        return self.sim.get_joint_states(self.body, self.joints)[0]

    def joint_velocities(self) -> np.ndarray:
        """Measured arm joint velocities (rad/s), in the description's joint order."""
        return self.sim.get_joint_states(self.body, self.joints)[1]

    def gripper_width(self) -> float | None:
        """Measured gripper opening in m, or None if the robot has no gripper."""
        if self.spec.gripper is None:
            return None
        q, _ = self.sim.get_joint_states(self.body, self.gripper_joints)
        return self.spec.gripper.width(q)

    def to_base(self, position: np.ndarray, orientation: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray | None]:
        """A world-frame position (and quaternion xyzw) in the robot's base frame."""
        if self._at_origin:
            return position, orientation
        p = self._base_inv_rot @ (np.asarray(position) - self._base_pos)
        o = None if orientation is None else quat_mul(self._base_inv_quat, orientation)
        return p, o

    def ee_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """End-effector position and quaternion (x, y, z, w) in the base frame."""
        p, o = self.to_base(*self.sim.get_link_pose(self.body, self.ee_link))
        assert o is not None
        return p, o

    def ee_velocity(self) -> np.ndarray:
        """End-effector linear velocity in the base frame."""
        v = self.sim.get_link_velocity(self.body, self.ee_link)
        return v if self._at_origin else self._base_inv_rot @ v

    def ee_state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """End-effector position, quaternion and linear velocity (base frame), one call."""
        p, o, v = self.sim.get_link_state(self.body, self.ee_link)
        if self._at_origin:
            return p, o, v
        p, o = self.to_base(p, o)
        assert o is not None
        return p, o, self._base_inv_rot @ v
