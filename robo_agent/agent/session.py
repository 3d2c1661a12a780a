"""What every front-end shares: human authority, the sensor check, and the offline agent.

The safety envelope may hold a motion for confirmation: the tool answers
ok=False, error="needs_confirmation", data={"plan_id", "preview"} and nothing moves.
Only a *human* may approve it (or the operator, up front, with `--yes`), never a model:
`execute_with_confirmation` asks the `confirm` callback and then approves through
`human_approve`; the plan id never goes back to the model. Releasing the e-stop and
approving plans (`HUMAN_ONLY` tools) are refused for model calls and reachable only
through `human_approve` / `human_release_estop`, which the human channels call (terminal
prompt, MCP elicitation, the authenticated ROS operator console).

`sensor_check` reads the measured state after motions, so every answer ends with what
the sensors say. `OfflineAgent` turns commands into tool calls with the offline grammar.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from robo_agent.agent.grammar import GrammarError, describe_grammar, is_help, parse_command
from robo_agent.core.operator import refuse_human_only
from robo_agent.core.robot_spec import RobotSpec
from robo_agent.core.tools import TOOLS, ToolExecutor, ToolResult

__all__ = [
    "AgentReply",
    "CommandAgent",
    "ConfirmFn",
    "OfflineAgent",
    "decline_all",
    "execute_with_confirmation",
    "format_preview",
    "human_approve",
    "human_release_estop",
    "sensor_check",
    "summarize",
    "wait_for_robot",
]

ConfirmFn = Callable[[ToolResult], bool]
"""Shown a needs_confirmation result (its data holds plan_id and preview); True approves."""


def decline_all(_result: ToolResult) -> bool:
    """A confirm callback for front-ends with no human attached: approve nothing."""
    return False


@dataclass
class AgentReply:
    """The answer to one command: text for the human and every tool result behind it."""

    text: str
    results: list[ToolResult] = field(default_factory=list)
    understood: bool = True
    sensors: str = ""  # the measured state after the motions, already part of `text`

    @property
    def ok(self) -> bool:
        """True when the command was understood and every tool call in it succeeded."""
        return self.understood and all(r.ok for r in self.results)


class CommandAgent(Protocol):
    """Anything that answers a natural-language command by calling tools."""

    def handle(self, text: str) -> AgentReply: ...


def format_preview(result: ToolResult) -> str:
    """A short human-readable description of a plan held for confirmation."""
    preview = result.data.get("preview")
    if not isinstance(preview, dict):
        return f"{result.tool}: {result.message}"
    parts: list[str] = []
    if "duration_s" in preview:
        parts.append(f"{preview['duration_s']} s")
    if "max_joint_change_rad" in preview:
        parts.append(f"largest joint change {preview['max_joint_change_rad']} rad")
    if "end_effector_goal_m" in preview:
        parts.append(f"end effector to {preview['end_effector_goal_m']} m (base frame)")
    if preview.get("clipped"):
        parts.append("clipped: " + "; ".join(str(n) for n in preview["clipped"]))
    known = {"tool", "duration_s", "max_joint_change_rad", "end_effector_goal_m", "clipped",
             "from"}
    for key, value in preview.items():
        if key not in known:
            text = json.dumps(value, default=str)
            parts.append(f"{key}: {text[:300]}{'...' if len(text) > 300 else ''}")
    return f"{preview.get('tool', result.tool)}: " + ", ".join(parts)


def execute_with_confirmation(
    executor: ToolExecutor,
    name: str,
    arguments: dict[str, Any] | str | None,
    confirm: ConfirmFn,
    auto_confirm: bool = False,
    channel: str = "model",
) -> ToolResult:
    """Call a tool; if the safety policy holds it for confirmation, ask the human.

    This is the path of a *proposed* call (a model's or the grammar's): human-only tools
    are refused here, and the refusal is audited under `channel`. Approved (or
    `auto_confirm`): the plan runs through `human_approve` and its measured result is
    returned. Declined: a failed result that says nothing moved and carries the preview
    but not the plan id, so it cannot be replayed.
    """
    refused = refuse_human_only(str(name), executor, channel=channel)
    if refused is not None:
        return refused
    result = executor.call(name, arguments)
    if result.ok or result.error != "needs_confirmation":
        return result
    plan_id = result.data.get("plan_id")
    if not isinstance(plan_id, str):
        return result
    if auto_confirm or confirm(result):
        return human_approve(executor, name, plan_id)
    return ToolResult(
        tool=name,
        ok=False,
        error="refused",
        message=f"the operator has not approved the {name} plan; nothing moved",
        data={"preview": result.data.get("preview")},
    )


def human_approve(executor: ToolExecutor, tool: str, plan_id: str) -> ToolResult:
    """A person approved the held plan `plan_id`: run it (human channels only)."""
    confirmed = executor.call("confirm_plan", {"plan_id": plan_id})
    # Report under the tool that was asked for, so replies read naturally.
    return confirmed.model_copy(update={"tool": tool})


def human_release_estop(executor: ToolExecutor, reason: str) -> ToolResult:
    """A person released the e-stop (human channels only); `reason` goes to the audit log."""
    return executor.call("reset_emergency_stop", {"reason": f"human operator: {reason}"[:500]})


def wait_for_robot(executor: ToolExecutor, timeout: float = 5.0) -> ToolResult:
    """Poll get_robot_state until the executor has a /joint_states message (or timeout).

    A freshly started executor has heard nothing yet, and every motion would be refused
    as stale; one-shot front-ends (`chat --once`, a just-started MCP server) wait here.
    Returns the last get_robot_state result (ok=False after the timeout).
    """
    deadline = time.monotonic() + timeout
    while True:
        result = executor.call("get_robot_state", {})
        if result.ok or time.monotonic() >= deadline:
            return result
        time.sleep(0.05)


def _moved(result: ToolResult) -> bool:
    spec = TOOLS.get(result.tool)
    return spec is not None and spec.moves_robot


def sensor_check(executor: ToolExecutor, results: list[ToolResult]) -> str:
    """After motions: what the sensors say now, and whether the last motion got there.

    '' when no motion tool was called. The state is read fresh from the executor (not taken
    from the tool results), so an answer can never report an intention as a fact.
    """
    motions = [r for r in results if _moved(r)]
    if not motions:
        return ""
    last = motions[-1]
    if last.ok and last.data.get("reached", True) is not False:
        how = f"last motion ({last.tool}) reached its target"
        if "max_error_rad" in last.data:
            how += f", joint error {last.data['max_error_rad']} rad"
        if "end_effector_error_m" in last.data:
            how += f", {float(last.data['end_effector_error_m']) * 1000:.1f} mm from the goal"
    else:
        how = f"last motion ({last.tool}) did not complete ({last.error}): {last.message}"
    parts = [how]
    state = executor.call("get_robot_state", {})
    if state.ok:
        ee = state.data.get("end_effector", {}).get("position")
        parts.append(f"end effector at {ee} m")
        width = state.data.get("gripper_width")
        if width is not None:
            parts.append(f"gripper {'closed' if width < 0.003 else 'open'} {width:.3f} m")
        grips = [r for r in motions if r.tool == "set_gripper" and "holding_object" in r.data]
        if grips:
            parts.append("holding an object" if grips[-1].data["holding_object"]
                         else "not holding an object")
        if state.data.get("estop"):
            parts.append("e-stop LATCHED")
    else:
        parts.append(f"could not read the robot state ({state.error}: {state.message})")
    return "Sensors: " + "; ".join(parts)


def summarize(result: ToolResult) -> str:
    """One line per result for the human: what was measured, or why it failed."""
    if result.ok:
        line = f"{result.tool}: {result.message}"
        if result.image_path:
            line += f" (image saved to {result.image_path})"
        return line
    return f"{result.tool} failed ({result.error}): {result.message}"


class OfflineAgent:
    """Answers commands with the offline grammar, no LLM: parse, then call tools in order.

    A sequence stops at the first failed call: after a refused or unfinished motion the
    later steps ("... and then close the gripper") no longer mean what the user meant.

    `human_channel=True` only where the text is typed by the person at the robot (the
    chat terminal): then "reset the emergency stop" releases it. From any other source
    (a ROS topic, an evaluation script) the human-only tools are refused.
    """

    def __init__(
        self,
        executor: ToolExecutor,
        robot: RobotSpec | None = None,
        confirm: ConfirmFn = decline_all,
        auto_confirm: bool = False,
        human_channel: bool = False,
    ) -> None:
        self.executor = executor
        self.robot = robot
        self.confirm = confirm
        self.auto_confirm = auto_confirm
        self.human_channel = human_channel

    def handle(self, text: str) -> AgentReply:
        """Parse `text` and run its tool calls; a phrase not understood changes nothing."""
        if is_help(text):
            return AgentReply(text=describe_grammar())
        try:
            calls = parse_command(text, self.robot)
        except GrammarError as err:
            return AgentReply(text=str(err), understood=False)
        results: list[ToolResult] = []
        for call in calls:
            if call.name == "reset_emergency_stop" and self.human_channel:
                result = human_release_estop(self.executor, "typed at the chat terminal")
            else:
                result = execute_with_confirmation(
                    self.executor, call.name, call.arguments, self.confirm, self.auto_confirm,
                    channel="command text (offline grammar)")
            results.append(result)
            if not result.ok:
                break
        lines = [summarize(r) for r in results]
        skipped = len(calls) - len(results)
        if skipped:
            lines.append(f"skipped the remaining {skipped} step(s) because the last one failed")
        sensors = sensor_check(self.executor, results)
        if sensors:
            lines.append(sensors)
        return AgentReply(text="\n".join(lines), results=results, sensors=sensors)
