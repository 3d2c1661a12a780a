"""`agent` node: natural-language commands on a topic, answered by the same agent as the CLI.

Subscribes `/robo_agent/command` (std_msgs/String, plain text such as "move 5 cm up") and
publishes one JSON answer per command on `/robo_agent/reply` (std_msgs/String):

    {"command": "move 5 cm up", "ok": true, "text": "...", "results": [<ToolResult>, ...]}

With `base_url` set (or OPENAI_API_KEY in the environment) an LLM drives the tools;
otherwise the offline command grammar does. Tools run through `RosToolExecutor`, so the
safety envelope, the audit log and the latched e-stop apply exactly as for the bridge.

Commands run one at a time on a worker thread, in arrival order, except "stop" and
"emergency stop", which run at once even while a motion is in progress.

Human authority: anyone who can publish on the command topic can *propose*, not approve.
When the safety policy holds a motion for confirmation the reply says so, and only an
authenticated operator message approves it: JSON on `/robo_agent/operator`,

    {"token": "<operator_token parameter>", "action": "confirm" | "cancel" | "release_estop",
     "reason": "..."}

with the token compared in constant time. A bare "yes"/"confirm" on the command topic is
not approval (it is answered with how to approve); "cancel" there is allowed, since
cancelling is always safe. Without an `operator_token` nothing can be approved or
released over ROS. `auto_confirm:=true` (set by whoever launches the node) approves every
plan up front. The e-stop topic is a software stop, not a safety-rated one (docs/ros.md).

    python -m robo_agent.ros.agent_node --ros-args -p robot:=panda -p base_url:=http://localhost:11434/v1
"""

from __future__ import annotations

import json
import queue
import sys
import threading
from typing import Any

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import QoSDurabilityPolicy, QoSProfile, QoSReliabilityPolicy
from std_msgs.msg import String

from robo_agent.agent.grammar import GrammarError, ToolCall, parse_command
from robo_agent.agent.llm import AgentError, LLMAgent, llm_configured, make_client
from robo_agent.agent.session import (
    AgentReply,
    OfflineAgent,
    format_preview,
    human_approve,
    human_release_estop,
    summarize,
    wait_for_robot,
)
from robo_agent.core.operator import (
    OPERATOR_TOKEN_HELP,
    OPERATOR_TOKEN_PARAMETER,
    audit_log_of,
    operator_token_problem,
)
from robo_agent.core.robot_spec import RobotSpec, load_robot
from robo_agent.core.tools import ToolResult
from robo_agent.ros.node_main import run_node

COMMAND_TOPIC = "/robo_agent/command"
REPLY_TOPIC = "/robo_agent/reply"
OPERATOR_TOPIC = "/robo_agent/operator"
_IMMEDIATE = {"stop", "emergency_stop"}
_CONFIRM_WORDS = {"confirm", "yes", "y", "approve", "go ahead", "do it", "execute"}
_CANCEL_WORDS = {"cancel", "no", "n", "abort plan", "reject", "decline"}


class AgentNode(Node):
    """Answers natural-language commands through the tool executor (one at a time)."""

    def __init__(self, executor: Any | None = None) -> None:
        super().__init__("robo_agent_agent")
        self.declare_parameter("robot", "panda")
        self.declare_parameter("safety_policy", "")
        self.declare_parameter("audit_log", "")
        self.declare_parameter("dry_run", False)
        self.declare_parameter("base_url", "")
        self.declare_parameter("model", "gpt-4o-mini")
        self.declare_parameter("auto_confirm", False)
        self.declare_parameter("max_rounds", 8)
        self.declare_parameter("llm_timeout", 60.0)
        self.declare_parameter(OPERATOR_TOKEN_PARAMETER, "",
                               ParameterDescriptor(description=OPERATOR_TOKEN_HELP))
        p = self.get_parameter
        self._operator_token = str(p(OPERATOR_TOKEN_PARAMETER).value)
        self.robot: RobotSpec = load_robot(p("robot").value)
        self.auto_confirm = bool(p("auto_confirm").value)
        if int(p("max_rounds").value) < 1 or float(p("llm_timeout").value) <= 0:
            raise ValueError("parameters max_rounds must be >= 1 and llm_timeout > 0")
        if executor is None:
            from robo_agent.ros.tool_executor import RosToolExecutor

            executor = RosToolExecutor(
                robot=p("robot").value,
                safety_policy=p("safety_policy").value or None,
                audit_log=p("audit_log").value or None,
                dry_run=bool(p("dry_run").value) or None,
                node_name="robo_agent_agent_tools",
            )
        self.tools = executor
        state = wait_for_robot(executor, timeout=5.0)
        if not state.ok:
            self.get_logger().warning(f"{state.message}; motions are refused until it arrives")
        self._pending: ToolResult | None = None  # plan held for the human's answer
        self._lock = threading.Lock()
        base_url = p("base_url").value or None
        self.agent: Any
        if llm_configured(base_url):
            self.agent = LLMAgent(
                make_client(base_url, timeout=float(p("llm_timeout").value)),
                executor,
                model=p("model").value,
                robot=self.robot,
                confirm=self._hold_for_human,
                auto_confirm=self.auto_confirm,
                max_rounds=int(p("max_rounds").value),
            )
            mode = f"LLM {p('model').value} at {self.agent.base_url}"
        else:
            self.agent = OfflineAgent(
                executor, self.robot, confirm=self._hold_for_human, auto_confirm=self.auto_confirm
            )
            mode = "offline command grammar"
        reliable = QoSProfile(
            depth=10,
            reliability=QoSReliabilityPolicy.RELIABLE,
            durability=QoSDurabilityPolicy.VOLATILE,
        )
        self.reply_pub = self.create_publisher(String, REPLY_TOPIC, reliable)
        self.create_subscription(String, COMMAND_TOPIC, self._on_command, reliable)
        self.create_subscription(String, OPERATOR_TOPIC, self._on_operator, reliable)
        self._queue: queue.Queue[str | tuple[str, str, str] | None] = queue.Queue()
        self._worker = threading.Thread(target=self._work, name="agent-commands", daemon=True)
        self._worker.start()
        self.get_logger().info(f"agent for {self.robot.name} ready ({mode}); "
                               f"commands on {COMMAND_TOPIC}, replies on {REPLY_TOPIC}")

    # -- confirmation over the topic ------------------------------------------------------
    def _hold_for_human(self, result: ToolResult) -> bool:
        with self._lock:
            self._pending = result
        return False  # the human answers later with "confirm" / "cancel"

    def _answer_pending(self, text: str) -> AgentReply | None:
        """'cancel' from anyone; 'yes'/'confirm' on the command topic is never approval."""
        word = text.strip().lower().rstrip(".!")
        if word in _CONFIRM_WORDS:
            with self._lock:
                waiting = self._pending is not None
            return AgentReply(
                text=("not approved: " if waiting else "there is no plan waiting for "
                      "confirmation; ") + "only the operator approves plans, with an "
                f"authenticated message on {OPERATOR_TOPIC} (the node's operator_token)",
                understood=False)
        if word in _CANCEL_WORDS:
            return self._cancel()
        return None

    def _cancel(self) -> AgentReply:
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is None:
            return AgentReply(text="there is no plan waiting for confirmation", understood=False)
        return AgentReply(text=f"cancelled the held {pending.tool} plan; nothing moved")

    # -- the operator console: the only ROS channel with human authority ------------------
    def _operator_check(self, msg: String) -> tuple[str, str] | str:
        """(action, reason) of an authenticated operator message, or why it is refused."""
        try:
            req = json.loads(msg.data)
        except json.JSONDecodeError:
            return "refused: operator messages are JSON objects"
        if not isinstance(req, dict) or not isinstance(req.get("token"), str):
            return 'refused: expected {"token": ..., "action": ...}'
        problem = operator_token_problem(self._operator_token, req["token"])
        if problem is not None:
            return f"refused: {problem}"
        action = req.get("action")
        if action not in ("confirm", "cancel", "release_estop"):
            return "refused: action must be 'confirm', 'cancel' or 'release_estop'"
        return action, str(req.get("reason", ""))[:200]

    def _on_operator(self, msg: String) -> None:
        checked = self._operator_check(msg)
        if isinstance(checked, str):
            self.get_logger().warning(f"operator message {checked}")
            audit = audit_log_of(self.tools)
            if audit is not None:  # a failed attempt at a human act is on record
                audit.record("operator_message", "refused", checked, "operator_token",
                             code="refused", channel=OPERATOR_TOPIC)
            self._publish("operator", AgentReply(text=checked, understood=False))
            return
        action, reason = checked
        # Queued behind the running command, like any command; approval is a human act.
        self._queue.put(("operator", action, reason))

    def _operator(self, action: str, reason: str) -> AgentReply:
        if action == "cancel":
            return self._cancel()
        if action == "release_estop":
            result = human_release_estop(self.tools, reason or "operator console")
            return AgentReply(text=summarize(result), results=[result])
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is None:
            return AgentReply(text="there is no plan waiting for confirmation", understood=False)
        result = human_approve(self.tools, pending.tool, pending.data["plan_id"])
        return AgentReply(text=summarize(result), results=[result])

    # -- command handling -----------------------------------------------------------------
    def _on_command(self, msg: String) -> None:
        text = msg.data.strip()
        if not text:
            return
        immediate = self._immediate_calls(text)
        if immediate:
            # Stops never wait behind a running motion in the queue, nor for an LLM.
            results = [self.tools.call(c.name, c.arguments) for c in immediate]
            self._publish(text, AgentReply("\n".join(summarize(r) for r in results), results))
        else:
            self._queue.put(text)

    def _immediate_calls(self, text: str) -> list[ToolCall]:
        try:
            calls = parse_command(text, self.robot)
        except GrammarError:
            return []
        return calls if all(c.name in _IMMEDIATE for c in calls) else []

    def _run(self, text: str) -> AgentReply:
        reply = self._answer_pending(text)
        if reply is not None:
            return reply
        with self._lock:
            before = self._pending
        try:
            reply = self.agent.handle(text)
        except AgentError as err:
            return AgentReply(text=str(err), understood=False)
        with self._lock:
            pending = self._pending
        if pending is not None and pending is not before:
            reply.text += (
                f"\nHeld for confirmation: {format_preview(pending)}\n"
                f"The operator approves it on {OPERATOR_TOPIC} (action 'confirm'); "
                "'cancel' drops it."
            )
        return reply

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            text = item if isinstance(item, str) else f"operator:{item[1]}"
            try:
                reply = self._run(item) if isinstance(item, str) else self._operator(*item[1:])
            except Exception as err:  # keep serving; report the bug on the reply topic
                self.get_logger().error(f"command {text!r} failed: {err!r}")
                reply = AgentReply(text=f"internal error: {err!r}", understood=False)
            self._publish(text, reply)

    def _publish(self, command: str, reply: AgentReply) -> None:
        payload = {
            "command": command,
            "ok": reply.ok,
            "text": reply.text,
            "results": [json.loads(r.to_text()) for r in reply.results],
        }
        self.reply_pub.publish(String(data=json.dumps(payload)))
        self.get_logger().info(f"{command!r} -> {reply.text.splitlines()[0] if reply.text else ''}")

    def close(self) -> None:
        """Stop the worker and release the executor."""
        self._queue.put(None)
        self._worker.join(timeout=5.0)
        self.tools.close()


def main(argv: list[str] | None = None) -> int:
    """Entry point: `agent_node --ros-args -p robot:=panda -p base_url:=...`."""
    # ValueError: unknown robot, bad policy file, max_rounds < 1
    return run_node("agent_node", AgentNode, AgentNode.close, (ValueError,), argv)


if __name__ == "__main__":
    sys.exit(main())
