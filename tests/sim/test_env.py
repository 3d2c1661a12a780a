"""Gymnasium envs on real PyBullet: API conformance, determinism, bad input, rewards."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from robo_agent.sim import ENV_IDS, compute_reward, env_id, make_env
from robo_agent.sim.env import RoboAgentEnv
from robo_agent.sim.randomization import Randomization

from robo_agent.core.robot_spec import RobotSpecError

pytestmark = pytest.mark.sim


def test_ids_are_the_issue_ids() -> None:
    assert set(ENV_IDS) >= {
        "robo_agent/PandaReach-v0", "robo_agent/IiwaReach-v0", "robo_agent/XArm6Reach-v0",
        "robo_agent/PandaPush-v0", "robo_agent/PandaPickAndPlace-v0",
    }
    assert env_id("panda", "pick-and-place") == "robo_agent/PandaPickAndPlace-v0"
    assert gym.spec("robo_agent/PandaReach-v0").max_episode_steps == 50


@pytest.mark.parametrize("eid", ENV_IDS)
def test_check_env_and_layout(eid: str) -> None:
    env = gym.make(eid)
    try:
        check_env(env.unwrapped, skip_render_check=True)
        u = env.unwrapped
        n_obs = u.observation_space["observation"].shape[0]
        assert sum(n for _, n in u.observation_layout) == n_obs
        assert sum(n for _, n in u.action_layout) == u.action_space.shape[0]
        assert [name for name, _ in u.observation_layout][:4] == [
            "joint_positions", "joint_velocities", "ee_position", "ee_velocity"]
        spec = u.deployment_spec()
        assert spec["joint_names"] == u.joint_names and spec["control_dt"] == pytest.approx(0.04)
        obs, info = env.reset(seed=3)
        assert env.observation_space.contains(obs) and "is_success" in info
        obs, reward, _, _, info = env.step(env.action_space.sample())
        assert env.observation_space.contains(obs)
        assert reward == u.compute_reward(obs["achieved_goal"], obs["desired_goal"], info)
    finally:
        env.close()


def _rollout(env: gym.Env, seed: int, actions: np.ndarray) -> np.ndarray:
    obs, _ = env.reset(seed=seed)
    rows = [obs["desired_goal"]] + [env.step(a)[0]["observation"] for a in actions]
    return np.concatenate(rows)


@pytest.mark.parametrize("eid", ["robo_agent/PandaReach-v0", "robo_agent/PandaPickAndPlace-v0"])
def test_same_seed_same_trajectory_whatever_came_before(eid: str) -> None:
    env = gym.make(eid)
    actions = np.random.default_rng(0).uniform(-1, 1, (15, *env.action_space.shape))
    first = _rollout(env, 11, actions)
    # A different episode in between that drives the arm down into the table.
    env.reset(seed=99)
    push_down = np.zeros(env.action_space.shape)
    push_down[[1, 3]] = 1.0
    for _ in range(25):
        env.step(push_down)
    second = _rollout(env, 11, actions)
    other = _rollout(env, 12, actions)
    env.close()
    assert np.array_equal(first, second)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize("bad", [np.zeros(6), np.zeros(8), [np.nan] * 7, [0, 0, np.inf, 0, 0, 0, 0],
                                 "left", None])
def test_bad_action_raises_and_changes_nothing(bad) -> None:
    env = RoboAgentEnv("panda", "reach")
    env.reset(seed=0)
    env.step(np.full(7, 0.5))
    targets, state = env.joint_targets, env.robot.read_state()
    ee = env.robot.ee_pose()[0]
    with pytest.raises(ValueError, match="action"):
        env.step(bad)
    assert np.array_equal(env.joint_targets, targets)
    after = env.robot.read_state()
    assert np.array_equal(after[0], state[0]) and np.array_equal(after[1], state[1])
    assert np.array_equal(env.robot.ee_pose()[0], ee)
    env.close()


def test_bad_names_and_options_are_named(tmp_path) -> None:
    with pytest.raises(RobotSpecError, match="unknown robot 'ur99'"):
        make_env("ur99", "reach")
    with pytest.raises(ValueError, match="unknown task 'juggle'"):
        make_env("panda", "juggle")
    with pytest.raises(ValueError, match=r"needs a gripper.*iiwa"):
        RoboAgentEnv("iiwa", "pick_and_place")
    with pytest.raises(ValueError, match="reward_type"):
        RoboAgentEnv("panda", "reach", reward_type="shaped")
    with pytest.raises(ValueError, match=r"randomization\.friction"):
        RoboAgentEnv("panda", "reach", randomization={"friction": (1.2, 0.8)})
    with pytest.raises(ValueError, match="unknown option"):
        Randomization.from_any({"gravity": (1, 2)})
    bad = tmp_path / "broken.yaml"
    bad.write_text("name: broken\njoints: [unclosed\n")
    with pytest.raises(RobotSpecError, match="malformed YAML"):
        RoboAgentEnv(str(bad), "reach")


def test_unregistered_pair_builds_through_make_env() -> None:
    env = make_env("iiwa", "push")  # not a registered benchmark, still a valid env
    obs, _ = env.reset(seed=0)
    assert obs["observation"].shape == (7 + 7 + 3 + 3 + 13,)
    env.close()


def test_rewards_are_vectorised_for_her() -> None:
    env = gym.make("robo_agent/PandaReach-v0").unwrapped
    achieved = np.array([[0.4, 0.0, 0.2], [0.5, 0.1, 0.1], [0.4, 0.0, 0.26]])
    desired = np.array([[0.41, 0.0, 0.2], [0.4, 0.0, 0.2], [0.4, 0.0, 0.2]])
    batch = env.compute_reward(achieved, desired, [{}] * 3)
    assert batch.tolist() == [0.0, -1.0, -1.0]
    single = [env.compute_reward(a, d, {}) for a, d in zip(achieved, desired, strict=True)]
    assert single == [0, -1, -1]
    dense = compute_reward(achieved, desired, "dense")
    assert np.allclose(dense, -np.linalg.norm(achieved - desired, axis=-1))
    env.close()


def test_joint_action_moves_target_by_velocity_limit_times_dt() -> None:
    env = RoboAgentEnv("panda", "reach", action_scale=0.5)
    env.reset(seed=0)
    start = env.joint_targets
    a = np.array([1, -1, 0.5, 0, 0, 0, 2.0])  # 2.0 is clipped to 1
    env.step(a)
    expected = start + np.clip(a, -1, 1) * env.robot.spec.velocity_limits * 0.04 * 0.5
    assert np.allclose(env.joint_targets, np.clip(expected, env.robot.lower, env.robot.upper))
    env.close()


def test_randomization_is_seeded_and_off_by_default() -> None:
    r = Randomization(friction=(0.5, 1.5), object_mass=(0.5, 2.0), joint_damping=(0.0, 1.0),
                      observation_noise=0.01, action_latency=2)
    env = RoboAgentEnv("panda", "push", randomization=r)

    def physics(seed: int) -> tuple[float, float, float]:
        env.reset(seed=seed)
        table = env.sim.get_dynamics("table", -1)["lateralFriction"]
        mass = env.sim.get_dynamics("object", -1)["mass"]
        damping = env.sim.get_dynamics("robot", int(env.robot.joints[0]))["jointDamping"]
        return table, mass, damping

    assert physics(1) == physics(1)
    assert physics(1) != physics(2)
    env.close()
    plain = RoboAgentEnv("panda", "push")
    plain.reset(seed=1)
    assert plain.sim.get_dynamics("object", -1)["mass"] == pytest.approx(0.2)
    plain.close()


def test_action_latency_delays_actions() -> None:
    env = RoboAgentEnv("panda", "reach", randomization={"action_latency": 1})
    for seed in range(20):  # find an episode whose sampled delay is 1 step
        env.reset(seed=seed)
        if env._latency == 1:
            break
    start = env.joint_targets
    env.step(np.ones(7))
    assert np.array_equal(env.joint_targets, start)  # the first action is still in flight
    env.step(np.zeros(7))
    assert not np.array_equal(env.joint_targets, start)
    env.close()


def test_rgb_array_render_shape() -> None:
    env = gym.make("robo_agent/PandaPush-v0", render_mode="rgb_array", width=80, height=60)
    env.reset(seed=0)
    img = env.render()
    assert img.shape == (60, 80, 3) and img.dtype == np.uint8 and img.std() > 0
    env.close()


def test_domain_randomization_shortcut() -> None:
    env = gym.make("robo_agent/PandaPush-v0", domain_randomization=True)
    assert env.unwrapped.randomization == Randomization.default_strong()
    env.reset(seed=0)
    env.step(env.action_space.sample())
    env.close()


def test_observation_noise_leaves_goals_and_rewards_exact() -> None:
    noisy = RoboAgentEnv("panda", "reach", randomization={"observation_noise": 0.01})
    clean = RoboAgentEnv("panda", "reach")
    a = np.full(7, 0.3)
    on, _ = noisy.reset(seed=4)
    oc, _ = clean.reset(seed=4)
    on, rn, *_ = noisy.step(a)
    oc, rc, *_ = clean.step(a)
    assert not np.allclose(on["observation"], oc["observation"], atol=1e-4)
    assert np.abs(on["observation"] - oc["observation"]).max() < 0.1
    assert np.array_equal(on["achieved_goal"], oc["achieved_goal"]) and rn == rc
    noisy.close()
    clean.close()


def test_neutral_randomization_changes_neither_goals_nor_physics() -> None:
    """Ranges of exactly 1x must reproduce the plain env: same goals, same trajectory."""
    neutral = {"friction": (1.0, 1.0), "object_mass": (1.0, 1.0), "link_mass": (1.0, 1.0)}
    actions = np.random.default_rng(3).uniform(-1, 1, (10, 7))
    runs = []
    for r in (None, neutral):
        env = RoboAgentEnv("panda", "push", randomization=r)
        runs.append(_rollout(env, 5, actions))
        env.close()
    assert np.allclose(runs[0], runs[1], atol=1e-6)


def test_end_effector_actions_move_the_hand_in_cartesian_space() -> None:
    from robo_agent.sim.wrappers import EndEffectorActions

    env = EndEffectorActions(gym.make("robo_agent/PandaReach-v0"), max_step=0.02)
    assert env.action_space.shape == (3,)
    env.reset(seed=0)
    u = env.unwrapped
    start, orn0 = u.robot.ee_pose()
    for _ in range(12):
        env.step(np.array([1.0, 0.0, 0.0]))
    end, orn1 = u.robot.ee_pose()
    assert end[0] - start[0] > 0.15  # moved forward ...
    assert abs(end[1] - start[1]) < 0.02 and abs(end[2] - start[2]) < 0.02  # ... only forward
    assert abs(float(np.dot(orn0, orn1))) > 0.99  # hand still points down
    targets = u.joint_targets
    with pytest.raises(ValueError, match="end-effector action"):
        env.step(np.array([0.0, np.nan, 0.0]))
    assert np.array_equal(u.joint_targets, targets)
    env.close()
    pick = EndEffectorActions(gym.make("robo_agent/PandaPickAndPlace-v0"))
    assert pick.action_space.shape == (4,)
    pick.close()
