"""`PolicyLoop`: one control step of a learned policy on a robot, as pure logic.

The ROS node (`robo_agent.ros.policy_runner`) owns timing and topics; this class decides,
for each tick, what to send: it rebuilds the observation exactly as the env does
(`assemble_observation`, joints matched by name), runs the policy, applies the action with
the env's semantics (reference += action * action_scale, clipped to the joint range), and
passes the command through the safety envelope. Guards, in order: e-stop (latched, final),
no or stale state (older than `stale_periods` control periods: hold, and re-anchor the
reference to the measured pose when fresh state returns, so it never jumps), NaN/inf in
state or policy output (hold and report), goal reached (success held for
`success_steps` ticks) or `max_duration` (done). The first `ramp_time` seconds scale the
action from 0 to 1 (soft start from the measured pose).

Pure: numpy only; kinematics and the policy are passed in as functions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from robo_agent.core.artifact import PolicySpec
from robo_agent.core.observation import (
    achieved_key,
    assemble_observation,
    joint_delta_scale,
    spec_layout,
    success_threshold,
)
from robo_agent.core.robot_spec import RobotSpec
from robo_agent.core.tools import ToolError

SOURCE = "policy_runner"
STATES = ("idle", "ramping", "running", "holding", "done", "refused", "estopped")

#: (q in the robot's joint order) -> (ee position, ee quaternion xyzw)
EePose = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
#: (q, qd) -> ee linear velocity
EeVelocity = Callable[[np.ndarray, np.ndarray], np.ndarray]
#: observation dict -> action in [-1, 1]
Act = Callable[[dict[str, np.ndarray]], np.ndarray]
#: (source, q_now, q_cmd, dt) -> the command the envelope lets through (or ToolError)
Guard = Callable[[str, np.ndarray, np.ndarray, float], np.ndarray]


@dataclass(frozen=True)
class LoopConfig:
    control_dt: float
    max_duration: float = 0.0  # s; 0 = no limit
    ramp_time: float = 0.2  # s of soft start
    stale_periods: float = 2.0
    success_steps: int = 3  # consecutive ticks within the success radius to stop


@dataclass
class Step:
    """What one tick decided: `command` (robot order) to send, or a hold, or nothing."""

    kind: str  # "command" | "hold" | "none"
    state: str
    command: np.ndarray | None = None
    reason: str = ""
    distance: float | None = None


@dataclass
class LoopStats:
    steps: int = 0
    commands: int = 0
    holds: int = 0
    guard: str = ""
    guard_reason: str = ""
    clipped: int = 0
    distance: float | None = None  # m from the goal at the last tick with a state
    history: list[str] = field(default_factory=list)


def speed_ratio(spec: PolicySpec, robot: RobotSpec, vmax: np.ndarray, control_dt: float) -> float:
    """How much faster than the envelope's velocity cap `vmax` (rad/s, robot order) a full
    action moves the policy's joint reference at this control period; above 1 the envelope
    clips every fast command and the arm does less than the policy did in training."""
    index = {n: i for i, n in enumerate(robot.joint_names)}
    caps = np.asarray(vmax, dtype=np.float64)[[index[n] for n in spec.joint_names]]
    return float(np.max(joint_delta_scale(spec) / control_dt / caps))


class PolicyLoop:
    """Turns (measured state, goal) into safe joint commands, one control period at a time."""

    def __init__(self, spec: PolicySpec, robot: RobotSpec, goal: np.ndarray, act: Act,
                 ee_pose: EePose, ee_velocity: EeVelocity, guard: Guard,
                 config: LoopConfig) -> None:
        self.spec, self.robot, self.cfg = spec, robot, config
        self.layout = spec_layout(spec)
        self._achieved = achieved_key(self.layout)
        self.goal = np.asarray(goal, dtype=np.float64).reshape(3)
        self.act, self.ee_pose, self.ee_velocity, self.guard = act, ee_pose, ee_velocity, guard
        index = {n: i for i, n in enumerate(robot.joint_names)}
        # policy joint i is robot joint perm[i] (joints are matched by name, never order)
        self.perm = np.array([index[n] for n in spec.joint_names])
        self.scale = joint_delta_scale(spec)
        self.threshold = success_threshold(spec)
        self.state = "idle"
        self.stats = LoopStats()
        self.ref: np.ndarray | None = None  # the env's joint target, robot order
        self.t_start: float | None = None
        self._within = 0
        self._anchor_time = 0.0

    # -- helpers ---------------------------------------------------------------------------
    def _set(self, state: str, guard: str = "", reason: str = "") -> None:
        if state != self.state:
            self.stats.history.append(state)
        self.state = state
        if guard:
            self.stats.guard, self.stats.guard_reason = guard, reason

    def _hold(self, state: str, guard: str, reason: str) -> Step:
        """Enter a holding/final state; the first tick of it sends one hold."""
        first = self.state != state or self.stats.guard != guard
        self._set(state, guard, reason)
        self.ref = None  # re-anchor to the measured pose on resume: never a jump
        if first:
            self.stats.holds += 1
            return Step("hold", state, reason=reason)
        return Step("none", state, reason=reason)

    def block(self, guard: str, reason: str) -> Step:
        """Hold for a reason found outside the loop (e.g. no controller is listening)."""
        if self.finished:
            return Step("none", self.state, reason=self.stats.guard_reason)
        return self._hold("holding", guard, reason)

    @property
    def finished(self) -> bool:
        return self.state in ("done", "refused", "estopped")

    def observation(self, q: np.ndarray, qd: np.ndarray,
                    gripper_width: float | None = None,
                    objects: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """The env's observation for a measured state (q, qd in the robot's joint order)."""
        pos, _ = self.ee_pose(q)
        values: dict[str, np.ndarray] = {
            "joint_positions": q[self.perm], "joint_velocities": qd[self.perm],
            "ee_position": np.asarray(pos), "ee_velocity": np.asarray(self.ee_velocity(q, qd)),
        }
        if gripper_width is not None:
            values["gripper_width"] = np.array([gripper_width])
        if objects:
            values.update(objects)
        return assemble_observation(self.layout, values, self.goal)

    def warm(self, q: np.ndarray, qd: np.ndarray) -> None:
        """This tick's computation on a state, discarded: the observation and the policy's
        action, and nothing changes (no reference, no statistics, no state). Run shortly
        before a tick at a low control rate, it brings the policy's weights and code back
        into the CPU caches that the idle stretch of a long period lost to other work."""
        if not self.finished and np.isfinite(q).all() and np.isfinite(qd).all():
            self.act(self.observation(q, qd))

    # -- one tick ----------------------------------------------------------------------------
    def step(self, now: float, q: np.ndarray | None, qd: np.ndarray | None,
             state_age: float | None, estopped: bool, gripper_width: float | None = None,
             objects: dict[str, np.ndarray] | None = None) -> Step:
        """Decide this tick's command. `now` is monotonic seconds; q/qd in robot order."""
        if self.finished:
            return Step("none", self.state, reason=self.stats.guard_reason)
        self.stats.steps += 1
        dt = self.cfg.control_dt
        if estopped:
            return self._hold("estopped", "estop", "emergency stop latched on /robo_agent/estop")
        if self.t_start is not None and self.cfg.max_duration > 0 \
                and now - self.t_start >= self.cfg.max_duration:
            return self._hold("done", "max_duration",
                              f"max_duration {self.cfg.max_duration:g} s elapsed")
        if q is None or qd is None or state_age is None:
            if self.t_start is None:  # not started yet: wait quietly for the first state
                self._set("idle")
                return Step("none", "idle", reason="waiting for /joint_states")
            return self._hold("holding", "no_state", "no complete /joint_states received")
        if state_age > self.cfg.stale_periods * dt:
            return self._hold("holding", "stale_state",
                              f"/joint_states is {state_age * 1000:.1f} ms old, above "
                              f"{self.cfg.stale_periods:g} control periods "
                              f"({self.cfg.stale_periods * dt * 1000:.1f} ms)")
        if not (np.isfinite(q).all() and np.isfinite(qd).all()):
            return self._hold("holding", "nan_state", "NaN or inf in /joint_states")
        if self.t_start is None:
            self.t_start = now
        obs = self.observation(q, qd, gripper_width, objects)
        if not np.isfinite(obs["observation"]).all():
            return self._hold("holding", "nan_state", "NaN or inf in the observation")
        dist = float(np.linalg.norm(obs["achieved_goal"].astype(np.float64) - self.goal))
        self.stats.distance = dist
        self._within = self._within + 1 if dist < self.threshold else 0
        if self._within >= self.cfg.success_steps:
            return self._hold("done", "goal_reached",
                              f"goal reached: {dist * 1000:.1f} mm from it for "
                              f"{self._within} steps")
        action = np.asarray(self.act(obs), dtype=np.float64).reshape(-1)
        if action.shape != (self.spec.action_dim,) or not np.isfinite(action).all():
            return self._hold("holding", "nan_action",
                              f"policy output is not {self.spec.action_dim} finite numbers: "
                              f"{np.round(action, 4).tolist()[:8]}")
        if self.ref is None:  # (re-)anchor at the measured pose: the soft start begins here
            self.ref = q.copy()
            self._anchor_time = now
        ramp = 1.0 if self.cfg.ramp_time <= 0 else \
            min(1.0, (now - self._anchor_time + dt) / self.cfg.ramp_time)
        delta = np.zeros(self.robot.dof)
        delta[self.perm] = np.clip(action[: len(self.perm)], -1.0, 1.0) * self.scale * ramp
        # The env's rule: target = clip(target + action * scale, lower, upper).
        self.ref = np.clip(self.ref + delta, self.robot.lower, self.robot.upper)
        try:
            cmd = self.guard(SOURCE, q, self.ref, dt)
        except ToolError as err:
            return self._hold("holding", "safety", f"safety envelope refused: {err.message}")
        if float(np.max(np.abs(cmd - self.ref))) > 1e-9:
            self.stats.clipped += 1
            # Anti-windup: the envelope caps each command at a step from the *measured*
            # pose, so an arm that lags its setpoint moves slower than the reference.
            # Left alone the reference would run ahead (0.4 rad measured in a rehearsal)
            # and the arm overshoot when the policy turns; it restarts from what was sent.
            self.ref = cmd.copy()
        self._set("ramping" if ramp < 1.0 else "running")
        self.stats.commands += 1
        return Step("command", self.state, command=cmd, distance=dist)
