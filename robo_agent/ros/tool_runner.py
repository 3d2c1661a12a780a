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
from typing import Any

import numpy as np

from robo_agent.core.audit import AuditLog
from robo_agent.core.safety import SafetyEnvelope
from robo_agent.core.safety_policy import SafetyPolicy
from robo_agent.core.tools import TOOLS, ToolError, ToolResult, validate_call
from robo_agent.kinematics import Kinematics
from robo_agent.ros.tool_gripper import GripperTools
from robo_agent.ros.tool_motion import MotionTools
from robo_agent.ros.tool_node import JointSnapshot, ToolNode
from robo_agent.ros.tool_policies import PolicyTools
from robo_agent.ros.tool_sensors import camera_image, object_poses


def _r(v: Any, n: int = 4) -> Any:
    return np.round(np.asarray(v, dtype=float), n).tolist()


class ToolRunner(MotionTools, GripperTools, PolicyTools):
    """Runs tool calls; thread-safe (one motion at a time, stop/e-stop preempt it)."""

    def __init__(self, node: ToolNode, policy: SafetyPolicy, audit: AuditLog,
                 dry_run: bool = False) -> None:
        self.node = node
        self.spec = node.spec
        self.kin = Kinematics.for_robot(self.spec)  # thread-safe: it holds its own lock
        self.env = SafetyEnvelope(self.spec, policy, audit, kinematics=self.kin)
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
        self.env.audit.close()

    # -- kinematics ------------------------------------------------------------------------
    def _fk(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.kin.ee_pose(q)

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

    # -- confirmation ----------------------------------------------------------------------
    def _tool_confirm_plan(self, args: Any) -> ToolResult:
        payload = self.env.take_plan(args.plan_id)
        tool = payload["tool"]
        if payload["kind"] == "policy":
            self._state_for_motion(tool)
            folder, spec = self._find_policy(tool, payload["name"])
            with self._motion_lock:
                result = self._run_policy(folder, spec, np.asarray(payload["goal"]),
                                          payload["duration"])
        elif payload["kind"] == "gripper":
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
