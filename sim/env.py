"""`RoboAgentEnv`: goal-conditioned Gymnasium env of a robot description doing a task.

Split as in panda-gym: facade (physics client) / robot (`SimRobot`) / task (`Task`) /
env (this module: actions, observations, rewards, randomisation).

Actions are joint-space, what a ros2_control position or trajectory controller takes:
`a` in [-1, 1]^dof (+1 gripper dimension for tasks that grasp); each control step the
position target moves by `a * velocity_limit * control_dt * action_scale` and is
clipped to the joint limits. The gripper width target moves by
`a * GRIPPER_SPEED * control_dt * action_scale`.

Observations are a dict: `observation` (flat float32 vector laid out as
`observation_layout`), `achieved_goal` and `desired_goal` (3-D positions in the robot's
base frame). `compute_reward` is vectorised for HER; `info["is_success"]` is set.

`env.unwrapped.observation_layout` lists (name, size) in order; a policy runner rebuilds
each entry on a real robot from ROS topics (REP-103 units, robot base frame):

| name                    | size | unit  | on the robot                                   |
|-------------------------|------|-------|------------------------------------------------|
| joint_positions         | dof  | rad   | /joint_states position, in `joint_names` order |
| joint_velocities        | dof  | rad/s | /joint_states velocity                         |
| ee_position             | 3    | m     | forward kinematics of joint_positions          |
| ee_velocity             | 3    | m/s   | Jacobian x joint velocities (or FK difference) |
| gripper_width           | 1    | m     | finger joints (PickAndPlace only)              |
| object_position         | 3    | m     | perception (Push, PickAndPlace)                |
| object_orientation      | 4    | xyzw  | perception                                     |
| object_velocity         | 3    | m/s   | perception                                     |
| object_angular_velocity | 3    | rad/s | perception                                     |

`action_layout` is [("joint_position_delta", dof)] (+ ("gripper_width_delta", 1)), and
`deployment_spec()` gives the rest (joint order, control_dt, joint_delta_scale, rule).
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any, ClassVar, Literal

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from robo_agent.sim.facade import PyBullet
from robo_agent.sim.randomization import Randomization
from robo_agent.sim.robot import SimRobot
from robo_agent.sim.tasks import Task, goal_distance, task_class

from robo_agent.core.observation import assemble_observation
from robo_agent.core.robot_spec import RobotSpec, load_robot
from robo_agent.core.safety_policy import BUILTIN_HARD_LIMITS

# A full action moves the joint targets at the speed the safety envelope's velocity cap
# lets a streamed command through on the robot (hard limit: velocity_scale of the URDF
# limits, measured from the arm's pose). Trained faster, a policy is clipped on every
# command once deployed and does not do what it did in training (rehearsal parity 0.6).
DEFAULT_ACTION_SCALE = BUILTIN_HARD_LIMITS.velocity_scale
GRIPPER_SPEED = 0.2  # m/s of gripper opening change at |action| = 1 and action_scale 1
ROBOT_LAYOUT_NAMES = ("joint_positions", "joint_velocities", "ee_position", "ee_velocity")


class RoboAgentEnv(gym.Env):
    """A robot from `config/robots/` doing a task in PyBullet.

    Args:
        robot: robot description name (e.g. "panda") or a loaded `RobotSpec`.
        task: "reach", "push" or "pick_and_place".
        reward_type: "sparse" (0 on success, else -1) or "dense" (minus the distance).
        timestep: physics step, s (default 1/500).
        n_substeps: physics steps per control step (default 20 -> 25 Hz control).
        action_scale: fraction of the velocity limits one full action moves the target
            per control step (default `DEFAULT_ACTION_SCALE`: the speed the safety
            envelope lets a streamed command through, so a policy trained here moves on
            the robot as it moved in training).
        randomization: `Randomization` (or a dict of its fields); off by default, sampled
            per episode from the `reset(seed=...)` generator.
        domain_randomization: shortcut; True means `Randomization.default_strong()` when
            `randomization` is not given.
        render_mode: None, "rgb_array" (camera image from `render()`) or "human" (PyBullet
            GUI window, stepped in real time).
        distance_threshold: success radius, m (default 0.05).
        terminate_on_success: end the episode on success (default False, as HER expects).
        width, height: `rgb_array` image size.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array", "human"], "render_fps": 25}

    def __init__(
        self,
        robot: str | RobotSpec = "panda",
        task: str = "reach",
        reward_type: Literal["sparse", "dense"] = "sparse",
        timestep: float = 1 / 500,
        n_substeps: int = 20,
        action_scale: float = DEFAULT_ACTION_SCALE,
        randomization: Randomization | dict[str, Any] | None = None,
        render_mode: str | None = None,
        distance_threshold: float = 0.05,
        terminate_on_success: bool = False,
        width: int = 480,
        height: int = 360,
        domain_randomization: bool = False,
    ) -> None:
        if reward_type not in ("sparse", "dense"):
            raise ValueError(f"reward_type must be 'sparse' or 'dense', got {reward_type!r}")
        if render_mode not in (None, "rgb_array", "human"):
            raise ValueError(
                f"render_mode must be None, 'rgb_array' or 'human', got {render_mode!r}"
            )
        if not (np.isfinite(action_scale) and action_scale > 0):
            raise ValueError(f"action_scale must be > 0, got {action_scale!r}")
        if not (np.isfinite(distance_threshold) and distance_threshold > 0):
            raise ValueError(f"distance_threshold must be > 0 m, got {distance_threshold!r}")
        if int(width) < 1 or int(height) < 1:
            raise ValueError(f"image size must be positive, got {width}x{height}")
        spec = robot if isinstance(robot, RobotSpec) else load_robot(robot)
        task_cls = task_class(task)
        if domain_randomization and randomization is None:
            randomization = Randomization.default_strong()
        self.randomization = Randomization.from_any(randomization)
        self.reward_type = reward_type
        self.render_mode = render_mode
        self.action_scale = float(action_scale)
        self.terminate_on_success = bool(terminate_on_success)
        self._image_size = (int(width), int(height))

        # Without rendering, skip visual meshes: ~50 MB less per env, same physics.
        self.sim = PyBullet("gui" if render_mode == "human" else "direct", timestep, n_substeps,
                            visual_shapes=render_mode is not None)
        try:
            with self.sim.no_rendering():
                self.robot = SimRobot(self.sim, spec)
                self.task: Task = task_cls(self.sim, self.robot, distance_threshold,
                                           show_goal=render_mode is not None)
                self.task.build()
                self.robot.reset(gripper_width=self._start_gripper_width())
            self._initial_state = self.sim.save_state()
        except Exception:
            self.sim.close()
            raise
        self._record_nominal_dynamics()

        # -- layouts and spaces (documented for deployment) --------------------------------
        dof = spec.dof
        self.robot_name = spec.name
        self.joint_names = list(spec.joint_names)
        self.task_name = task_cls.name
        self.control_dt = self.sim.dt
        self.metadata = {**self.metadata, "render_fps": round(1.0 / self.control_dt)}
        self._has_gripper_obs = spec.gripper is not None and task_cls.uses_gripper
        layout = [("joint_positions", dof), ("joint_velocities", dof),
                  ("ee_position", 3), ("ee_velocity", 3)]
        if self._has_gripper_obs:
            layout.append(("gripper_width", 1))
        layout += list(task_cls.object_layout)
        self.observation_layout: list[tuple[str, int]] = layout
        self.action_layout: list[tuple[str, int]] = [("joint_position_delta", dof)]
        if task_cls.uses_gripper:
            self.action_layout.append(("gripper_width_delta", 1))
        n_obs = sum(size for _, size in layout)
        n_act = sum(size for _, size in self.action_layout)
        self.observation_space = spaces.Dict({
            "observation": spaces.Box(-np.inf, np.inf, (n_obs,), np.float32),
            "achieved_goal": spaces.Box(-np.inf, np.inf, (3,), np.float32),
            "desired_goal": spaces.Box(-np.inf, np.inf, (3,), np.float32),
        })
        self.action_space = spaces.Box(-1.0, 1.0, (n_act,), np.float32)
        #: joint target change (rad) per control step at action +1, per joint
        self.joint_delta_scale = spec.velocity_limits * self.control_dt * self.action_scale
        self.gripper_delta_scale = GRIPPER_SPEED * self.control_dt * self.action_scale
        self._dof = dof
        self._n_act = n_act
        self._targets = spec.home_array.copy()
        self._gripper = self.robot.gripper_target
        self._pending: deque[np.ndarray] = deque()
        self._latency = 0
        self._needs_reset = True
        self._last_frame_time = 0.0

    # -- public metadata -----------------------------------------------------------------
    @property
    def joint_targets(self) -> np.ndarray:
        """The current arm position targets (rad), which actions move."""
        return self._targets.copy()

    def deployment_spec(self) -> dict[str, Any]:
        """What a policy runner needs to rebuild observations and apply actions on a robot."""
        return {
            "robot": self.robot_name,
            "task": self.task_name,
            "joint_names": list(self.joint_names),
            "observation_layout": [[n, s] for n, s in self.observation_layout],
            "action_layout": [[n, s] for n, s in self.action_layout],
            "control_dt": self.control_dt,
            "joint_delta_scale": self.joint_delta_scale.tolist(),
            "gripper_delta_scale": self.gripper_delta_scale if self._n_act > self._dof else None,
            "frame": self.robot.spec.base_frame,
            "goal": "desired_goal: target position (m) in the base frame",
            "distance_threshold": self.task.distance_threshold,
            "action_rule": "target = clip(target + action * joint_delta_scale, lower, upper)",
        }

    # -- gymnasium API -------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Restore the start state, sample physics randomisation and a new goal."""
        super().reset(seed=seed)
        # Bullet keeps contact manifolds (with warm-start impulses) across teleports and
        # restoreState; moving the robot home and parking the object out of reach drops
        # them, so an episode does not depend on the previous one (determinism under
        # reset(seed)).
        self.robot.reset()
        if self.task.has_object:
            self.sim.set_base_pose("object", (0.0, 0.0, 10.0))
        self.sim.perform_collision_detection()
        self.sim.restore_state(self._initial_state)
        rng = self.np_random
        # A child stream for physics randomisation, latency and observation noise, so the
        # goals drawn for a seed do not depend on which randomisation options are on.
        self._noise_rng = np.random.default_rng(int(rng.integers(2**63)))
        self._apply_randomization(self._noise_rng)
        self.robot.reset(gripper_width=self._start_gripper_width())
        self.task.reset(rng)
        self._goal32 = self.task.goal.astype(np.float32)
        # Contacts cached from the previous episode would otherwise leak into the first
        # step after teleporting bodies, breaking determinism under reset(seed).
        self.sim.perform_collision_detection()
        self._targets = self.robot.spec.home_array.copy()
        self._gripper = self.robot.gripper_target
        self._latency = int(self._noise_rng.integers(0, self.randomization.action_latency + 1))
        self._pending = deque(np.zeros(self._n_act) for _ in range(self._latency))
        self._needs_reset = False
        obs = self._observe()
        return obs, {"is_success": bool(self.task.is_success(obs["achieved_goal"],
                                                             obs["desired_goal"]))}

    def check_action(self, action: Any) -> np.ndarray:
        """`action` as float64 of the action shape clipped to [-1, 1], or a ValueError."""
        try:
            a = np.asarray(action, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"action must be numbers, got {action!r}") from None
        if a.shape != (self._n_act,):
            raise ValueError(
                f"action must have shape ({self._n_act},) for {self.robot_name} {self.task_name} "
                f"(layout {self.action_layout}), got {a.shape}"
            )
        if not np.isfinite(a).all():
            raise ValueError(f"action contains NaN or inf: {a.tolist()}")
        return np.minimum(np.maximum(a, -1.0), 1.0)

    def step(self, action: Any):
        """Move the joint targets by `action` (see the module docstring), run one control
        step of physics and return (obs, reward, terminated, truncated=False, info)."""
        if self._needs_reset:
            raise RuntimeError("call reset() before step()")
        a = self.check_action(action)  # raises before anything changes
        if self._latency:
            self._pending.append(a)
            a = self._pending.popleft()
        targets = self._targets
        targets += a[: self._dof] * self.joint_delta_scale
        np.maximum(targets, self.robot.lower, out=targets)
        np.minimum(targets, self.robot.upper, out=targets)
        if self._n_act > self._dof and self._gripper is not None:
            g = self._gripper + float(a[self._dof]) * self.gripper_delta_scale
            self._gripper = min(max(g, 0.0), self.robot.spec.gripper.max_width)
            self.robot.set_targets(targets, self._gripper)
        else:
            self.robot.set_targets(targets)
        self.sim.step()
        obs = self._observe()
        # One distance for both (same formula as compute_reward, so HER relabels exactly).
        d = goal_distance(obs["achieved_goal"], obs["desired_goal"])
        success = bool(d < self.task.distance_threshold)
        if self.reward_type == "sparse":
            reward = -float(d > self.task.distance_threshold)
        else:
            reward = -float(d)
        if self.render_mode == "human":
            self._sync_real_time()
        terminated = success and self.terminate_on_success
        return obs, reward, terminated, False, {"is_success": success}

    def compute_reward(self, achieved_goal: np.ndarray, desired_goal: np.ndarray,
                       info: Any = None) -> np.ndarray | np.float32:
        """Vectorised reward (HER relabelling); `info` is unused."""
        return self.task.compute_reward(achieved_goal, desired_goal, self.reward_type)

    def render(self) -> np.ndarray | None:
        """An (height, width, 3) uint8 image in `rgb_array` mode; None otherwise."""
        if self.render_mode != "rgb_array":
            return None
        w, h = self._image_size
        return self.sim.render_rgb(w, h, target=(0.4, 0.0, 0.1), distance=1.3, yaw=50.0,
                                   pitch=-30.0)

    def close(self) -> None:
        """Disconnect the physics client (idempotent)."""
        self.sim.close()

    # -- internals -----------------------------------------------------------------------
    def _start_gripper_width(self) -> float | None:
        g = self.robot.spec.gripper
        if g is None:
            return None
        fixed = self.task.fixed_gripper_width if hasattr(self, "task") else None
        return g.max_width if fixed is None else fixed

    def _observe(self) -> dict[str, np.ndarray]:
        q, qd, width = self.robot.read_state(with_gripper=self._has_gripper_obs)
        ee_pos, _, ee_vel = self.robot.ee_state()
        values = {"joint_positions": q, "joint_velocities": qd, "ee_position": ee_pos,
                  "ee_velocity": ee_vel}
        if self._has_gripper_obs:
            values["gripper_width"] = np.array([width])
        if self.task.has_object:
            obj = self.task.object_observation()
            start = 0
            for name, size in self.task.object_layout:
                values[name] = obj[start:start + size]
                start += size
        # The same assembly the policy runner uses on a robot (parity by construction).
        obs = assemble_observation(self.observation_layout, values, self._goal32)
        noise = self.randomization.observation_noise
        if noise:
            vec = obs["observation"]
            vec += self._noise_rng.normal(0.0, noise, vec.shape).astype(np.float32)
        return obs

    def _record_nominal_dynamics(self) -> None:
        sim, body = self.sim, self.robot.body
        self._nominal_links = [sim.get_dynamics(body, int(j)) for j in self.robot.joints]
        self._finger_friction = [sim.get_dynamics(body, int(j))["lateralFriction"]
                                 for j in self.robot.gripper_joints]
        self._nominal_object = (sim.get_dynamics("object", -1) if self.task.has_object
                                else None)

    def _apply_randomization(self, rng: np.random.Generator) -> None:
        """Sample this episode's physics around the nominal values (restore_state does not
        reset dynamics). Options left off are never touched, so they stay nominal."""
        r, sim, body, nominal = self.randomization, self.sim, self.robot.body, self.task.nominal
        if r.friction:
            f = rng.uniform(*r.friction)
            sim.set_dynamics("table", -1, lateralFriction=nominal["table_friction"] * f)
            for j, mu in zip(self.robot.gripper_joints, self._finger_friction, strict=True):
                sim.set_dynamics(body, int(j), lateralFriction=mu * f)
            if self.task.has_object:
                sim.set_dynamics("object", -1, lateralFriction=nominal["object_friction"] * f)
        if r.object_mass and self._nominal_object is not None:
            m = rng.uniform(*r.object_mass)
            d = self._nominal_object
            sim.set_dynamics("object", -1, mass=d["mass"] * m,
                             localInertiaDiagonal=[i * m for i in d["localInertiaDiagonal"]])
        if r.link_mass:
            for j, d in zip(self.robot.joints, self._nominal_links, strict=True):
                m = rng.uniform(*r.link_mass)
                sim.set_dynamics(body, int(j), mass=d["mass"] * m,
                                 localInertiaDiagonal=[i * m for i in d["localInertiaDiagonal"]])
        if r.joint_damping:
            for j in self.robot.joints:
                sim.set_dynamics(body, int(j), jointDamping=rng.uniform(*r.joint_damping))

    def _sync_real_time(self) -> None:
        now = time.perf_counter()
        wait = self.control_dt - (now - self._last_frame_time)
        if 0 < wait < 1.0:
            time.sleep(wait)
        self._last_frame_time = time.perf_counter()
