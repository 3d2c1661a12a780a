"""The safety envelope and policy: every limit refuses or clips, and every decision is audited."""

from __future__ import annotations

import numpy as np
import pytest

from robo_agent.core.audit import AuditLog, read_audit_log
from robo_agent.core.robot_spec import load_robot
from robo_agent.core.safety import SafetyEnvelope, quintic
from robo_agent.core.safety_policy import (
    BUILTIN_HARD_LIMITS,
    SafetyPolicyError,
    load_policy,
    parse_policy,
)
from robo_agent.core.tools import ToolError

SPEC = load_robot("panda")
HOME = SPEC.home_array


class PointArm:
    """A stand-in `ArmGeometry` for pure tests (core is tested without pinocchio): only the
    end-effector point, with a made-up FK under which home maps to (0.4, 0, 0.6)."""

    sphere_links = ("ee",)
    sphere_radii = np.zeros(1)
    ee_sphere = 0
    sweep_bound = 0.5

    def sphere_centers(self, qs: np.ndarray) -> np.ndarray:
        qs = np.atleast_2d(qs)
        return np.stack([0.4 + 0.2 * qs[:, 0], 0.0 * qs[:, 0],
                         0.6 + 0.5 * (qs[:, 1] - HOME[1])], axis=1)[:, None, :]

    def link_support(self, qs: np.ndarray, link: str, direction: np.ndarray) -> np.ndarray:
        return self.sphere_centers(qs)[:, 0] @ direction


@pytest.fixture
def env(tmp_path):
    audit = AuditLog(tmp_path / "audit.jsonl", source="test")
    policy = parse_policy({"rate_limits": {"motion": {"max_calls": 3, "period": 60.0}}})
    yield SafetyEnvelope(SPEC, policy, audit, kinematics=PointArm())
    audit.close()


def codes(env: SafetyEnvelope) -> list[str]:
    return [r["decision"] for r in env.audit.records]


def test_shipped_policies_load() -> None:
    default = load_policy()
    assert default.confirmation.required is True
    assert load_policy("unattended").confirmation.required is False
    limits = default.effective_limits()
    assert limits.joint_margin >= BUILTIN_HARD_LIMITS.joint_margin
    assert limits.velocity_scale <= BUILTIN_HARD_LIMITS.velocity_scale


@pytest.mark.parametrize(
    ("hard", "key"),
    [
        ({"joint_margin": 0.0}, "joint_margin"),
        ({"velocity_scale": 0.9}, "velocity_scale"),
        ({"max_step": 10.0}, "max_step"),
        ({"stale_state_timeout": 5.0}, "stale_state_timeout"),
    ],
)
def test_policy_cannot_loosen_hard_limits(hard: dict, key: str) -> None:
    with pytest.raises(SafetyPolicyError, match=f"{key}.*only tighten"):
        parse_policy({"hard_limits": hard})


def test_policy_workspace_is_intersected_and_keep_out_added() -> None:
    p = parse_policy({"hard_limits": {
        "workspace": {"min": [-5, -5, -5], "max": [0.5, 5, 5]},
        "keep_out": [{"name": "monitor", "min": [0.4, 0.3, 0], "max": [0.6, 0.5, 0.5]}]}})
    lim = p.effective_limits()
    assert lim.workspace.min == BUILTIN_HARD_LIMITS.workspace.min
    assert lim.workspace.max[0] == 0.5
    assert [b.name for b in lim.keep_out] == ["base_column", "monitor"]


@pytest.mark.parametrize(
    "data",
    [{"rate_limits": {"stop": {"max_calls": 1, "period": 1}}},
     {"rate_limits": {"fly": {"max_calls": 1, "period": 1}}},
     {"confirm": True}, [1, 2]],
)
def test_bad_policy_is_rejected(data: object) -> None:
    with pytest.raises(SafetyPolicyError):
        parse_policy(data)


def test_unknown_policy_name() -> None:
    with pytest.raises(SafetyPolicyError, match="unknown safety policy 'nope'"):
        load_policy("nope")


def test_allowed_motion_has_velocity_capped_duration(env) -> None:
    goal = HOME.copy()
    goal[0] += 0.5
    plan = env.plan_joint_motion("move_joints", HOME, goal)
    # Peak speed of the quintic profile stays within velocity_scale x URDF limit.
    pts = plan.waypoints(50)
    peak = max(np.max(np.abs(v) / env.vmax) for _, _, v in pts)
    assert peak <= 1.0 + 1e-6 and peak > 0.9
    assert np.allclose(pts[-1][1], goal) and np.allclose(pts[-1][2], 0.0)
    assert codes(env) == ["allowed"]


def test_short_duration_is_stretched_and_audited_as_clipped(env) -> None:
    goal = HOME.copy()
    goal[0] += 1.0
    plan = env.plan_joint_motion("move_joints", HOME, goal, duration=0.3)
    assert plan.duration > 0.3 and plan.clipped
    assert codes(env) == ["clipped"] and "velocity cap" in env.audit.records[-1]["reason"]


def test_target_in_margin_is_clipped(env) -> None:
    goal = HOME.copy()
    goal[3] = -0.01  # inside the URDF range (upper 0.0) but within the margin
    plan = env.plan_joint_motion("move_joints", HOME, goal)
    assert plan.q_goal[3] == pytest.approx(SPEC.upper[3] - env.limits.joint_margin)
    assert codes(env) == ["clipped"]


@pytest.mark.parametrize(
    ("goal_change", "code", "needle"),
    [
        ({1: 2.5}, "refused", "panda_joint2 is outside its joint range"),
        ({0: np.nan}, "invalid_arguments", "not finite"),
        ({0: np.inf}, "invalid_arguments", "not finite"),
    ],
)
def test_bad_targets_are_refused(env, goal_change, code, needle) -> None:
    goal = HOME.copy()
    for i, v in goal_change.items():
        goal[i] = v
    with pytest.raises(ToolError) as err:
        env.plan_joint_motion("move_joints", HOME, goal)
    assert err.value.code == code and needle in err.value.message
    assert codes(env) == ["refused"]


def test_wrong_length_refused(env) -> None:
    with pytest.raises(ToolError, match="has 3 values but panda has 7 joints"):
        env.plan_joint_motion("move_joints", HOME, np.zeros(3))


def test_max_step_refused(tmp_path) -> None:
    env = SafetyEnvelope(SPEC, parse_policy({"hard_limits": {"max_step": 0.5}}))
    goal = HOME.copy()
    goal[0] += 0.6
    with pytest.raises(ToolError, match=r"above max_step 0\.5 rad"):
        env.plan_joint_motion("move_joints", HOME, goal)


def test_workspace_and_keep_out_along_path(env) -> None:
    goal = HOME.copy()
    goal[1] += 1.7  # fake FK z = 1.45 > workspace max 1.4
    with pytest.raises(ToolError, match="outside the workspace box"):
        env.plan_joint_motion("move_joints", HOME, goal)
    goal = HOME.copy()
    goal[0], goal[1] = -1.5, HOME[1] - 0.7  # fake FK (0.1, 0, 0.25): in the base column
    with pytest.raises(ToolError) as err:
        env.plan_joint_motion("move_joints", HOME, goal)
    assert "keep-out box 'base_column'" in err.value.message
    with pytest.raises(ToolError, match="outside the workspace"):
        env.check_ee_point("move_end_effector", np.array([2.0, 0.0, 0.5]))


def test_state_gates(env) -> None:
    with pytest.raises(ToolError) as err:
        env.check_can_move("move_joints", 0.01, estopped=True)
    assert err.value.code == "estop"
    with pytest.raises(ToolError) as err:
        env.check_can_move("move_joints", None, estopped=False)
    assert err.value.code == "stale_state" and "no /joint_states" in err.value.message
    with pytest.raises(ToolError) as err:
        env.check_can_move("move_joints", 2.0, estopped=False)
    assert "stale_state_timeout" in err.value.message
    env.check_can_move("move_joints", 0.01, estopped=False)


def test_rate_limit_window(env) -> None:
    for _ in range(3):
        env.check_rate("move_joints")
    with pytest.raises(ToolError) as err:
        env.check_rate("set_gripper")  # 'motion' limit is per tool
        env.check_rate("move_joints")
    assert err.value.code == "rate_limited" and "at most 3 calls per 60.0 s" in err.value.message
    for _ in range(50):
        env.check_rate("get_robot_state")  # not limited
        env.check_rate("stop")


def test_rate_limit_window_slides() -> None:
    now = [0.0]
    env = SafetyEnvelope(SPEC, parse_policy({"rate_limits": {"stop_policy": {
        "max_calls": 2, "period": 1.0}}}), clock=lambda: now[0])
    env.check_rate("stop_policy")
    env.check_rate("stop_policy")
    with pytest.raises(ToolError):
        env.check_rate("stop_policy")
    now[0] = 1.01
    env.check_rate("stop_policy")


def test_plans_are_single_use_and_expire() -> None:
    now = [0.0]
    env = SafetyEnvelope(SPEC, parse_policy({"confirmation": {"required": True, "plan_ttl": 5}}),
                         clock=lambda: now[0])
    pid = env.create_plan({"tool": "move_joints", "q": [0.0]})
    assert env.take_plan(pid)["tool"] == "move_joints"
    with pytest.raises(ToolError, match="unknown or already used"):
        env.take_plan(pid)
    pid = env.create_plan({"tool": "move_joints"})
    now[0] = 6.0
    with pytest.raises(ToolError, match="expired"):
        env.take_plan(pid)


def test_gripper(env) -> None:
    assert env.plan_gripper("set_gripper", 0.2) == SPEC.gripper.max_width
    assert env.audit.records[-1]["decision"] == "clipped"


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def stream_env(clock: Clock, **hard: object) -> SafetyEnvelope:
    return SafetyEnvelope(SPEC, parse_policy({"hard_limits": hard} if hard else {}),
                          AuditLog(None), kinematics=PointArm(), clock=clock)


def test_stream_command_clips_to_range_velocity_and_max_step() -> None:
    env = stream_env(Clock(), max_step=0.05)
    q = env.check_stream_command("policy", HOME, HOME + 1.0, dt=0.01)
    assert np.all(np.abs(q - HOME) <= env.vmax * 0.01 + 1e-12)
    q = env.check_stream_command("policy", HOME, HOME - 1.0, dt=1.0)  # vmax*dt > max_step
    assert np.allclose(np.abs(q - HOME), 0.05)
    top = HOME.copy()
    top[0] = SPEC.upper[0] - 0.01  # inside the joint margin: pulled back to range
    q = env.check_stream_command("policy", top, top + 0.001, dt=0.1)
    assert q[0] == pytest.approx(SPEC.upper[0] - env.limits.joint_margin)
    assert [r["decision"] for r in env.audit.records] == ["clipped"]  # one per period


@pytest.mark.parametrize("q_cmd, dt, needle", [
    (np.full(7, np.nan), 0.01, "not finite"),
    (np.zeros(6), 0.01, "has 6 values"),
    (HOME, 0.0, "positive number"),
    (HOME, float("nan"), "positive number"),
])
def test_stream_command_bad_input_refused(q_cmd, dt, needle) -> None:
    env = stream_env(Clock())
    with pytest.raises(ToolError, match=needle):
        env.check_stream_command("policy", HOME, q_cmd, dt=dt)
    assert [r["decision"] for r in env.audit.records] == ["refused"]
    env.end_stream("policy")  # nothing was allowed: no summary
    assert len(env.audit.records) == 1


def test_stream_command_leaving_workspace_refused() -> None:
    env = stream_env(Clock())
    high = HOME.copy()
    high[1] += 1.58  # PointArm z = 1.39, just under the built-in workspace top (1.4 m)
    env.check_stream_command("policy", high, high, dt=0.002)  # staying put is fine
    with pytest.raises(ToolError, match="outside the workspace box") as err:
        env.check_stream_command("policy", high, high + np.eye(7)[1], dt=0.1)
    assert env.audit.records[-1]["limit"] == "workspace"
    assert env.audit.records[-1]["details"]["link"] == "ee"
    assert "end-effector" in err.value.message


def test_allowed_stream_commands_are_summarised() -> None:
    clock = Clock()
    env = stream_env(clock)
    for _ in range(250):  # 0.5 s at 500 Hz: no record yet
        env.check_stream_command("policy", HOME, HOME, dt=0.002)
        clock.t += 0.002
    assert env.audit.records == []
    for _ in range(300):
        env.check_stream_command("policy", HOME, HOME, dt=0.002)
        clock.t += 0.002
    env.check_stream_command("policy", HOME, HOME + 1.0, dt=0.002)
    env.end_stream("policy")
    rows = env.audit.records
    assert [r["decision"] for r in rows] == ["allowed", "clipped", "allowed"]
    assert rows[0]["details"]["allowed"] + rows[2]["details"]["allowed"] == 550
    assert rows[2]["details"]["clipped"] == 1 and "stream summary" in rows[2]["reason"]


def test_audit_file_has_every_decision(env) -> None:
    env.plan_joint_motion("move_joints", HOME, HOME)
    with pytest.raises(ToolError):
        env.check_can_move("move_joints", None, False)
    rows = read_audit_log(env.audit.path)
    assert [r["decision"] for r in rows] == ["allowed", "refused"]
    assert rows[1]["limit"] == "stale_state_timeout" and rows[1]["source"] == "test"


def test_quintic_profile() -> None:
    s, ds = quintic(np.array([0.0, 0.5, 1.0]))
    assert np.allclose(s, [0, 0.5, 1]) and ds[1] == pytest.approx(1.875)


def test_moving_out_of_a_keep_out_zone_is_allowed(env) -> None:
    inside = HOME.copy()
    inside[0], inside[1] = -1.5, HOME[1] - 0.7  # fake FK (0.1, 0, 0.25): in the base column
    plan = env.plan_joint_motion("move_joints", inside, HOME)
    assert np.allclose(plan.q_goal, HOME)
    with pytest.raises(ToolError, match="keep-out"):
        env.plan_joint_motion("move_joints", HOME, inside)
