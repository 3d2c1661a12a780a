"""`RosToolExecutor`: the `ToolExecutor` used in-process by the MCP server and chat CLI.

It owns a private rclpy context and a `ToolNode` spun by an executor in a background
thread, so it can live inside any program (including one that runs its own rclpy
context) and `close()` tears everything down. Calls run in the caller's thread.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import rclpy
from rclpy.context import Context
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.parameter import Parameter

from robo_agent.core.audit import AuditLog
from robo_agent.core.safety_policy import load_policy
from robo_agent.core.tools import ToolResult
from robo_agent.ros.tool_node import ToolNode
from robo_agent.ros.tool_runner import ToolRunner


def make_runner(node: ToolNode) -> ToolRunner:
    """A ToolRunner for `node`, from its parameters (policy, audit log, dry-run)."""
    policy = load_policy(str(node.p["safety_policy"]) or None)
    audit = AuditLog(node.audit_path, source=node.get_fully_qualified_name())
    return ToolRunner(node, policy, audit, dry_run=bool(node.p["dry_run"]))


class RosToolExecutor:
    """Executes tools against the ROS graph; see `robo_agent.core.tools.ToolExecutor`.

    Args:
        robot: robot description name or YAML path.
        safety_policy: policy name in config/safety, a YAML path, or None for 'default'.
        audit_log: JSONL audit log path (None: ~/.ros/robo_agent/audit.jsonl).
        dry_run: True sends commands to the preview topics only; None/False: the policy decides.
        node_name: ROS node name.
        parameters: further ToolNode parameter overrides (topics, tolerances), by name.
        domain_id: ROS domain for the private context (None: ROS_DOMAIN_ID).
    """

    def __init__(
        self,
        robot: str = "panda",
        safety_policy: str | Path | None = None,
        audit_log: str | Path | None = None,
        dry_run: bool | None = None,
        node_name: str = "robo_agent_tools",
        parameters: dict[str, Any] | None = None,
        domain_id: int | None = None,
    ) -> None:
        overrides = {"robot": str(robot), "safety_policy": str(safety_policy or ""),
                     "audit_log": str(audit_log or ""), "dry_run": bool(dry_run)}
        overrides.update(parameters or {})
        self._context = Context()
        rclpy.init(context=self._context, domain_id=domain_id)
        self._node: ToolNode | None = None
        self._runner: ToolRunner | None = None
        try:
            self._node = ToolNode(
                node_name, context=self._context,
                parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()])
            self._runner = make_runner(self._node)
        except BaseException:
            self._teardown()
            raise
        self._executor = SingleThreadedExecutor(context=self._context)
        self._executor.add_node(self._node)
        self._thread = threading.Thread(target=self._spin, name=f"{node_name}_spin", daemon=True)
        self._thread.start()
        self._closed = False

    def _spin(self) -> None:
        try:
            self._executor.spin()
        except ExternalShutdownException:
            pass

    @property
    def node(self) -> ToolNode:
        assert self._node is not None
        return self._node

    @property
    def runner(self) -> ToolRunner:
        assert self._runner is not None
        return self._runner

    @property
    def audit(self) -> AuditLog:
        """The JSONL audit log of this executor's decisions."""
        return self.runner.env.audit

    def call(self, name: str, arguments: dict[str, Any] | str | None = None) -> ToolResult:
        """Run one tool; never raises for tool-level problems."""
        if self._closed:
            raise RuntimeError("RosToolExecutor is closed")
        return self.runner.call(name, arguments)

    def _teardown(self) -> None:
        if self._runner is not None:
            self._runner.close()
        if self._node is not None:
            self._node.destroy_node()
        rclpy.try_shutdown(context=self._context)

    def close(self) -> None:
        """Stop the spin thread, destroy the node and shut the private context down."""
        if getattr(self, "_closed", True):
            return
        self._closed = True
        self._executor.shutdown(timeout_sec=2.0)
        self._thread.join(timeout=2.0)
        self._teardown()

    def __enter__(self) -> RosToolExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
