"""Motion tools of the `ToolRunner`: joint and end-effector moves, planned by the safety
envelope, published as trajectories and measured on /joint_states until reached."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from robo_agent.core.geometry import quat_from_rpy, quat_mul
from robo_agent.core.safety import JointPlan
from robo_agent.core.tools import ToolError, ToolResult
from robo_agent.ros import interfaces as ifc
from robo_agent.ros.tool_node import JointSnapshot


def _r(v: Any, n: int = 4) -> Any:
    return np.round(np.asarray(v, dtype=float), n).tolist()


class MotionTools:
    """move_joints, move_end_effector, move_end_effector_relative (mixed into ToolRunner,
    which provides `node`, `env`, `spec`, `names`, `_abort`, `_motion_lock` and helpers)."""

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
        sol = self.kin.ik(position, orientation, q0=snap.q)
        residual = sol.position_error
        tol = float(self.node.p["ik_tolerance"])
        if residual > tol:
            raise self.env.refuse(tool, "refused", f"pose unreachable: inverse kinematics gets "
                                  f"within {residual:.3f} m of {_r(position, 3)}, above the "
                                  f"ik_tolerance of {tol} m", "ik_tolerance", residual=residual)
        angle = sol.orientation_error
        otol = float(self.node.p["orientation_tolerance"])
        if angle > otol:
            raise self.env.refuse(tool, "refused", f"orientation unreachable at {_r(position, 3)}:"
                                  f" best is {angle:.3f} rad off, above orientation_tolerance "
                                  f"{otol} rad", "orientation_tolerance")
        return sol.q

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
