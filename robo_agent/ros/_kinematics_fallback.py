"""TEMPORARY: PyBullet forward kinematics until `robo_agent.kinematics` (Pinocchio) lands.

Deleted as soon as the kinematics branch is merged; the robot path must not use it.
"""

from __future__ import annotations

import numpy as np

from robo_agent.core.robot_spec import RobotSpec


class Kinematics:
    def __init__(self, spec: RobotSpec) -> None:
        from robo_agent.sim.robot import Kinematics as BulletKinematics

        self._k = BulletKinematics(spec)

    @classmethod
    def for_robot(cls, spec: RobotSpec) -> Kinematics:
        return cls(spec)

    def ee_pose(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p, o = self._k.forward(np.asarray(q, dtype=np.float64))
        return np.asarray(p, dtype=np.float64), np.asarray(o, dtype=np.float64)

    def ee_velocity(self, q: np.ndarray, qd: np.ndarray) -> np.ndarray:
        eps = 1e-6
        q = np.asarray(q, dtype=np.float64)
        qd = np.asarray(qd, dtype=np.float64)
        return (self.ee_pose(q + eps * qd)[0] - self.ee_pose(q - eps * qd)[0]) / (2 * eps)
