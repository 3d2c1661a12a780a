"""Pinocchio kinematics (robot path) against PyBullet (sim) on the same URDF, all robots.

The issue's bound: end-effector poses agree to 1e-5 m / 1e-5 rad over 10 000 random joint
configurations per robot (PyBullet reports single precision); about 1 s per robot, so
not marked slow. The rotation error is the
angle of the relative quaternion, from atan2 (well conditioned near 0, unlike arccos).
"""

from __future__ import annotations

import numpy as np
import pytest
from robo_agent.sim.facade import PyBullet
from robo_agent.sim.robot import SimRobot

from robo_agent.core.robot_spec import load_robot
from robo_agent.kinematics import Kinematics

pytestmark = pytest.mark.sim
ROBOTS = ["panda", "iiwa", "xarm6"]


def rotation_error(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angles (rad) of the relative rotations between quaternion rows a and b (xyzw)."""
    # conj(a) * b, vector part and scalar part
    aw, bw = a[:, 3:], b[:, 3:]
    av, bv = -a[:, :3], b[:, :3]
    w = (aw * bw - np.sum(av * bv, axis=1, keepdims=True))[:, 0]
    v = aw * bv + bw * av + np.cross(av, bv)
    return 2.0 * np.arctan2(np.linalg.norm(v, axis=1), np.abs(w))


def _max_errors(name: str, n: int) -> tuple[float, float]:
    spec = load_robot(name)
    kin = Kinematics.for_robot(spec)
    qs = np.random.default_rng(7).uniform(spec.lower, spec.upper, size=(n, spec.dof))
    pin_pose = [kin.ee_pose(q) for q in qs]
    with PyBullet() as sim:
        robot = SimRobot(sim, spec, base_position=(0.0, 0.0, 0.0))
        bullet_pose = []
        for q in qs:
            sim.reset_joints(robot.body, robot.joints, q)
            bullet_pose.append(robot.ee_pose())
    p1 = np.array([p for p, _ in pin_pose])
    p2 = np.array([p for p, _ in bullet_pose])
    o1 = np.array([o for _, o in pin_pose])
    o2 = np.array([o for _, o in bullet_pose])
    return float(np.max(np.linalg.norm(p1 - p2, axis=1))), float(np.max(rotation_error(o1, o2)))


@pytest.mark.parametrize("name", ROBOTS)
def test_ee_pose_parity_10000(name: str) -> None:
    pos, rot = _max_errors(name, 10_000)
    assert pos <= 1e-5 and rot <= 1e-5, (pos, rot)


def test_rotation_error_detects_small_angles() -> None:
    # The metric itself must be able to fail: a 1e-4 rad rotation reads as 1e-4 rad.
    a = np.array([[0.0, 0.0, 0.0, 1.0]])
    b = np.array([[np.sin(5e-5), 0.0, 0.0, np.cos(5e-5)]])
    assert rotation_error(a, b)[0] == pytest.approx(1e-4, rel=1e-6)


def test_env_observation_matches_robot_path_kinematics() -> None:
    """A deployed policy sees the same end-effector numbers: the env's ee_position and
    ee_velocity entries against Pinocchio FK and J @ qd of the observed joint state."""
    import gymnasium as gym
    from robo_agent.sim import ENV_IDS

    worst_pos = worst_vel = 0.0
    for env_id in ENV_IDS:
        env = gym.make(env_id)
        u = env.unwrapped
        kin = Kinematics.for_robot(u.robot.spec)
        offsets, i = {}, 0
        for name, size in u.observation_layout:
            offsets[name] = slice(i, i + size)
            i += size
        obs, _ = env.reset(seed=3)
        for _ in range(5):
            obs, *_ = env.step(env.action_space.sample())
            vec = obs["observation"].astype(np.float64)
            q, qd = vec[offsets["joint_positions"]], vec[offsets["joint_velocities"]]
            worst_pos = max(worst_pos, float(np.linalg.norm(
                vec[offsets["ee_position"]] - kin.ee_pose(q)[0])))
            worst_vel = max(worst_vel, float(np.linalg.norm(
                vec[offsets["ee_velocity"]] - kin.ee_velocity(q, qd))))
        env.close()
    # float32 observations: ~1e-7 relative
    assert worst_pos < 1e-5, worst_pos
    assert worst_vel < 1e-4, worst_vel
