"""`arm_bridge`: one long-lived node that executes robo_agent tools for the ROS graph.

Other nodes call tools by publishing JSON on `/robo_agent/tool_call` (std_msgs/String):

    {"id": "42", "tool": "move_joints", "arguments": {"joints": {"panda_joint1": 0.3}}}

and read the answer on `/robo_agent/tool_result` (std_msgs/String):

    {"id": "42", "tool": "move_joints", "ok": true, "message": "reached ...", "data": {...}}

Motion tools run one at a time in order; `stop`, `emergency_stop`, `reset_emergency_stop`
and the read-only tools run on a separate worker so they are never queued behind a motion.

Human authority: the human-only tools (`reset_emergency_stop`, `confirm_plan`) run only
for a request that carries the node's `operator_token` parameter as `"token"` (the same
parameter and check as the agent node's operator topic, `robo_agent.core.operator`):

    {"id": "7", "tool": "reset_emergency_stop", "arguments": {...}, "token": "<operator_token>"}

Without it (or with a wrong one, or when the node has no token) the call is refused,
nothing changes, and the refusal is written to the audit log.

    python -m robo_agent.ros.arm_bridge --ros-args -p robot:=panda -p safety_policy:=unattended
"""

from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from rcl_interfaces.msg import ParameterDescriptor
from std_msgs.msg import String

from robo_agent.core.operator import (
    OPERATOR_TOKEN_HELP,
    OPERATOR_TOKEN_PARAMETER,
    operator_token_problem,
)
from robo_agent.core.robot_spec import RobotSpecError
from robo_agent.core.safety_policy import SafetyPolicyError
from robo_agent.core.tools import HUMAN_ONLY, TOOLS, ToolError, ToolResult
from robo_agent.ros import interfaces as ifc
from robo_agent.ros.node_main import run_node
from robo_agent.ros.tool_executor import make_runner
from robo_agent.ros.tool_node import ToolNode

BRIDGE_PARAMETERS: dict[str, tuple[object, str]] = {
    "tool_call_topic": (ifc.TOOL_CALL_TOPIC, "std_msgs/String JSON tool requests"),
    "tool_result_topic": (ifc.TOOL_RESULT_TOPIC, "std_msgs/String JSON tool results"),
    OPERATOR_TOKEN_PARAMETER: ("", OPERATOR_TOKEN_HELP),
}


class ArmBridge(ToolNode):
    """ToolNode plus the JSON request/response topic pair."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("arm_bridge", **kwargs)
        for name, (default, text) in BRIDGE_PARAMETERS.items():
            self.declare_parameter(name, default, ParameterDescriptor(description=text))
            self.p[name] = self.get_parameter(name).value
        self.runner = make_runner(self)
        self._motion_worker = ThreadPoolExecutor(1, thread_name_prefix="bridge_motion")
        self._other_worker = ThreadPoolExecutor(2, thread_name_prefix="bridge_tools")
        self.pub_result = self.create_publisher(String, str(self.p["tool_result_topic"]),
                                                ifc.COMMANDS)
        self.create_subscription(String, str(self.p["tool_call_topic"]), self._on_call,
                                 ifc.COMMANDS)
        self.get_logger().info(
            f"arm_bridge: {self.spec.name}; commands to {self.trajectory_topic}"
            f"{' (DRY RUN: preview topics only)' if self.dry_run else ''}; tools on "
            f"{self.p['tool_call_topic']} -> {self.p['tool_result_topic']}; audit log "
            f"{self.audit_path}")

    def _on_call(self, msg: String) -> None:
        try:
            req = json.loads(msg.data)
            if not isinstance(req, dict) or not isinstance(req.get("tool"), str):
                raise ValueError('expected {"id": ..., "tool": "<name>", "arguments": {...}}')
        except ValueError as err:
            self.runner.env.refuse("<malformed>", "invalid_arguments", str(err), "request")
            result = ToolResult.failure("", ToolError("invalid_arguments",
                                                      f"malformed tool call: {err}"))
            self._publish(None, result)
            return
        if req["tool"] in HUMAN_ONLY and not self._operator_allows(req):
            return
        spec = TOOLS.get(req["tool"])
        worker = self._motion_worker if spec is not None and spec.moves_robot \
            else self._other_worker
        worker.submit(self._run, req.get("id"), req["tool"], req.get("arguments"))

    def _operator_allows(self, req: dict[str, Any]) -> bool:
        """A human-only call: True with the operator token; else refused, audited, answered."""
        tool, topic = req["tool"], str(self.p["tool_call_topic"])
        problem = operator_token_problem(str(self.p[OPERATOR_TOKEN_PARAMETER]), req.get("token"))
        if problem is None:
            self.runner.env.allow(tool, f"operator token verified on {topic}", channel=topic)
            return True
        reason = (f"{tool} is a human act: on {topic} it needs the operator console's token "
                  f"({problem}); nothing changed")
        self.runner.env.refuse(tool, "refused", reason, OPERATOR_TOKEN_PARAMETER, channel=topic)
        self.get_logger().warning(reason)
        self._publish(req.get("id"), ToolResult(tool=tool, ok=False, error="refused",
                                                message=reason))
        return False

    def _run(self, call_id: Any, tool: str, arguments: Any) -> None:
        try:
            result = self.runner.call(tool, arguments)
            text = result.to_text()
        except Exception as err:  # a programming error: report it rather than go silent
            self.get_logger().error(f"tool {tool} crashed: {type(err).__name__}: {err}")
            result = ToolResult(tool=tool, ok=False, error="unavailable",
                                message=f"internal error: {type(err).__name__}: {err}")
            text = result.to_text()
        self._publish_text(call_id, text)

    def _publish_text(self, call_id: Any, text: str) -> None:
        payload = {"id": call_id, **json.loads(text)}
        self.pub_result.publish(String(data=json.dumps(payload, separators=(",", ":"))))

    def _publish(self, call_id: Any, result: ToolResult) -> None:
        self._publish_text(call_id, result.to_text())

    def shutdown(self) -> None:
        self._motion_worker.shutdown(wait=False, cancel_futures=True)
        self._other_worker.shutdown(wait=False, cancel_futures=True)
        self.runner.close()


def main(args: list[str] | None = None) -> int:
    """Entry point for `arm_bridge` / `python -m robo_agent.ros.arm_bridge --ros-args ...`."""
    return run_node(
        "arm_bridge",
        ArmBridge,
        ArmBridge.shutdown,
        (RobotSpecError, SafetyPolicyError, ValueError),
        args,
    )


if __name__ == "__main__":
    sys.exit(main())
