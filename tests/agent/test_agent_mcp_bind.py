"""Pure parts of the MCP server: bind policy, token check, result conversion, tool list."""

from __future__ import annotations

import anyio
import pytest

from robo_agent.agent.mcp_server import (
    BindRefused,
    StaticTokenVerifier,
    check_bind,
    is_loopback,
    list_mcp_tools,
    to_call_result,
)
from robo_agent.core.tools import HUMAN_ONLY, ToolResult, args_json_schema, tool_names


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"])
def test_loopback_hosts(host: str) -> None:
    assert is_loopback(host)
    check_bind(host, None)  # no token needed


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "robot.local", ""])
def test_other_hosts_need_a_token(host: str) -> None:
    assert not is_loopback(host)
    with pytest.raises(BindRefused, match="no bearer token"):
        check_bind(host, None)
    check_bind(host, "tok")


def test_static_token_verifier() -> None:
    verifier = StaticTokenVerifier("abc")
    assert anyio.run(verifier.verify_token, "abc") is not None
    assert anyio.run(verifier.verify_token, "abd") is None
    assert anyio.run(verifier.verify_token, "") is None
    with pytest.raises(ValueError):
        StaticTokenVerifier("")


def test_tool_list_comes_from_the_registry() -> None:
    tools = list_mcp_tools()
    assert [t.name for t in tools] == [n for n in tool_names() if n not in HUMAN_ONLY]
    assert all(t.input_schema == args_json_schema(t.name) for t in tools)
    by_name = {t.name: t for t in tools}
    assert by_name["get_robot_state"].annotations.read_only_hint is True
    assert by_name["move_joints"].annotations.destructive_hint is True


def test_results_become_mcp_results() -> None:
    ok = to_call_result(ToolResult(tool="stop", ok=True, message="holding", data={"a": 1}))
    assert not ok.is_error and ok.structured_content["data"] == {"a": 1}
    err = to_call_result(ToolResult(tool="stop", ok=False, message="nope", error="refused"))
    assert err.is_error and '"error":"refused"' in err.content[0].text
    png = b"\x89PNG\r\n\x1a\nxyz"
    img = to_call_result(ToolResult(tool="get_camera_image", ok=True, message="img",
                                    image_png=png, image_path="/tmp/x.png"))
    assert [c.type for c in img.content] == ["text", "image"]
    assert img.content[1].mime_type == "image/png"
    assert "image_png" not in img.content[0].text and "/tmp/x.png" in img.content[0].text
