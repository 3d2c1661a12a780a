"""Human authority: human-only tools are refused (and audited) for anyone but a person.

`refuse_human_only` is what a model, an MCP client or an unauthenticated ROS publisher
gets for a `HUMAN_ONLY` tool; the refusal goes to the executor's audit log.

Releasing the e-stop and approving a held plan are human acts (`HUMAN_ONLY` tools). On ROS
the only proof that a person is behind a message is the shared secret in the node's
`operator_token` parameter, carried as `"token"` in the message: the agent node's operator
topic (`/robo_agent/operator`) and arm_bridge's JSON tool topic (`/robo_agent/tool_call`)
check it with this one function. The token travels in clear text over DDS: it keeps
models, scripts and stray publishers out, not someone who can read the graph (SROS 2).
"""

from __future__ import annotations

import hmac
from typing import Any

from robo_agent.core.audit import AuditLog
from robo_agent.core.tools import HUMAN_ONLY, ToolExecutor, ToolResult

__all__ = ["OPERATOR_TOKEN_HELP", "OPERATOR_TOKEN_PARAMETER", "ModelToolGate", "audit_log_of",
           "operator_token_problem", "refuse_human_only"]

OPERATOR_TOKEN_PARAMETER = "operator_token"
OPERATOR_TOKEN_HELP = (
    "shared secret of the operator console: a message carrying it as \"token\" may release "
    "the e-stop or approve a plan; '' (default): nothing can be released or approved over ROS")


def operator_token_problem(expected: str, given: object) -> str | None:
    """None when `given` is the configured operator token, else why it is refused.

    The comparison takes constant time; an empty configured token never matches.
    """
    if not expected:
        return (f"this node has no {OPERATOR_TOKEN_PARAMETER} parameter, so nothing can be "
                "approved or released over ROS")
    if not isinstance(given, str) or not given:
        return "no operator token (a human act needs the operator console's token)"
    if not hmac.compare_digest(given.encode(), expected.encode()):
        return "wrong operator token"
    return None


def audit_log_of(executor: object) -> AuditLog | None:
    """The audit log behind `executor` (its `audit`), looking through wrappers' `inner`."""
    for _ in range(8):
        audit = getattr(executor, "audit", None)
        if isinstance(audit, AuditLog):
            return audit
        executor = getattr(executor, "inner", None)
        if executor is None:
            return None
    return None


def refuse_human_only(name: str, executor: object = None,
                      channel: str = "model") -> ToolResult | None:
    """The refusal a model gets for a human-only tool, or None for any other tool.

    With `executor` the refusal is also written to its audit log (limit 'human_only',
    details: the `channel` that asked), so an attempt is on record even though nothing ran.
    """
    if name not in HUMAN_ONLY:
        return None
    act = "release the emergency stop" if name == "reset_emergency_stop" else "approve a plan"
    message = (f"{name} is a human act: only the person operating the robot can {act} "
               "(terminal prompt, MCP approval form, or the authenticated operator console); "
               "nothing changed")
    audit = audit_log_of(executor) if executor is not None else None
    if audit is not None:
        audit.record(name, "refused", message, "human_only", code="refused", channel=channel)
    return ToolResult(tool=name, ok=False, error="refused", message=message)


class ModelToolGate:
    """The executor a model talks to: every tool except the human-only ones.

    The human channels (terminal prompt, MCP elicitation, ROS operator console) call the
    wrapped executor, `inner`, directly; nothing a model sends reaches it for those tools.
    """

    def __init__(self, inner: ToolExecutor) -> None:
        self.inner = inner

    def call(self, name: str, arguments: dict[str, Any] | str | None) -> ToolResult:
        refused = refuse_human_only(str(name), self.inner)
        return refused if refused is not None else self.inner.call(name, arguments)

    def close(self) -> None:
        self.inner.close()
