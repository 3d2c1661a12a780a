"""SimVectorEnv: real worker processes over shared memory, compared with single envs."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest
from robo_agent.sim.env import RoboAgentEnv
from robo_agent.sim.vector import SimVectorEnv, WorkerError, make_vec_from_id

pytestmark = pytest.mark.sim


def test_matches_single_envs_including_same_step_autoreset() -> None:
    n, horizon, seed = 3, 4, 10
    vec = SimVectorEnv("panda", "reach", n, num_workers=2, max_episode_steps=horizon)
    singles = [RoboAgentEnv("panda", "reach") for _ in range(n)]
    try:
        assert sorted(b - a for a, b in vec.slices) == [1, 2]
        obs, info = vec.reset(seed=seed)
        ref = [e.reset(seed=seed + i)[0] for i, e in enumerate(singles)]
        for key in ("observation", "achieved_goal", "desired_goal"):
            assert np.array_equal(obs[key], np.stack([r[key] for r in ref]))
        actions = np.random.default_rng(0).uniform(-1, 1, (10, n, 7)).astype(np.float32)
        elapsed = 0
        for t in range(10):
            obs, rew, term, trunc, info = vec.step(actions[t])
            elapsed += 1
            done = elapsed == horizon
            for i, env in enumerate(singles):
                o, r, te, _, inf = env.step(actions[t, i])
                assert rew[i] == r and term[i] == te and trunc[i] == done
                if done:
                    assert info["_final_obs"][i]
                    assert np.array_equal(info["final_obs"][i]["observation"], o["observation"])
                    assert np.array_equal(info["final_obs_batch"]["observation"][i],
                                          o["observation"])
                    assert info["final_info"]["is_success"][i] == inf["is_success"]
                    o, inf = env.reset()  # the same unseeded reset the worker does
                assert np.array_equal(obs["observation"][i], o["observation"])
                assert np.array_equal(obs["desired_goal"][i], o["desired_goal"])
                assert info["is_success"][i] == inf["is_success"]
            if done:
                elapsed = 0
            else:
                assert "final_obs" not in info
        assert vec.observation_space.contains(obs)
    finally:
        vec.close()
        for e in singles:
            e.close()


def test_bad_actions_raise_and_change_nothing() -> None:
    vec = SimVectorEnv("panda", "reach", 2, num_workers=1)
    try:
        vec.reset(seed=0)
        good = np.full((2, 7), 0.3, np.float32)
        for bad in (np.zeros((2, 6)), np.zeros(7), np.array([[np.nan] * 7, [0] * 7])):
            with pytest.raises(ValueError, match="actions"):
                vec.step(bad)
        obs_after_bad = vec.step(good)[0]
        vec.reset(seed=0)
        obs_clean = vec.step(good)[0]
        assert np.array_equal(obs_after_bad["observation"], obs_clean["observation"])
    finally:
        vec.close()


def test_her_reward_without_workers_and_metadata() -> None:
    vec = make_vec_from_id("robo_agent/PandaReach-v0", 2, num_workers=1, reward_type="dense")
    try:
        a = np.array([[0.0, 0.0, 0.0], [0.3, 0.0, 0.4]])
        d = np.zeros((2, 3))
        assert np.allclose(vec.compute_reward(a, d), [0.0, -0.5])
        assert vec.max_episode_steps == 50
        assert vec.observation_layout[0] == ("joint_positions", 7)
        assert vec.deployment_spec()["robot"] == "panda"
        assert vec.get_attr("robot_name") == ("panda", "panda")
        with pytest.raises(RuntimeError, match="no_such_thing"):
            vec.call("no_such_thing")
        assert vec.get_attr("task_name") == ("reach", "reach")  # workers still serve
    finally:
        vec.close()


def test_worker_crash_is_a_clear_error_and_close_is_clean() -> None:
    vec = SimVectorEnv("panda", "reach", 2, num_workers=2)
    vec.reset(seed=0)
    procs = list(vec._procs)
    os.kill(procs[1].pid, signal.SIGKILL)
    procs[1].join(timeout=5)
    with pytest.raises(WorkerError, match=r"worker 1 .* died"):
        vec.step(np.zeros((2, 7)))
    assert vec.closed
    assert not any(p.is_alive() for p in procs)
    vec.close()  # idempotent


def test_bad_constructor_arguments() -> None:
    with pytest.raises(ValueError, match="num_envs"):
        SimVectorEnv("panda", "reach", 0)
    with pytest.raises(ValueError, match="num_workers"):
        SimVectorEnv("panda", "reach", 2, num_workers=3)
    with pytest.raises(ValueError, match="unknown task"):
        SimVectorEnv("panda", "fly", 2)


def test_gymnasium_make_vec_builds_a_sim_vector_env() -> None:
    import gymnasium as gym

    vec = gym.make_vec("robo_agent/XArm6Reach-v0", num_envs=2,
                       vectorization_mode="vector_entry_point", vector_kwargs={})
    try:
        assert isinstance(vec, SimVectorEnv) and vec.max_episode_steps == 50
        obs, _ = vec.reset(seed=0)
        assert obs["observation"].shape == (2, 18)
    finally:
        vec.close()
