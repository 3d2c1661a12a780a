"""Robots in simulation: a `RobotSpec` instantiated in a `PyBullet`, and standalone kinematics.

`SimRobot` drives the arm joints (and the gripper, if the description has one) with
PyBullet position motors whose force limits are the description's effort limits.
Joints are matched by name from the description, never by URDF order.

`Kinematics` solves FK/IK for a description in its own headless client without stepping
physics, so the ROS bridge can convert between joint and Cartesian space without
disturbing any running simulation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from robo_agent.sim.facade import DATA_PATH, PyBullet, as_vector

from robo_agent.core.robot_spec import RobotSpec


class SimRobot:
    """A robot description loaded into a `PyBullet` sim as body `body`.

    Positions are reported in the world frame, which is the robot's base frame when the
    base sits at the origin (the default, and what every robo_agent task uses).
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

    def ee_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """End-effector position and quaternion (x, y, z, w) in the world frame."""
        return self.sim.get_link_pose(self.body, self.ee_link)

    def ee_velocity(self) -> np.ndarray:
        """End-effector linear velocity in the world frame."""
        return self.sim.get_link_velocity(self.body, self.ee_link)

    def ee_state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """End-effector position, quaternion and linear velocity from one PyBullet call."""
        return self.sim.get_link_state(self.body, self.ee_link)

    def ik(
        self,
        position: Sequence[float],
        orientation: Sequence[float] | None = None,
        tolerance: float = 1e-3,
        max_rounds: int = 10,
    ) -> np.ndarray:
        """Arm joints that put the end effector at `position` (and `orientation`, xyzw).

        Refines PyBullet's IK from the current joint state (pulled towards home in the
        null space) on a snapshot of the sim that is restored afterwards, so the running
        simulation is not disturbed. The result is clipped to the joint limits; use
        `Kinematics.inverse` when you also need the residual.
        """
        target = as_vector(position, 3, "position")
        orn = None if orientation is None else as_vector(orientation, 4, "orientation")
        snapshot = self.sim.save_state()
        try:
            q = self.joint_positions()
            best_q, best_err = q, np.inf
            for r in range(max_rounds):
                q = np.clip(
                    self.sim.inverse_kinematics(
                        self.body,
                        self.ee_link,
                        target,
                        orn,
                        joints=self.joints,
                        rest_pose=self.spec.home_array if r < max_rounds // 2 else None,
                        max_iterations=100,
                    ),
                    self.lower,
                    self.upper,
                )
                self.sim.reset_joints(self.body, self.joints, q)
                err = float(np.linalg.norm(self.ee_pose()[0] - target))
                if err < best_err:
                    best_q, best_err = q, err
                if err < tolerance:
                    break
        finally:
            self.sim.restore_state(snapshot)
            self.sim.remove_state(snapshot)
        return best_q


class Kinematics:
    """FK and IK for a robot description in a private headless client (no physics stepping).

    Poses are in the robot's base frame (the URDF root link at the origin).
    """

    def __init__(self, spec: RobotSpec) -> None:
        self.spec = spec
        self._sim = PyBullet("direct")
        try:
            self._robot = SimRobot(self._sim, spec, base_position=(0.0, 0.0, 0.0))
        except Exception:
            self._sim.close()
            raise
        self._sim_orientation = spec.base_orientation

    def close(self) -> None:
        """Disconnect the private physics client."""
        self._sim.close()

    def __enter__(self) -> Kinematics:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _set(self, q: np.ndarray) -> None:
        self._sim.reset_joints(self._robot.body, self._robot.joints, q)

    def forward(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """End-effector position and quaternion (x, y, z, w) for arm joints `q`."""
        q = as_vector(q, self.spec.dof, "q")
        self._set(q)
        return self._robot.ee_pose()

    def inverse(
        self,
        position: Sequence[float],
        orientation: Sequence[float] | None = None,
        seed: np.ndarray | None = None,
        tolerance: float = 1e-3,
        max_rounds: int = 10,
    ) -> tuple[np.ndarray, float]:
        """Arm joints reaching `position` (and `orientation`), and the position error in m.

        Refines PyBullet's IK from `seed` (default: home) until the residual is below
        `tolerance`, then retries from home if needed; returns the best solution found.
        The caller decides whether the residual means "reachable".
        """
        target = as_vector(position, 3, "position")
        orn = None if orientation is None else as_vector(orientation, 4, "orientation")
        home = self.spec.home_array
        start = home if seed is None else as_vector(seed, self.spec.dof, "seed")
        lo, hi = self.spec.lower, self.spec.upper
        # Start from the seed, then home, then a few fixed pseudo-random poses: the
        # result is deterministic for the same inputs.
        starts = [np.clip(start, lo, hi), home]
        rng = np.random.default_rng(0)
        starts += [rng.uniform(lo, hi) for _ in range(4)]
        best_q, best_err = starts[0], np.inf
        for q0 in starts:
            q = q0
            for r in range(max_rounds):
                self._set(q)
                # Null-space IK (towards the start pose) keeps early rounds in range;
                # plain DLS in later rounds converges more precisely.
                rest = q0 if r < max_rounds // 2 else None
                q = np.clip(
                    self._sim.inverse_kinematics(
                        self._robot.body,
                        self._robot.ee_link,
                        target,
                        orn,
                        joints=self._robot.joints,
                        rest_pose=rest,
                        max_iterations=100,
                    ),
                    lo,
                    hi,
                )
                err = float(np.linalg.norm(self.forward(q)[0] - target))
                if err < best_err:
                    best_q, best_err = q, err
                if err < tolerance:
                    return best_q, best_err
        return best_q, best_err
