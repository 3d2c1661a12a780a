"""Pure helpers of the agent front-ends (no ROS): plan previews for the human, summaries."""

from __future__ import annotations

from robo_agent.agent.session import AgentReply, format_preview, summarize
from robo_agent.core.tools import ToolResult


def held(preview: dict | None) -> ToolResult:
    data = {"plan_id": "abc"} | ({"preview": preview} if preview is not None else {})
    return ToolResult(tool="move_joints", ok=False, error="needs_confirmation",
                      message="held for confirmation", data=data)


def test_preview_is_short_and_names_what_matters() -> None:
    text = format_preview(held({
        "tool": "move_joints", "duration_s": 0.5, "from": {"j1": 0.0}, "to": {"j1": 0.3},
        "max_joint_change_rad": 0.3, "end_effector_goal_m": [0.3, 0.0, 0.5],
        "clipped": ["duration stretched to respect the velocity cap"],
    }))
    assert text.startswith("move_joints: 0.5 s, largest joint change 0.3 rad")
    assert "end effector to [0.3, 0.0, 0.5] m (base frame)" in text
    assert "clipped: duration stretched" in text and '"j1": 0.3' in text
    assert "from" not in text


def test_preview_without_details_falls_back_to_the_message() -> None:
    assert format_preview(held(None)) == "move_joints: held for confirmation"


def test_summaries_and_reply_status() -> None:
    ok = ToolResult(tool="stop", ok=True, message="holding", image_path="/tmp/a.png")
    bad = ToolResult(tool="move_joints", ok=False, error="estop", message="e-stop latched")
    assert summarize(ok) == "stop: holding (image saved to /tmp/a.png)"
    assert summarize(bad) == "move_joints failed (estop): e-stop latched"
    assert AgentReply("x", [ok]).ok and not AgentReply("x", [ok, bad]).ok
    assert not AgentReply("I don't understand", understood=False).ok
    assert AgentReply("just talking").ok  # an LLM answer without tool calls
