"""Tasks: scene, goal sampling, achieved goal and reward for the goal-conditioned envs.

The robot base sits at the world origin, so every position here (goals, objects, the
end effector) is in the robot's base frame, which is what a real robot's forward
kinematics gives: observations can be rebuilt from ROS topics without a frame offset.
The table top is at z = 0 and the workspace lies in front of the robot (+x).

Which robots get which task (see `TASK_ROBOTS` in `robo_agent.sim.registry`):
- Reach: every arm (the end effector goes to a point).
- Push: arms whose end effector can push a 4 cm cube across the table; the Panda pushes
  with its closed gripper.
- PickAndPlace: arms with a gripper (Panda).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from robo_agent.sim.facade import PyBullet
from robo_agent.sim.registry import MAX_EPISODE_STEPS, canonical_task
from robo_agent.sim.rewards import DISTANCE_THRESHOLD, compute_reward, goal_distance
from robo_agent.sim.robot import SimRobot

OBJECT_HALF = 0.02  # m: half edge of the cube in Push and PickAndPlace
WORKSPACE_CENTER = np.array([0.45, 0.0, 0.0])


class Task:
    """Base class: a scene on a table, a goal, and what counts as achieving it."""

    name: ClassVar[str] = ""
    uses_gripper: ClassVar[bool] = False  # adds a gripper dimension to the action
    needs_gripper: ClassVar[bool] = False  # only robots with a gripper can do it
    has_object: ClassVar[bool] = False
    max_episode_steps: ClassVar[int] = 50
    #: gripper width held during the episode when the action has no gripper dimension
    fixed_gripper_width: ClassVar[float | None] = None

    def __init__(
        self, sim: PyBullet, robot: SimRobot, distance_threshold: float = DISTANCE_THRESHOLD,
        show_goal: bool = False,
    ) -> None:
        if self.needs_gripper and robot.spec.gripper is None:
            raise ValueError(
                f"task '{self.name}' needs a gripper and robot '{robot.spec.name}' has none"
            )
        self.sim = sim
        self.robot = robot
        self.distance_threshold = float(distance_threshold)
        self.show_goal = show_goal
        self.goal = np.zeros(3)
        self.nominal: dict[str, float] = {}

    # -- scene ---------------------------------------------------------------------------
    def build(self) -> None:
        """Create the task's bodies (once, before the initial state snapshot)."""
        self.sim.create_plane(z_offset=-0.4)
        self.sim.create_table(length=1.1, width=0.8, height=0.4, x_offset=0.3,
                              lateral_friction=1.0)
        self.nominal["table_friction"] = 1.0
        if self.show_goal:
            self.sim.create_sphere("goal", DISTANCE_THRESHOLD / 2, 0.0, self.goal,
                                   rgba=(0.1, 0.9, 0.1, 0.4), ghost=True)

    def reset(self, rng: np.random.Generator) -> None:
        """Sample a new goal (and object pose) after the sim was restored to its start."""
        self.goal = self.sample_goal(rng)
        if self.show_goal:
            self.sim.set_base_pose("goal", self.goal)

    def sample_goal(self, rng: np.random.Generator) -> np.ndarray:
        """A new goal position (m, base frame)."""
        raise NotImplementedError

    # -- observations --------------------------------------------------------------------
    #: extra entries of the flat observation vector after the robot's, as (name, size)
    object_layout: ClassVar[list[tuple[str, int]]] = []

    def object_observation(self) -> np.ndarray:
        """The `object_layout` part of the observation vector."""
        return np.zeros(0)

    def achieved_goal(self, ee_position: np.ndarray) -> np.ndarray:
        """What is compared with the goal (end effector or object position)."""
        raise NotImplementedError

    def compute_reward(self, achieved: np.ndarray, desired: np.ndarray, reward_type: str):
        """Batched reward, see `robo_agent.sim.rewards.compute_reward`."""
        return compute_reward(achieved, desired, reward_type, self.distance_threshold)

    def is_success(self, achieved: np.ndarray, desired: np.ndarray) -> np.ndarray | bool:
        """Within `distance_threshold` of the goal (batched)."""
        return goal_distance(achieved, desired) < self.distance_threshold


class Reach(Task):
    """Move the end effector to a goal point in a 0.3 m cube above the table."""

    name = "reach"
    max_episode_steps = MAX_EPISODE_STEPS["reach"]
    goal_low = WORKSPACE_CENTER + np.array([-0.15, -0.15, 0.05])
    goal_high = WORKSPACE_CENTER + np.array([0.15, 0.15, 0.35])

    def sample_goal(self, rng: np.random.Generator) -> np.ndarray:
        return rng.uniform(self.goal_low, self.goal_high)

    def achieved_goal(self, ee_position: np.ndarray) -> np.ndarray:
        return ee_position


class _ObjectTask(Task):
    """A 4 cm cube on the table; the achieved goal is the cube's position."""

    has_object = True
    max_episode_steps = MAX_EPISODE_STEPS["push"]
    object_mass = 0.2  # kg
    object_friction = 1.0
    object_layout: ClassVar[list[tuple[str, int]]] = [
        ("object_position", 3), ("object_orientation", 4),
        ("object_velocity", 3), ("object_angular_velocity", 3),
    ]
    object_low = WORKSPACE_CENTER + np.array([-0.1, -0.15, 0.0])
    object_high = WORKSPACE_CENTER + np.array([0.1, 0.15, 0.0])

    def build(self) -> None:
        super().build()
        self.sim.create_box(
            "object", (OBJECT_HALF,) * 3, self.object_mass, (0.45, 0.0, OBJECT_HALF),
            rgba=(0.1, 0.3, 0.9, 1.0), friction=self.object_friction,
        )
        self.nominal["object_mass"] = self.object_mass
        self.nominal["object_friction"] = self.object_friction

    def reset(self, rng: np.random.Generator) -> None:
        super().reset(rng)
        # Resample the object until it is at least one success radius from the goal.
        for _ in range(100):
            pos = rng.uniform(self.object_low, self.object_high)
            if np.linalg.norm(pos[:2] - self.goal[:2]) > 2 * self.distance_threshold:
                break
        pos[2] = OBJECT_HALF
        self.sim.set_base_pose("object", pos)

    def object_observation(self) -> np.ndarray:
        pos, orn = self.sim.get_base_pose("object")
        lin, ang = self.sim.get_base_velocity("object")
        return np.concatenate([pos, orn, lin, ang])

    def achieved_goal(self, ee_position: np.ndarray) -> np.ndarray:
        return self.sim.get_base_pose("object")[0]


class Push(_ObjectTask):
    """Push the cube along the table to a goal on the table (gripper held closed)."""

    name = "push"
    fixed_gripper_width = 0.0

    def sample_goal(self, rng: np.random.Generator) -> np.ndarray:
        goal = rng.uniform(self.object_low, self.object_high)
        goal[2] = OBJECT_HALF
        return goal


class PickAndPlace(_ObjectTask):
    """Grasp the cube and bring it to a goal on or up to 0.2 m above the table."""

    name = "pick_and_place"
    uses_gripper = True
    needs_gripper = True

    def sample_goal(self, rng: np.random.Generator) -> np.ndarray:
        goal = rng.uniform(self.object_low, self.object_high)
        # 30 % of goals on the table (as panda-gym), the rest in the air.
        goal[2] = OBJECT_HALF + (0.0 if rng.random() < 0.3 else rng.uniform(0.0, 0.2))
        return goal


TASKS: dict[str, type[Task]] = {t.name: t for t in (Reach, Push, PickAndPlace)}


def task_class(name: str) -> type[Task]:
    """The task class for `name` ("reach", "push", "pick_and_place"; case/dash-insensitive)."""
    return TASKS[canonical_task(name)]
