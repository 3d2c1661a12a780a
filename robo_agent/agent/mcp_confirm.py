"""Asking the human, through the MCP client, to approve a motion the safety policy holds.

When a motion tool answers `needs_confirmation` and the MCP client declared the
elicitation capability, the server asks the *person* at the client (a form with one
boolean, "approve") instead of handing the plan id to the model:

- handshake-era connections (protocol <= 2025-11-25): an inline `elicitation/create`
  request while the tool call waits;
- 2026-07-28 connections: an `InputRequiredResult` carrying the elicitation; the client
  asks the user and retries the call with the answer and our echoed `requestState`
  (the plan id; the SDK seals it).

Approved: the plan runs through `human_approve` and the measured result is returned.
Declined or dismissed: a refusal that no longer names the plan id, so the model cannot
approve it on the person's behalf. Clients without elicitation get the preview and an
instruction for the person (`without_elicitation`), never the plan id: `confirm_plan` is
a human-only tool that no MCP client can call, and a token in the result would only be
something for the model to replay.
"""

from __future__ import annotations

from typing import Any

import anyio
import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.shared.exceptions import MCPError

from robo_agent.agent.session import format_preview, human_approve
from robo_agent.core.tools import ToolExecutor, ToolResult

__all__ = [
    "APPROVE_KEY",
    "APPROVE_SCHEMA",
    "answer_from_retry",
    "confirm_with_human",
    "without_elicitation",
]

APPROVE_KEY = "approve"
APPROVE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        APPROVE_KEY: {
            "type": "boolean",
            "title": "Execute this robot motion?",
            "description": "The robot moves only if you approve.",
            "default": False,
        }
    },
    "required": [APPROVE_KEY],
}
_ELICITATION = types.ClientCapabilities(elicitation=types.ElicitationCapability())


def _question(held: ToolResult) -> str:
    return (
        "The safety policy holds this robot motion for your approval: "
        f"{format_preview(held)}. Execute it?"
    )


def _approved(answer: Any) -> bool:
    return (
        isinstance(answer, types.ElicitResult)
        and answer.action == "accept"
        and bool((answer.content or {}).get(APPROVE_KEY))
    )


async def _settle(executor: ToolExecutor, tool: str, plan_id: str, approved: bool,
                  preview: Any) -> ToolResult:
    if approved:
        return await anyio.to_thread.run_sync(human_approve, executor, tool, plan_id)
    return ToolResult(
        tool=tool,
        ok=False,
        error="refused",
        message=f"the operator declined the {tool} plan in the MCP client; nothing moved",
        data={"preview": preview},
    )


async def confirm_with_human(
    ctx: ServerRequestContext[Any], executor: ToolExecutor, held: ToolResult
) -> ToolResult | types.InputRequiredResult:
    """Ask the person about a `needs_confirmation` result, if the client can ask them."""
    plan_id = held.data.get("plan_id")
    if not isinstance(plan_id, str) or not ctx.session.check_client_capability(_ELICITATION):
        return without_elicitation(held)
    if not ctx.session.can_send_request:  # 2026-07-28: the client asks, then retries
        request = types.ElicitRequest(
            params=types.ElicitRequestFormParams(
                message=_question(held), requested_schema=APPROVE_SCHEMA
            )
        )
        return types.InputRequiredResult(
            input_requests={APPROVE_KEY: request}, request_state=plan_id
        )
    try:
        answer = await ctx.session.elicit_form(
            _question(held), APPROVE_SCHEMA, related_request_id=ctx.request_id
        )
    except MCPError:
        return without_elicitation(held)  # the client could not ask the person after all
    return await _settle(executor, held.tool, plan_id, _approved(answer),
                         held.data.get("preview"))


def without_elicitation(held: ToolResult) -> ToolResult:
    """The held plan for a client that cannot ask its user: preview + what the person does.

    No plan id: nothing in this result lets the model (or anyone reading it) approve it.
    """
    return ToolResult(
        tool=held.tool,
        ok=False,
        error="needs_confirmation",
        data={"preview": held.data.get("preview")},
        message=(
            f"not moved: the safety policy requires a person to approve this motion "
            f"({format_preview(held)}), and this MCP client cannot ask them (no elicitation "
            "support). Tell the person: approve it in an MCP client that supports "
            "elicitation, or run the motion from `robo-agent chat` at a terminal; a model "
            "cannot approve it."
        ),
    )


async def answer_from_retry(
    executor: ToolExecutor, params: types.CallToolRequestParams
) -> ToolResult | None:
    """The retried call of the 2026-07-28 flow: settle the plan with the person's answer.

    None when this call is not such a retry.
    """
    responses = params.input_responses or {}
    if APPROVE_KEY not in responses or not params.request_state:
        return None
    return await _settle(executor, params.name, params.request_state,
                         _approved(responses[APPROVE_KEY]), None)
