"""PolicyLoop (pure): action semantics, soft start, guards; rehearsal gate; paired stats."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from robo_agent.core.artifact import (
    PolicySpec,
    Rehearsal,
    rehearsal_problem,
    write_rehearsal,
)
from robo_agent.core.policy_loop import LoopConfig, PolicyLoop, speed_ratio
from robo_agent.core.robot_spec import load_robot
from robo_agent.core.safety import SafetyEnvelope
from robo_agent.deploy.stats import mcnemar_exact, paired_summary, wilson

ROBOT = load_robot("panda")
DT = 0.04
SCALE = [float(v) * DT for v in ROBOT.velocity_limits]
LAYOUT = [["joint_positions", 7], ["joint_velocities", 7], ["ee_position", 3],
          ["ee_velocity", 3]]


def _spec(joint_names: list[str] | None = None) -> PolicySpec:
    return PolicySpec.model_validate({
        "robot": "panda", "joint_names": joint_names or ROBOT.joint_names,
        "task": "robo_agent/PandaReach-v0",
        "inputs": [{"key": "observation", "size": 20}, {"key": "desired_goal", "size": 3}],
        "observation_layout": LAYOUT, "action_dim": 7, "action_scale": SCALE,
        "control_dt": DT, "deployment": {"distance_threshold": 0.05},
        "model_sha256": "a" * 64})


def _loop(act, ee=(0.3, 0.0, 0.5), spec=None, **cfg) -> PolicyLoop:
    env = SafetyEnvelope(ROBOT)
    return PolicyLoop(spec or _spec(), ROBOT, np.array([0.5, 0.0, 0.3]), act,
                      lambda q: (np.asarray(ee), np.array([0, 0, 0, 1.0])),
                      lambda q, qd: np.zeros(3), env.check_stream_command,
                      LoopConfig(DT, **cfg))


def test_soft_start_then_env_rule_and_envelope_cap() -> None:
    a = np.array([1.0, -1, 0.5, 0, 0, 0, 0])
    loop = _loop(lambda o: a, ramp_time=0.2)
    q = ROBOT.home_array
    steps = [loop.step(k * DT, q, np.zeros(7), 0.001, False) for k in range(8)]
    assert [s.kind for s in steps] == ["command"] * 8
    assert steps[0].state == "ramping" and steps[-1].state == "running"
    first = steps[0].command - q
    assert np.allclose(first, a * SCALE * (DT / 0.2))  # 1/5 of the action at the first tick
    cap = SafetyEnvelope(ROBOT).vmax * DT
    for s in steps:  # never farther than the envelope's step from the measured pose
        assert np.all(np.abs(s.command - q) <= cap + 1e-12)


def test_a_clipped_reference_does_not_wind_up() -> None:
    """An arm that does not follow (measured pose stuck) must not let the reference run
    ahead of what was sent: when the policy turns round, the command turns at once."""
    push = np.array([1.0, 0, 0, 0, 0, 0, 0])
    actions = [push] * 10 + [-push]
    loop = _loop(lambda o: actions.pop(0), ramp_time=0)
    q = ROBOT.home_array
    cap = SafetyEnvelope(ROBOT).vmax[0] * DT
    cmds = [loop.step(k * DT, q, np.zeros(7), 0.001, False).command for k in range(11)]
    assert np.isclose(cmds[9][0] - q[0], cap)  # clipped at the envelope's step every tick
    assert loop.stats.clipped >= 9
    # without anti-windup the reference would be 10 full steps ahead and the reverse
    # action would still command +cap; it restarts from the last command instead
    assert cmds[10][0] - q[0] <= cap - SCALE[0] + 1e-12


def test_speed_ratio_names_a_policy_trained_faster_than_the_envelope() -> None:
    vmax = SafetyEnvelope(ROBOT).vmax
    assert np.isclose(speed_ratio(_spec(), ROBOT, vmax, DT), 2.0)  # full URDF speed vs 0.5x
    half = _spec().model_copy(update={"action_scale": [s / 2 for s in SCALE]})
    assert np.isclose(speed_ratio(half, ROBOT, vmax, DT), 1.0)
    assert np.isclose(speed_ratio(half, ROBOT, vmax, DT / 2), 2.0)  # run at twice the rate


def test_joint_order_of_the_policy_is_matched_by_name() -> None:
    names = ROBOT.joint_names[::-1]
    loop = _loop(lambda o: np.array([1.0, 0, 0, 0, 0, 0, 0]), spec=_spec(names), ramp_time=0)
    q = ROBOT.home_array
    obs = loop.observation(q, np.zeros(7))
    assert np.allclose(obs["observation"][:7], q[::-1])
    cmd = loop.step(0.0, q, np.zeros(7), 0.001, False).command
    assert cmd[6] > q[6] and np.allclose(cmd[:6], q[:6])  # policy joint 0 = panda_joint7


def test_guards_hold_and_resume_without_a_jump() -> None:
    loop = _loop(lambda o: np.ones(7), ramp_time=0.2)
    q = ROBOT.home_array
    for k in range(5):
        loop.step(k * DT, q, np.zeros(7), 0.001, False)
    stale = loop.step(5 * DT, q, np.zeros(7), 3 * DT, False)
    assert stale.kind == "hold" and loop.stats.guard == "stale_state"
    assert loop.step(6 * DT, q, np.zeros(7), 4 * DT, False).kind == "none"  # one hold only
    q2 = q + 0.1
    back = loop.step(7 * DT, q2, np.zeros(7), 0.001, False)
    assert back.kind == "command" and back.state == "ramping"  # soft start again
    assert np.max(np.abs(back.command - q2)) < 0.25 * np.max(SCALE)
    nan = loop.step(8 * DT, q2 * np.nan, np.zeros(7), 0.001, False)
    assert nan.kind == "hold" and loop.stats.guard == "nan_state"
    est = loop.step(9 * DT, q2, np.zeros(7), 0.001, True)
    assert est.kind == "hold" and est.state == "estopped" and loop.finished
    assert loop.step(10 * DT, q2, np.zeros(7), 0.001, False).kind == "none"  # latched


def test_nan_policy_output_holds() -> None:
    loop = _loop(lambda o: np.full(7, np.nan))
    s = loop.step(0.0, ROBOT.home_array, np.zeros(7), 0.001, False)
    assert s.kind == "hold" and loop.stats.guard == "nan_action"
    assert "7 finite numbers" in loop.stats.guard_reason


def test_goal_reached_and_max_duration() -> None:
    loop = _loop(lambda o: np.zeros(7), ee=(0.5, 0.0, 0.31), success_steps=3)
    kinds = [loop.step(k * DT, ROBOT.home_array, np.zeros(7), 0.001, False).kind
             for k in range(4)]
    assert kinds == ["command", "command", "hold", "none"] and loop.stats.guard == "goal_reached"
    loop = _loop(lambda o: np.zeros(7), max_duration=0.1)
    for k in range(5):
        loop.step(k * DT, ROBOT.home_array, np.zeros(7), 0.001, False)
    assert loop.state == "done" and loop.stats.guard == "max_duration"


def test_idle_until_a_complete_state() -> None:
    loop = _loop(lambda o: np.zeros(7))
    s = loop.step(0.0, None, None, None, False)
    assert s.kind == "none" and s.state == "idle"


def test_rehearsal_gate_is_bound_to_the_sha(tmp_path: Path) -> None:
    model = b"model"
    (tmp_path / "policy.onnx").write_bytes(model)
    spec = _spec().model_copy(update={"model_sha256": hashlib.sha256(model).hexdigest()})
    assert "missing" in rehearsal_problem(tmp_path, spec)
    write_rehearsal(tmp_path, Rehearsal(artifact_sha256="b" * 64, passed=True, episodes=3,
                                        ros_success=1, direct_success=1, parity=1))
    assert "field artifact_sha256" in rehearsal_problem(tmp_path, spec)
    write_rehearsal(tmp_path, Rehearsal(artifact_sha256=spec.model_sha256, passed=False,
                                        episodes=3, ros_success=0, direct_success=1))
    assert "field passed is false" in rehearsal_problem(tmp_path, spec)
    write_rehearsal(tmp_path, Rehearsal(artifact_sha256=spec.model_sha256, passed=True,
                                        episodes=3, ros_success=1, direct_success=1))
    assert rehearsal_problem(tmp_path, spec) is None
    (tmp_path / "rehearsal.json").write_text("{not json")
    assert "malformed JSON" in rehearsal_problem(tmp_path, spec)


def test_paired_statistics() -> None:
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(6, 0) == pytest.approx(2 / 64)
    lo, hi = wilson(9, 10)
    assert 0.55 < lo < 0.6 and 0.98 < hi <= 1.0
    s = paired_summary([True, True, False, True], [True, True, True, True])
    assert s["parity"] == 0.75 and s["only_direct"] == 1 and s["only_ros"] == 0


def test_warm_runs_the_policy_and_changes_nothing() -> None:
    """The runner's cache warm-up before a tick: the policy sees the tick's observation,
    and the next real step decides exactly what it would have without the warm-up."""
    seen: list[np.ndarray] = []

    def act(obs: dict[str, np.ndarray]) -> np.ndarray:
        seen.append(obs["observation"].copy())
        return np.full(7, 0.5)

    warmed, plain = _loop(act), _loop(act)
    q = ROBOT.home_array
    for k in range(4):
        qk = q + 0.01 * k
        warmed.warm(qk, np.zeros(7))
        assert len(seen) == 3 * k + 1
        assert warmed.stats.steps == k and warmed.state == ("idle" if k == 0 else "ramping")
        a = warmed.step(k * DT, qk, np.zeros(7), 0.001, False)
        b = plain.step(k * DT, qk, np.zeros(7), 0.001, False)
        # the warm-up saw the observation both loops' steps see
        assert np.array_equal(seen[-3], seen[-2]) and np.array_equal(seen[-2], seen[-1])
        assert a.kind == b.kind == "command" and np.array_equal(a.command, b.command)
        assert np.array_equal(warmed.ref, plain.ref)
    warmed.warm(q, np.full(7, np.nan))  # a bad state: nothing runs
    assert len(seen) == 12
