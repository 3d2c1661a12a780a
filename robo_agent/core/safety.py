"""The safety envelope: the one place that decides whether a command may reach the robot.

Every interface (LLM tools, MCP, the ROS tool-call topic, the offline grammar, the policy
runner) asks a `SafetyEnvelope` before anything is published to a controller. It enforces
the hard limits (joint range minus a margin, velocity cap, max step per command, workspace
box, table plane and keep-out boxes for every link along the whole path, stale-state
timeout, latched e-stop) and the policy's soft rules (rate limits, confirmation plans), and
writes each decision to the audit log. Refusals come back as `ToolError`s whose message
names the limit (and the link). Pure: numpy only; the robot's kinematics is passed in as
an `ArmGeometry` (`robo_agent.kinematics.Kinematics` is one), see `core/collision.py`.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from robo_agent.core.audit import AuditLog
from robo_agent.core.clearance import ClearRegion
from robo_agent.core.collision import ArmGeometry, Zones, first_violation
from robo_agent.core.robot_spec import RobotSpec
from robo_agent.core.safety_policy import HardLimits, SafetyPolicy
from robo_agent.core.tools import ToolError

MIN_DURATION = 0.2  # s; shortest motion we send, so a controller always gets a ramp
QUINTIC_PEAK_SPEED = 1.875  # peak of d/dtau of 10t^3 - 15t^4 + 6t^5 (at tau = 0.5)
STREAM_AUDIT_PERIOD = 1.0  # s between streaming summaries (and individually audited clips)


def quintic(tau: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-jerk blend s(tau) and ds/dtau for tau in [0, 1] (zero end velocity/accel)."""
    t = np.clip(tau, 0.0, 1.0)
    s = t**3 * (10.0 - 15.0 * t + 6.0 * t**2)
    ds = 30.0 * t**2 * (1.0 - t) ** 2
    return s, ds


@dataclass(frozen=True)
class JointPlan:
    """An approved joint-space motion from q_start to q_goal in `duration` seconds."""

    tool: str
    q_start: np.ndarray
    q_goal: np.ndarray
    duration: float
    notes: tuple[str, ...] = ()
    ee_goal: tuple[float, ...] | None = None

    @property
    def clipped(self) -> bool:
        return bool(self.notes)

    def waypoints(self, n: int = 10) -> list[tuple[float, np.ndarray, np.ndarray]]:
        """(time_from_start, positions, velocities) for n points on the quintic profile."""
        taus = np.linspace(0.0, 1.0, n + 1)[1:]
        s, ds = quintic(taus)
        delta = self.q_goal - self.q_start
        return [
            (float(tau * self.duration), self.q_start + si * delta, dsi * delta / self.duration)
            for tau, si, dsi in zip(taus, s, ds, strict=True)
        ]

    def preview(self, joint_names: list[str]) -> dict[str, Any]:
        """What a human is asked to approve."""
        out: dict[str, Any] = {
            "tool": self.tool,
            "duration_s": round(self.duration, 3),
            "from": dict(zip(joint_names, np.round(self.q_start, 4).tolist(), strict=True)),
            "to": dict(zip(joint_names, np.round(self.q_goal, 4).tolist(), strict=True)),
            "max_joint_change_rad": round(float(np.max(np.abs(self.q_goal - self.q_start))), 4),
        }
        if self.ee_goal is not None:
            out["end_effector_goal_m"] = [round(v, 4) for v in self.ee_goal]
        if self.notes:
            out["clipped"] = list(self.notes)
        return out


@dataclass
class _Plan:
    payload: dict[str, Any]
    expires: float


@dataclass
class _StreamStats:
    since: float
    allowed: int = 0
    clipped: int = 0
    last_clip_audit: float = -np.inf


@dataclass
class RateLimiter:
    """Sliding-window call counter per tool."""

    calls: dict[str, deque[float]] = field(default_factory=dict)

    def allow(self, tool: str, max_calls: int, period: float, now: float) -> bool:
        window = self.calls.setdefault(tool, deque())
        while window and now - window[0] >= period:
            window.popleft()
        if len(window) >= max_calls:
            return False
        window.append(now)
        return True


class SafetyEnvelope:
    """Decides, clips or refuses commands for one robot under one policy; audits each decision."""

    def __init__(
        self,
        spec: RobotSpec,
        policy: SafetyPolicy | None = None,
        audit: AuditLog | None = None,
        kinematics: ArmGeometry | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.spec = spec
        self.policy = policy or SafetyPolicy()
        self.limits: HardLimits = self.policy.effective_limits()
        self.audit = audit or AuditLog(None)
        # Without kinematics only joint-space limits are checked (no workspace/keep-out).
        self.kinematics = kinematics
        if kinematics is not None:
            kinematics.sphere_radii  # noqa: B018 - fit the geometry now, not in the 1st command
        self._zones = Zones(self.limits)
        self._clear = ClearRegion(kinematics, self._zones) if kinematics is not None else None
        self.clock = clock
        margin = self.limits.joint_margin
        self.lower = spec.lower + margin
        self.upper = spec.upper - margin
        if np.any(self.lower >= self.upper):
            raise ValueError(f"joint_margin {margin} rad leaves no range for some joint")
        self.vmax = spec.velocity_limits * self.limits.velocity_scale
        self._rates = RateLimiter()
        self._plans: dict[str, _Plan] = {}
        self._lock = threading.Lock()
        self._streams: dict[str, _StreamStats] = {}

    # -- recording -----------------------------------------------------------------------
    def refuse(self, tool: str, code: str, reason: str, limit: str | None = None,
               **details: Any) -> ToolError:
        """Audit a refusal and return the ToolError to raise."""
        self.audit.record(tool, "refused", reason, limit, code=code, **details)
        return ToolError(code, reason)

    def allow(self, tool: str, reason: str, **details: Any) -> None:
        self.audit.record(tool, "allowed", reason, None, **details)

    # -- state, rate and confirmation gates ----------------------------------------------
    def check_can_move(self, tool: str, state_age: float | None, estopped: bool) -> None:
        """Refuse motion while the e-stop is latched or the joint state is stale/absent."""
        if estopped:
            raise self.refuse(tool, "estop", "emergency stop is latched; call "
                              "reset_emergency_stop first", "estop")
        timeout = self.limits.stale_state_timeout
        if state_age is None:
            raise self.refuse(tool, "stale_state", "no /joint_states message received yet; "
                              f"motion needs a state newer than {timeout} s",
                              "stale_state_timeout")
        if state_age > timeout:
            raise self.refuse(tool, "stale_state", f"last /joint_states is {state_age:.3f} s "
                              f"old, above the stale_state_timeout of {timeout} s",
                              "stale_state_timeout", state_age=state_age)

    def check_rate(self, tool: str) -> None:
        """Refuse a call beyond the policy's rate limit for this tool."""
        rule = self.policy.rate_limit_for(tool)
        if rule is None:
            return
        with self._lock:
            ok = self._rates.allow(tool, rule.max_calls, rule.period, self.clock())
        if not ok:
            raise self.refuse(tool, "rate_limited", f"rate limit for {tool}: at most "
                              f"{rule.max_calls} calls per {rule.period} s; try again later",
                              "rate_limits")

    @property
    def confirmation_required(self) -> bool:
        return self.policy.confirmation.required

    def create_plan(self, payload: dict[str, Any]) -> str:
        """Store a motion awaiting confirmation; returns its single-use id."""
        plan_id = secrets.token_hex(6)
        now = self.clock()
        with self._lock:
            self._plans = {k: p for k, p in self._plans.items() if p.expires > now}
            self._plans[plan_id] = _Plan(payload, now + self.policy.confirmation.plan_ttl)
        self.audit.record(payload.get("tool", "?"), "refused", "held for confirmation",
                          "confirmation", code="needs_confirmation", plan_id=plan_id)
        return plan_id

    def take_plan(self, plan_id: str) -> dict[str, Any]:
        """Consume a plan id (single use); refused if unknown, used or expired."""
        with self._lock:
            plan = self._plans.pop(plan_id, None)
        if plan is None:
            raise self.refuse("confirm_plan", "refused", f"unknown or already used plan id "
                              f"{plan_id!r}", "confirmation")
        if plan.expires < self.clock():
            raise self.refuse("confirm_plan", "refused", f"plan {plan_id} expired (plans live "
                              f"{self.policy.confirmation.plan_ttl} s)", "confirmation.plan_ttl")
        self.allow("confirm_plan", "plan confirmed", plan_id=plan_id)
        return plan.payload

    # -- motion checks -------------------------------------------------------------------
    def _check_vector(self, tool: str, q: np.ndarray, what: str) -> np.ndarray:
        q = np.asarray(q, dtype=np.float64)
        if q.shape != (self.spec.dof,):
            raise self.refuse(tool, "invalid_arguments", f"{what} has {q.size} values but "
                              f"{self.spec.name} has {self.spec.dof} joints "
                              f"({', '.join(self.spec.joint_names)})", "dof")
        if not np.all(np.isfinite(q)):
            bad = [n for n, v in zip(self.spec.joint_names, q, strict=True) if not np.isfinite(v)]
            raise self.refuse(tool, "invalid_arguments", f"{what} is not finite for {bad}",
                              "finite")
        return q

    def check_ee_point(self, tool: str, p: np.ndarray, what: str = "end-effector target",
                       exempt: set[str] | None = None, outside_ok: bool = False) -> None:
        """Refuse a point outside the workspace box or inside a keep-out box (except the
        zones a path is still leaving: `exempt` keep-out names, `outside_ok` workspace)."""
        p = np.asarray(p, dtype=np.float64)
        ws = self.limits.workspace
        if not outside_ok and not ws.contains(p):
            raise self.refuse(tool, "refused", f"{what} {np.round(p, 3).tolist()} m is outside "
                              f"the workspace box min {list(ws.min)} max {list(ws.max)}",
                              "workspace", point=p)
        for box in self.limits.keep_out:
            if box.contains(p) and box.name not in (exempt or ()):
                raise self.refuse(tool, "refused", f"{what} {np.round(p, 3).tolist()} m is inside "
                                  f"keep-out box '{box.name}' (min {list(box.min)}, max "
                                  f"{list(box.max)})", f"keep_out.{box.name}", point=p)

    def plan_joint_motion(self, tool: str, q_now: np.ndarray, q_goal: np.ndarray,
                          duration: float | None = None,
                          ee_goal: tuple[float, ...] | None = None) -> JointPlan:
        """Approve (possibly clipped) or refuse a joint-space motion from the measured q_now."""
        q_now = self._check_vector(tool, q_now, "measured joint state")
        q_goal = self._check_vector(tool, q_goal, "joint target")
        names = self.spec.joint_names
        notes: list[str] = []
        lo, hi = self.spec.lower, self.spec.upper
        for i, name in enumerate(names):
            if not lo[i] <= q_goal[i] <= hi[i]:
                raise self.refuse(tool, "refused", f"target {q_goal[i]:.4f} rad for {name} is "
                                  f"outside its joint range [{lo[i]:.4f}, {hi[i]:.4f}] rad",
                                  "joint_range", joint=name, target=q_goal[i])
        clipped = np.clip(q_goal, self.lower, self.upper)
        for i in np.flatnonzero(clipped != q_goal):
            notes.append(f"{names[i]} clipped from {q_goal[i]:.4f} to {clipped[i]:.4f} rad "
                         f"(joint_margin {self.limits.joint_margin} rad)")
        q_goal = clipped
        step = np.abs(q_goal - q_now)
        worst = int(np.argmax(step))
        if step[worst] > self.limits.max_step:
            raise self.refuse(tool, "refused", f"{names[worst]} would move {step[worst]:.3f} rad "
                              f"in one command, above max_step {self.limits.max_step} rad",
                              "max_step", joint=names[worst])
        t_min = max(MIN_DURATION, float(QUINTIC_PEAK_SPEED * np.max(step / self.vmax)))
        if duration is None:
            duration = t_min
        elif duration < t_min:
            notes.append(f"duration stretched from {duration:.3f} s to {t_min:.3f} s "
                         f"(velocity cap {self.limits.velocity_scale} x URDF limits)")
            duration = t_min
        plan = JointPlan(tool, q_now, q_goal, float(duration), tuple(notes), ee_goal)
        self._check_path(tool, q_now, q_goal)
        self.audit.record(tool, "clipped" if notes else "allowed",
                          "; ".join(notes) or "within all limits",
                          "joint_margin/velocity_scale" if notes else None,
                          q_goal=q_goal, duration=plan.duration)
        return plan

    def plan_gripper(self, tool: str, width: float) -> float:
        """Clip a gripper opening to [0, max_width]; refuse if there is no gripper."""
        if self.spec.gripper is None:
            raise self.refuse(tool, "unavailable", f"robot {self.spec.name} has no gripper",
                              "gripper")
        if not np.isfinite(width):
            raise self.refuse(tool, "invalid_arguments", "gripper width is not finite", "finite")
        w = float(np.clip(width, 0.0, self.spec.gripper.max_width))
        if w != width:
            self.audit.record(tool, "clipped", f"width {width} m clipped to {w} m (gripper range "
                              f"[0, {self.spec.gripper.max_width}] m)", "gripper.max_width")
        else:
            self.allow(tool, "within gripper range", width=w)
        return w

    def _check_path(self, tool: str, q_now: np.ndarray, q_goal: np.ndarray,
                    stream: bool = False) -> None:
        """Refuse a path on which any link leaves the workspace, goes below the table or
        touches a keep-out box (swept-volume check, see `core/collision.py`).

        A path within the last measured clear region is clear (`core/clearance.py`);
        a streaming command outside it first re-centres the region on its target (one
        forward-kinematics pass), which settles the small step of one control period
        unless the arm is within that step of a zone, and the next ticks' steps too."""
        if self.kinematics is None or self._clear is None:
            return
        if self._clear.covers(q_now, q_goal):
            return
        if stream and self._clear.move_to(q_goal) > 0.0 and self._clear.covers(q_now, q_goal):
            return
        v = first_violation(self.kinematics, self._zones, q_now, q_goal)
        if v is not None:
            raise self.refuse(tool, "refused", v.message, v.limit, link=v.link, point=v.point,
                              path_fraction=v.fraction)

    def stream_covered(self, q_now: np.ndarray, q_cmd: np.ndarray) -> bool:
        """Whether the last measured clear region covers the straight path q_now -> q_cmd;
        a pure test (no refusal, no audit, no re-centring), the first thing a streamed
        command's check asks (`_check_path`)."""
        return self._clear is not None and self._clear.covers(q_now, q_cmd)

    def check_stream_command(self, source: str, q_now: np.ndarray, q_cmd: np.ndarray,
                             dt: float) -> np.ndarray:
        """One streaming position command (the policy runner, up to 500 Hz): the command
        to send, or a refusal.

        Refuses non-finite or wrong-length input and a command whose path from `q_now`
        takes any link out of the workspace, below the table or into a keep-out box.
        Clips to the joint range minus the margin, then to `vmax * dt` and `max_step`
        around `q_now`; the clipped command is the one checked. E-stop and state age are
        the caller's gate (`check_can_move`). Refusals are audited one by one; clips at
        most once per `STREAM_AUDIT_PERIOD` per source, allowed commands not one by one:
        a summary record per source every `STREAM_AUDIT_PERIOD` s while commands flow
        (and at `end_stream`) counts the allowed and clipped ones.
        """
        q_now = self._check_vector(source, q_now, "measured joint state")
        q_cmd = self._check_vector(source, q_cmd, "position command")
        if not (isinstance(dt, (int, float)) and np.isfinite(dt) and dt > 0):
            raise self.refuse(source, "invalid_arguments", f"control period dt must be a "
                              f"positive number of seconds, got {dt!r}", "finite")
        step = np.minimum(self.vmax * dt, self.limits.max_step)
        out = np.clip(np.clip(q_cmd, self.lower, self.upper), q_now - step, q_now + step)
        self._check_path(source, q_now, out, stream=True)
        clipped = not np.array_equal(out, q_cmd)
        now = self.clock()
        with self._lock:
            stats = self._streams.setdefault(source, _StreamStats(since=now))
            audit_clip = clipped and now - stats.last_clip_audit >= STREAM_AUDIT_PERIOD
            if audit_clip:
                stats.last_clip_audit = now
            stats.clipped += clipped
            stats.allowed += not clipped
            summary = self._take_summary(source) if now - stats.since >= \
                STREAM_AUDIT_PERIOD else None
        if audit_clip:
            self.audit.record(source, "clipped", "position command clipped to the joint range "
                              "/ velocity cap / max_step (further clips within "
                              f"{STREAM_AUDIT_PERIOD} s are counted in the stream summary)",
                              "joint_margin/velocity_scale/max_step", q_cmd=q_cmd, q_out=out)
        if summary is not None:
            self._record_summary(source, *summary)
        return out

    def _take_summary(self, source: str) -> tuple[int, int, float] | None:
        """(allowed, clipped, seconds) since the last summary, and reset; lock held."""
        stats = self._streams.pop(source, None)
        if stats is None or stats.allowed + stats.clipped == 0:
            return None
        self._streams[source] = _StreamStats(since=self.clock(),
                                             last_clip_audit=stats.last_clip_audit)
        return stats.allowed, stats.clipped, self.clock() - stats.since

    def _record_summary(self, source: str, allowed: int, clipped: int, seconds: float) -> None:
        self.audit.record(source, "allowed", f"stream summary: {allowed} position commands "
                          f"within all limits and {clipped} clipped in {seconds:.2f} s",
                          None, allowed=allowed, clipped=clipped, seconds=seconds)

    def end_stream(self, source: str) -> None:
        """Write the summary of a stream's remaining commands (call when a stream stops)."""
        with self._lock:
            summary = self._take_summary(source)
            self._streams.pop(source, None)
        if summary is not None:
            self._record_summary(source, *summary)
