"""Optional end-effector actions on top of the joint-space envs.

`EndEffectorActions(env)` takes Cartesian actions in [-1, 1]^3 (+1 gripper dimension where
the env has one): the end-effector target moves by `action * max_step` metres per control
step (orientation held at the home orientation by default), is turned into joint
targets with `robo_agent.kinematics.Kinematics` (Pinocchio, no physics client, so the
env's physics is untouched) and handed to the env as the normalised joint-delta action it
expects. The env underneath, its observations and its deployment spec are unchanged;
deploying such a policy needs the same IK on the robot side, and it is the same module.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from robo_agent.kinematics import Kinematics

IK_TOLERANCE = 1e-3  # m


class EndEffectorActions(gym.ActionWrapper):
    """Cartesian end-effector position actions for a `RoboAgentEnv`.

    Args:
        env: a robo_agent env (wrapped or not).
        max_step: end-effector target displacement (m) per control step at |action| = 1.
        keep_orientation: hold the end effector at its home orientation (e.g. pointing
            down for the Panda); False lets IK choose any orientation.
    """

    def __init__(self, env: gym.Env, max_step: float = 0.05, keep_orientation: bool = True) -> None:
        super().__init__(env)
        if not (np.isfinite(max_step) and max_step > 0):
            raise ValueError(f"max_step must be > 0 m, got {max_step!r}")
        u = env.unwrapped
        if not hasattr(u, "joint_delta_scale"):
            raise ValueError("EndEffectorActions wraps robo_agent envs (RoboAgentEnv)")
        self.max_step = float(max_step)
        self.kin = Kinematics.for_robot(u.robot.spec)
        self._orientation = self.kin.ee_pose(u.robot.spec.home_array)[1] if keep_orientation \
            else None
        self._n_grip = u.action_space.shape[0] - u.robot.dof
        self.action_space = spaces.Box(-1.0, 1.0, (3 + self._n_grip,), np.float32)

    def action(self, action: Any) -> np.ndarray:
        """Cartesian action -> the env's normalised joint-delta action (ValueError if bad)."""
        a = np.asarray(action, dtype=np.float64)
        if a.shape != self.action_space.shape or not np.isfinite(a).all():
            raise ValueError(
                f"end-effector action must be {self.action_space.shape} finite numbers "
                f"(dx, dy, dz{', gripper' if self._n_grip else ''}), got {action!r}"
            )
        a = np.clip(a, -1.0, 1.0)
        u = self.env.unwrapped
        q = u.joint_targets
        ee = self.kin.ee_pose(q)[0]  # from the commanded targets: a consistent integrator
        q_des = self.kin.ik(ee + a[:3] * self.max_step, self._orientation, q0=q,
                            position_tolerance=IK_TOLERANCE).q
        joint = (q_des - q) / u.joint_delta_scale
        joint /= max(1.0, float(np.max(np.abs(joint))))  # keep the direction (see scripted)
        return np.concatenate([joint, a[3:]]).astype(np.float32)
