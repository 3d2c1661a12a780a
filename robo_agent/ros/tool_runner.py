"""`ToolRunner`: executes the registry's tools on a `ToolNode`, through the safety envelope.

Every call is validated against the tool's argument model, rate-limited, checked against
the e-stop and state freshness, planned by the `SafetyEnvelope` (which audits the
decision), held for confirmation when the policy says so, published, and then measured:
motion tools wait on /joint_states until the target is reached within tolerance (or the
time runs out) and report the measured error. Tool-level problems come back as
`ToolResult(ok=False, error=code)`; nothing here raises for bad input.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from robo_agent.core.audit import AuditLog
from robo_agent.core.geometry import quat_angle, quat_from_rpy, quat_mul
from robo_agent.core.safety import JointPlan, SafetyEnvelope
from robo_agent.core.safety_policy import SafetyPolicy
from robo_agent.core.tools import TOOLS, ToolError, ToolResult, validate_call
from robo_agent.ros import interfaces as ifc
from robo_agent.ros.tool_node import JointSnapshot, ToolNode
from robo_agent.ros.tool_sensors import camera_image, object_poses
from robo_agent.sim.robot import Kinematics

GRIPPER_TOLERANCE = 0.002  # m
GRIPPER_TIMEOUT = 3.0  # s


def _r(v: Any, n: int = 4) -> Any:
    return np.round(np.asarray(v, dtype=float), n).tolist()


class ToolRunner:
    """Runs tool calls; thread-safe (one motion at a time, stop/e-stop preempt it)."""

    def __init__(self, node: ToolNode, policy: SafetyPolicy, audit: AuditLog,
                 dry_run: bool = False) -> None:
        self.node = node
        self.spec = node.spec
        self.kin = Kinematics(self.spec)
        self._kin_lock = threading.Lock()
        self.env = SafetyEnvelope(self.spec, policy, audit, fk=self._fk_position)
        node.dry_run = bool(dry_run or policy.dry_run)  # dry-run can be added, never removed
        node.on_estop = self._on_estop_change
        node.create_command_publishers()
        self._abort = threading.Event()
        # One motion at a time, held from reading the state to the end of the motion so
        # that a queued motion is planned (and e-stop-checked) from where the arm really is.
        # Re-entrant: confirm_plan runs the held motion under the same lock.
        self._motion_lock = threading.RLock()
        self.names = self.spec.joint_names

    def close(self) -> None:
        self.kin.close()
        self.env.audit.close()

    # -- kinematics ------------------------------------------------------------------------
    def _fk(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with self._kin_lock:
            p, o = self.kin.forward(q)
        return np.asarray(p), np.asarray(o)

    def _fk_position(self, q: np.ndarray) -> np.ndarray:
        return self._fk(q)[0]

    # -- entry point -----------------------------------------------------------------------
    def call(self, name: str, arguments: dict[str, Any] | str | None) -> ToolResult:
        """Validate and run one tool call; tool-level failures come back as ok=False."""
        tool = str(name)
        try:
            try:
                args = validate_call(tool, arguments)
            except ToolError as err:
                raise self.env.refuse(tool, err.code, err.message, "arguments") from None
            self.env.check_rate(tool)
            handler = getattr(self, "_tool_" + tool)
            if TOOLS[tool].moves_robot:
                with self._motion_lock:
                    return handler(args)
            return handler(args)
        except ToolError as err:
            return ToolResult.failure(tool, err)

    # -- state -----------------------------------------------------------------------------
    def _state_for_motion(self, tool: str) -> JointSnapshot:
        snap = self.node.snapshot()
        self.env.check_can_move(tool, None if snap is None else snap.age(), self.node.estopped)
        assert snap is not None
        return snap

    def _tool_get_robot_state(self, args: Any) -> ToolResult:
        snap = self.node.snapshot()
        if snap is None:
            raise ToolError("stale_state", f"no /joint_states received yet on "
                            f"{self.node.p['joint_states_topic']}")
        pos, orn = self._fk(snap.q)
        width = self.node.gripper_width(snap)
        age = snap.age()
        data = {
            "joint_positions": dict(zip(self.names, _r(snap.q), strict=True)),
            "joint_velocities": dict(zip(self.names, _r(snap.qd), strict=True)),
            "end_effector": {"frame": self.spec.base_frame, "position": _r(pos),
                             "orientation_xyzw": _r(orn)},
            "gripper_width": None if width is None else round(float(width), 4),
            "state_age_s": round(age, 4),
            "stale": age > self.env.limits.stale_state_timeout,
            "estop": self.node.estopped,
            "dry_run": self.node.dry_run,
        }
        grip = ("no gripper" if width is None else
                f"gripper {'closed' if width < 0.003 else 'open'} {width:.3f} m")
        msg = (f"state {age:.3f} s old; end effector at {_r(pos, 3)} m in {self.spec.base_frame};"
               f" {grip}; e-stop {'LATCHED' if self.node.estopped else 'released'}")
        return ToolResult(tool="get_robot_state", ok=True, message=msg, data=data)

    # -- motions ---------------------------------------------------------------------------
    def _tool_move_joints(self, args: Any) -> ToolResult:
        snap = self._state_for_motion("move_joints")
        if args.joints is not None:
            unknown = sorted(set(args.joints) - set(self.names))
            if unknown:
                raise self.env.refuse("move_joints", "invalid_arguments", f"unknown joint names "
                                      f"{unknown}; {self.spec.name} joints are {self.names}",
                                      "joint_names")
            q_goal = snap.q.copy()
            for n, v in args.joints.items():
                q_goal[self.names.index(n)] = v
        else:
            q_goal = np.asarray(args.positions, dtype=float)
        return self._move("move_joints", snap, q_goal, args.duration)

    def _ik(self, tool: str, snap: JointSnapshot, position: np.ndarray,
            orientation: np.ndarray) -> np.ndarray:
        self.env.check_ee_point(tool, position)
        with self._kin_lock:
            q, residual = self.kin.inverse(position, orientation, seed=snap.q)
            reached_orn = np.asarray(self.kin.forward(q)[1])
        tol = float(self.node.p["ik_tolerance"])
        if residual > tol:
            raise self.env.refuse(tool, "refused", f"pose unreachable: inverse kinematics gets "
                                  f"within {residual:.3f} m of {_r(position, 3)}, above the "
                                  f"ik_tolerance of {tol} m", "ik_tolerance", residual=residual)
        angle = quat_angle(reached_orn, orientation)
        otol = float(self.node.p["orientation_tolerance"])
        if angle > otol:
            raise self.env.refuse(tool, "refused", f"orientation unreachable at {_r(position, 3)}:"
                                  f" best is {angle:.3f} rad off, above orientation_tolerance "
                                  f"{otol} rad", "orientation_tolerance")
        return q

    def _tool_move_end_effector(self, args: Any) -> ToolResult:
        tool = "move_end_effector"
        snap = self._state_for_motion(tool)
        target = np.asarray(args.position, dtype=float)
        orn = (np.asarray(args.orientation, dtype=float) / np.linalg.norm(args.orientation)
               if args.orientation is not None else self._fk(snap.q)[1])
        q_goal = self._ik(tool, snap, target, orn)
        return self._move(tool, snap, q_goal, args.duration, ee_goal=target)

    def _tool_move_end_effector_relative(self, args: Any) -> ToolResult:
        tool = "move_end_effector_relative"
        snap = self._state_for_motion(tool)
        pos, orn = self._fk(snap.q)
        target = pos + np.array([args.dx, args.dy, args.dz])
        if args.droll or args.dpitch or args.dyaw:
            orn = quat_mul(quat_from_rpy(args.droll, args.dpitch, args.dyaw), orn)
        q_goal = self._ik(tool, snap, target, orn)
        return self._move(tool, snap, q_goal, args.duration, ee_goal=target)

    def _move(self, tool: str, snap: JointSnapshot, q_goal: np.ndarray,
              duration: float | None, ee_goal: np.ndarray | None = None,
              confirmed: bool = False) -> ToolResult:
        ee = None if ee_goal is None else tuple(float(v) for v in ee_goal)
        plan = self.env.plan_joint_motion(tool, snap.q, q_goal, duration, ee)
        if self.env.confirmation_required and not confirmed:
            payload = {"tool": tool, "kind": "joints", "q_goal": plan.q_goal.tolist(),
                       "duration": duration, "ee_goal": ee}
            return self._needs_confirmation(tool, payload, plan.preview(self.names))
        with self._motion_lock:
            return self._execute(plan)

    def _needs_confirmation(self, tool: str, payload: dict, preview: dict) -> ToolResult:
        plan_id = self.env.create_plan(payload)
        return ToolResult(
            tool=tool, ok=False, error="needs_confirmation", data={"plan_id": plan_id,
                                                                   "preview": preview},
            message=f"not moved: the safety policy requires confirmation; after the operator "
                    f"approves the preview, call confirm_plan with plan_id '{plan_id}'")

    def _require_listener(self, tool: str, kind: str) -> None:
        try:
            self.node.require_listener(kind)
        except ToolError as err:
            raise self.env.refuse(tool, err.code, err.message, "controller") from None

    def _execute(self, plan: JointPlan) -> ToolResult:
        self._require_listener(plan.tool, "trajectory")
        n = int(np.clip(np.ceil(plan.duration * 20), 5, 200))
        msg = ifc.trajectory_msg(self.names, plan.waypoints(n))
        self._abort.clear()
        before = self.node.snapshot()
        topic = self.node.publish_trajectory(msg)
        base = {"tool": plan.tool, "target": dict(zip(self.names, _r(plan.q_goal), strict=True)),
                "duration_s": round(plan.duration, 3), "topic": topic}
        if plan.notes:
            base["clipped"] = list(plan.notes)
        if self.node.dry_run:
            return ToolResult(tool=plan.tool, ok=True, data={**base, "dry_run": True},
                              message=f"dry run: {len(msg.points)}-point trajectory over "
                                      f"{plan.duration:.2f} s published to {topic}; the robot "
                                      "was not moved")
        return self._measure_motion(plan, base, before.seq if before else 0)

    def _measure_motion(self, plan: JointPlan, data: dict, seq: int) -> ToolResult:
        tol = self.env.limits.position_tolerance
        stale = self.env.limits.stale_state_timeout
        t0 = time.monotonic()
        deadline = t0 + plan.duration + float(self.node.p["settle_timeout"])
        reached, snap = False, self.node.snapshot()
        while True:
            new = self.node.wait_for_state(seq, 0.05)
            snap = new or snap
            now = time.monotonic()
            if self._abort.is_set():
                code = "estop" if self.node.estopped else "refused"
                why = "emergency stop" if self.node.estopped else "stop"
                return self._motion_result(plan, data, snap, now - t0, False, code,
                                           f"motion interrupted by {why}")
            if snap is None or snap.age() > stale:
                self.node.publish_hold()
                return self._motion_result(plan, data, snap, now - t0, False, "stale_state",
                                           f"/joint_states went silent for more than {stale} s "
                                           "during the motion; hold sent")
            seq = snap.seq
            err = np.abs(snap.q - plan.q_goal)
            if now - t0 >= plan.duration and float(err.max()) <= tol:
                reached = True
                break
            if now > deadline:
                break
        return self._motion_result(plan, data, snap, time.monotonic() - t0, reached,
                                   None if reached else "timeout", "")

    def _motion_result(self, plan: JointPlan, data: dict, snap: JointSnapshot | None,
                       elapsed: float, reached: bool, code: str | None, why: str) -> ToolResult:
        tol = self.env.limits.position_tolerance
        out = dict(data, reached=reached, elapsed_s=round(elapsed, 3))
        if snap is None:
            return ToolResult(tool=plan.tool, ok=False, error=code, data=out, message=why)
        err = np.abs(snap.q - plan.q_goal)
        worst = int(np.argmax(err))
        pos = self._fk(snap.q)[0]
        out.update(measured=dict(zip(self.names, _r(snap.q), strict=True)),
                   max_error_rad=round(float(err[worst]), 5), worst_joint=self.names[worst],
                   end_effector_position=_r(pos))
        text = (f"max joint error {err[worst]:.4f} rad ({self.names[worst]}); end effector at "
                f"{_r(pos, 3)} m")
        if plan.ee_goal is not None:
            ee_err = float(np.linalg.norm(pos - np.asarray(plan.ee_goal)))
            out["end_effector_error_m"] = round(ee_err, 4)
            text += f", {ee_err * 1000:.1f} mm from the target"
        if reached:
            msg = f"reached the target within {tol} rad in {elapsed:.2f} s: {text}"
        elif code == "timeout":
            msg = (f"did not reach the target within {tol} rad after {elapsed:.2f} s: {text} "
                   "(blocked, or the controller did not follow)")
        else:
            msg = f"{why} after {elapsed:.2f} s: {text}"
        if plan.notes:
            msg += "; clipped by the safety envelope: " + "; ".join(plan.notes)
        return ToolResult(tool=plan.tool, ok=reached, error=code, data=out, message=msg)

    # -- gripper ---------------------------------------------------------------------------
    def _tool_set_gripper(self, args: Any, confirmed: bool = False) -> ToolResult:
        tool = "set_gripper"
        if self.spec.gripper is None:
            raise self.env.refuse(tool, "unavailable", f"robot {self.spec.name} has no gripper",
                                  "gripper")
        self._state_for_motion(tool)
        g = self.spec.gripper
        requested = (g.max_width if args.action == "open" else 0.0) if args.action else args.width
        width = self.env.plan_gripper(tool, requested)
        if self.env.confirmation_required and not confirmed:
            return self._needs_confirmation(tool, {"tool": tool, "kind": "gripper",
                                                   "width": width},
                                            {"tool": tool, "gripper_width_m": width})
        with self._motion_lock:
            return self._execute_gripper(width, requested)

    def _execute_gripper(self, width: float, requested: float) -> ToolResult:
        tool = "set_gripper"
        g = self.spec.gripper
        assert g is not None
        self._require_listener(tool, "gripper")
        self._abort.clear()
        topic = self.node.publish_gripper(g.joint_positions(width))
        data: dict[str, Any] = {"target_width_m": width, "topic": topic}
        if width != requested:
            data["clipped"] = f"requested {requested} m, gripper range [0, {g.max_width}] m"
        if self.node.dry_run:
            return ToolResult(tool=tool, ok=True, data={**data, "dry_run": True},
                              message=f"dry run: gripper width {width} m published to {topic}")
        t0 = time.monotonic()
        history: list[tuple[float, float]] = []
        snap = self.node.snapshot()
        while time.monotonic() - t0 < GRIPPER_TIMEOUT:
            snap = self.node.wait_for_state(snap.seq if snap else 0, 0.05) or snap
            if self._abort.is_set():
                raise ToolError("estop" if self.node.estopped else "refused",
                                "gripper motion interrupted by "
                                + ("emergency stop" if self.node.estopped else "stop"))
            w = self.node.gripper_width(snap) if snap else None
            if w is None:
                continue
            now = time.monotonic()
            history.append((now, w))
            if abs(w - width) <= GRIPPER_TOLERANCE:
                return self._gripper_result(data, w, now - t0, reached=True)
            old = [x for t, x in history if now - t >= 0.3]
            if now - t0 > 0.5 and old and abs(old[-1] - w) < 2e-4:  # fingers stopped moving
                return self._gripper_result(data, w, now - t0, reached=False)
        w = self.node.gripper_width(snap) if snap else None
        data.update(width_m=None if w is None else round(float(w), 4))
        return ToolResult(tool=tool, ok=False, error="timeout", data=data,
                          message=f"gripper did not settle within {GRIPPER_TIMEOUT} s "
                                  f"(measured {w} m, target {width} m)")

    def _gripper_result(self, data: dict, w: float, elapsed: float, reached: bool) -> ToolResult:
        w = float(w)  # plain Python types: results are serialised to JSON
        holding = bool(not reached and w > data["target_width_m"])
        data.update(width_m=round(w, 4), reached=reached, holding_object=holding,
                    elapsed_s=round(elapsed, 3))
        if reached:
            msg = f"gripper at {w:.4f} m (target {data['target_width_m']} m) after {elapsed:.2f} s"
        else:
            msg = (f"gripper stopped at {w:.4f} m before the target {data['target_width_m']} m: "
                   + ("probably holding an object" if holding else "blocked"))
        return ToolResult(tool="set_gripper", ok=True, message=msg, data=data)

    # -- confirmation ----------------------------------------------------------------------
    def _tool_confirm_plan(self, args: Any) -> ToolResult:
        payload = self.env.take_plan(args.plan_id)
        tool = payload["tool"]
        if payload["kind"] == "gripper":
            self._state_for_motion(tool)
            with self._motion_lock:
                result = self._execute_gripper(payload["width"], payload["width"])
        else:
            snap = self._state_for_motion(tool)  # re-plan from where the arm is now
            ee = payload["ee_goal"]
            result = self._move(tool, snap, np.asarray(payload["q_goal"]), payload["duration"],
                                None if ee is None else np.asarray(ee), confirmed=True)
        result.data["plan_id"] = args.plan_id
        result.data["executed_tool"] = tool
        return result.model_copy(update={"tool": "confirm_plan"})

    # -- stop and e-stop -------------------------------------------------------------------
    def _on_estop_change(self, engaged: bool) -> None:
        """Another interface latched/released the e-stop: obey it at once."""
        self.env.audit.record("emergency_stop" if engaged else "reset_emergency_stop",
                              "allowed", f"e-stop {'latched' if engaged else 'released'} by "
                              f"another node on {self.node.p['estop_topic']}")
        if engaged:
            self._abort.set()
            self.node.publish_hold()

    def _tool_stop(self, args: Any) -> ToolResult:
        self._abort.set()
        topic = self.node.publish_hold()
        self.env.allow("stop", "hold position")
        snap = self.node.snapshot()
        data: dict[str, Any] = {"topic": topic}
        if snap is not None:
            data["measured"] = dict(zip(self.names, _r(snap.q), strict=True))
        return ToolResult(tool="stop", ok=True, data=data,
                          message=f"stopped: hold sent on {topic}; arm holds its position")

    def _tool_emergency_stop(self, args: Any) -> ToolResult:
        self.node.publish_estop(True)
        self._abort.set()
        self.node.publish_hold()
        self.env.allow("emergency_stop", f"e-stop latched: {args.reason or 'no reason given'}")
        return ToolResult(tool="emergency_stop", ok=True, data={"estop": True},
                          message=f"emergency stop latched on {self.node.p['estop_topic']} for "
                                  "every interface; arm holding; motion refused until "
                                  "reset_emergency_stop")

    def _tool_reset_emergency_stop(self, args: Any) -> ToolResult:
        was = self.node.estopped
        self.node.publish_estop(False)
        self.env.allow("reset_emergency_stop", f"e-stop released: {args.reason or 'no reason'}")
        return ToolResult(tool="reset_emergency_stop", ok=True, data={"estop": False,
                                                                      "was_latched": was},
                          message="emergency stop released; motion tools work again"
                          if was else "emergency stop was not latched; nothing changed")

    # -- sensors ---------------------------------------------------------------------------
    def _tool_get_camera_image(self, args: Any) -> ToolResult:
        return camera_image(self.node, args.width, args.height)

    def _tool_get_object_poses(self, args: Any) -> ToolResult:
        return object_poses(self.node)

    # -- policies (wired by the deploy work) ---------------------------------------------
    def _no_policies(self, tool: str) -> ToolResult:
        raise self.env.refuse(tool, "unavailable", "no policies installed", "policies")

    def _tool_list_policies(self, args: Any) -> ToolResult:
        return self._no_policies("list_policies")

    def _tool_run_policy(self, args: Any) -> ToolResult:
        return self._no_policies("run_policy")

    def _tool_stop_policy(self, args: Any) -> ToolResult:
        return self._no_policies("stop_policy")
