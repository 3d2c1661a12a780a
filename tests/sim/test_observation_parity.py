"""The policy runner's observation path rebuilds the env's observations from recorded
sim states (joint positions/velocities by name + goal) to 1e-6, with Pinocchio forward
kinematics instead of PyBullet's link state: parity by construction, checked."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import robo_agent.sim  # noqa: F401  (registers the envs)

from robo_agent.core.artifact import PolicySpec
from robo_agent.core.observation import (
    ObservationError,
    assemble_observation,
    compatibility_problems,
)
from robo_agent.core.policy_loop import LoopConfig, PolicyLoop
from robo_agent.core.robot_spec import load_robot
from robo_agent.kinematics import Kinematics


def _spec(env: gym.Env) -> PolicySpec:
    from robo_agent.autoresearch.onnx_policy import spec_fields_from_env

    inputs = [("observation", env.observation_space["observation"].shape[0]),
              ("desired_goal", 3)]
    return PolicySpec.model_validate({**spec_fields_from_env(env, env.spec.id, inputs),
                                      "model_sha256": "0" * 64})


def test_runner_path_rebuilds_env_observations_from_recorded_states() -> None:
    env = gym.make("robo_agent/PandaReach-v0")
    robot = load_robot("panda")
    kin = Kinematics.for_robot(robot)
    spec = _spec(env)
    rng = np.random.default_rng(3)
    try:
        for seed in range(3):
            obs, _ = env.reset(seed=seed)
            goal = obs["desired_goal"].astype(np.float64)
            loop = PolicyLoop(spec, robot, goal, lambda o: np.zeros(7), kin.ee_pose,
                              kin.ee_velocity, lambda s, q, c, dt: c, LoopConfig(0.04))
            for _ in range(40):
                u = env.unwrapped
                q, qd, _ = u.robot.read_state(with_gripper=False)
                # /joint_states arrives in any order; the runner matches by name
                names = list(robot.joint_names)
                order = rng.permutation(len(names))
                by_name = {names[i]: (q[i], qd[i]) for i in order}
                q_msg = np.array([by_name[n][0] for n in names])
                qd_msg = np.array([by_name[n][1] for n in names])
                rebuilt = loop.observation(q_msg, qd_msg)
                for key in ("observation", "achieved_goal", "desired_goal"):
                    diff = float(np.max(np.abs(rebuilt[key].astype(np.float64)
                                               - obs[key].astype(np.float64))))
                    assert diff <= 1e-6, (key, diff)
                obs, *_ = env.step(rng.uniform(-1, 1, 7))
    finally:
        env.close()


def test_assembly_refuses_missing_or_wrong_sized_entries() -> None:
    layout = [("joint_positions", 2), ("ee_position", 3)]
    with pytest.raises(ObservationError, match="ee_position"):
        assemble_observation(layout, {"joint_positions": [0, 0]}, [0, 0, 0])
    with pytest.raises(ObservationError, match="3 values"):
        assemble_observation(layout, {"joint_positions": [0, 0, 0],
                                      "ee_position": [0, 0, 0]}, [0, 0, 0])


def test_compatibility_names_the_field() -> None:
    env = gym.make("robo_agent/PandaReach-v0")
    try:
        spec = _spec(env)
    finally:
        env.close()
    assert compatibility_problems(spec, load_robot("panda")) == []
    problems = compatibility_problems(spec, load_robot("iiwa"))
    assert any("field robot" in p for p in problems)
    assert any("field joint_names" in p for p in problems)
    other = spec.model_copy(update={"action_mode": "joint_torque"})
    assert any("field action_mode" in p for p in compatibility_problems(other,
                                                                       load_robot("panda")))
