"""Scripted controllers that solve the tasks through the env's joint-space action interface.

They plan end-effector waypoints, turn each into joint targets with the robot path's
`Kinematics` (Pinocchio, no physics client: the env's physics is untouched) and emit the normalised
joint-delta action that moves the env's position target there: the same interface a
learned policy uses. They are the main-job demo (`robo-agent sim`) and a check that
every registered task is solvable with the actions it exposes.
"""

from __future__ import annotations

import numpy as np
from robo_agent.sim.env import RoboAgentEnv
from robo_agent.sim.tasks import OBJECT_HALF

from robo_agent.kinematics import Kinematics

IK_TOLERANCE = 1e-3  # m; finer does not change a 3 cm step
MAX_EE_STEP = 0.03  # m per control step between Cartesian waypoints
PUSH_STEP = 0.008  # m per control step while pushing, so the cube does not slide past


class ScriptedController:
    """Reach: go to the goal. Push: approach behind the cube, push it to the goal.
    PickAndPlace: descend open, close, carry to the goal.
    """

    def __init__(self, env: RoboAgentEnv) -> None:
        self.env = env
        self.kin = Kinematics.for_robot(env.robot.spec)
        _, self.down = self.kin.ee_pose(env.robot.spec.home_array)
        self.task = env.task_name
        self.phase = 0
        self._q_goal: np.ndarray | None = None
        self._grip_steps = 0

    def close(self) -> None:
        """Nothing to release (the kinematics holds no client); callers close every part."""

    def reset(self) -> None:
        """Start a new episode (call after `env.reset`)."""
        self.phase = 0
        self._q_goal = None
        self._grip_steps = 0

    # -- helpers ---------------------------------------------------------------------------
    def _joint_action(self, q_des: np.ndarray) -> np.ndarray:
        delta = (q_des - self.env.joint_targets) / self.env.joint_delta_scale
        # Scale the whole vector, not each joint: clipping joints one by one would bend
        # the hand's path off the straight line the IK step asked for.
        return delta / max(1.0, float(np.max(np.abs(delta))))

    def _move_to(self, ee: np.ndarray, waypoint: np.ndarray, orient: bool = True,
                 max_step: float = MAX_EE_STEP) -> np.ndarray:
        """Joint action towards `waypoint`, at most `max_step` away from the current ee."""
        step = waypoint - ee
        dist = np.linalg.norm(step)
        if dist > max_step:
            step *= max_step / dist
        sol = self.kin.ik(ee + step, self.down if orient else None,
                          q0=self.env.joint_targets, position_tolerance=IK_TOLERANCE)
        return self._joint_action(sol.q)

    def _with_gripper(self, arm: np.ndarray, grip: float) -> np.ndarray:
        if self.env.action_space.shape[0] == arm.shape[0]:
            return arm
        return np.append(arm, grip)

    # -- policy ----------------------------------------------------------------------------
    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """The env action for observation `obs`."""
        layout = dict(self.env.observation_layout)
        vec = obs["observation"].astype(np.float64)
        offsets, i = {}, 0
        for name, size in self.env.observation_layout:
            offsets[name] = slice(i, i + size)
            i += size
        ee = vec[offsets["ee_position"]]
        goal = obs["desired_goal"].astype(np.float64)
        if self.task == "reach":
            if self._q_goal is None:
                self._q_goal = self.kin.ik(goal, q0=self.env.joint_targets,
                                           position_tolerance=IK_TOLERANCE).q
            return self._joint_action(self._q_goal)
        assert "object_position" in layout
        obj = vec[offsets["object_position"]]
        if self.task == "push":
            return self._push(ee, obj, goal)
        return self._pick_and_place(ee, obj, goal)

    def _push(self, ee: np.ndarray, obj: np.ndarray, goal: np.ndarray) -> np.ndarray:
        direction = goal[:2] - obj[:2]
        norm = np.linalg.norm(direction)
        direction = direction / norm if norm > 1e-6 else np.array([1.0, 0.0])
        behind = np.append(obj[:2] - direction * (OBJECT_HALF + 0.03), OBJECT_HALF)
        if self.phase == 3:  # retreat straight up before going round the cube
            up = np.array([ee[0], ee[1], OBJECT_HALF + 0.08])
            if ee[2] > OBJECT_HALF + 0.06:
                self.phase = 0
            return self._move_to(ee, up)
        if self.phase == 0:  # above the pre-push point
            target = behind + np.array([0, 0, 0.08])
            if np.linalg.norm(ee - target) < 0.015:
                self.phase = 1
            return self._move_to(ee, target)
        if self.phase == 1:  # down behind the cube
            if np.linalg.norm(ee - behind) < 0.01:
                self.phase = 2
            return self._move_to(ee, behind)
        # Push slowly (the cube slides on) by the cube's remaining displacement; go back
        # round if the cube slid sideways off the pushing line while still far from goal.
        remaining = goal[:2] - obj[:2]
        if np.linalg.norm(remaining) < 0.01:
            return self._move_to(ee, ee)  # there: hold still
        lateral = np.cross(np.append(direction, 0), np.append(obj[:2] - ee[:2], 0))[2]
        if abs(lateral) > 0.02 and np.linalg.norm(remaining) > 0.03:
            self.phase = 3
        target = np.append(ee[:2] + remaining, OBJECT_HALF)
        return self._move_to(ee, target, max_step=PUSH_STEP)

    def _pick_and_place(self, ee: np.ndarray, obj: np.ndarray, goal: np.ndarray) -> np.ndarray:
        above = obj + np.array([0, 0, 0.08])
        if self.phase == 0:  # open, above the cube
            if np.linalg.norm(ee - above) < 0.01:
                self.phase = 1
            return self._with_gripper(self._move_to(ee, above), 1.0)
        if self.phase == 1:  # descend around it
            if np.linalg.norm(ee - obj) < 0.008:
                self.phase = 2
            return self._with_gripper(self._move_to(ee, obj), 1.0)
        if self.phase == 2:  # close
            self._grip_steps += 1
            if self._grip_steps > 8:
                self.phase = 3
            return self._with_gripper(self._move_to(ee, obj), -1.0)
        return self._with_gripper(self._move_to(ee, goal), -1.0)
