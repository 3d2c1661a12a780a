"""Gripper tool of the `ToolRunner`: set_gripper, measured until the fingers settle."""

from __future__ import annotations

import time
from typing import Any

from robo_agent.core.tools import ToolError, ToolResult

GRIPPER_TOLERANCE = 0.002  # m
GRIPPER_TIMEOUT = 3.0  # s


class GripperTools:
    """set_gripper (mixed into ToolRunner, which provides
    `node`, `env`, `spec`, `names`, `_abort`, `_motion_lock` and the shared helpers)."""

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
