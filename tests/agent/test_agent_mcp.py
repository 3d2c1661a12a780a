"""`robo-agent mcp` driven by the real MCP client (mcp SDK 2.x), against a `sim_robot` process.

stdio: the client spawns `robo-agent mcp` itself. Streamable HTTP: we start the server with
a bearer token and check the token is required, and that a non-loopback bind without one is
refused. Arm motion is checked independently on /joint_states.
"""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pytest

from robo_agent.agent.session import human_release_estop
from robo_agent.core.paths import safety_dir
from robo_agent.core.tools import HUMAN_ONLY, RESULT_SCHEMA, TOOLS, args_json_schema, tool_names

pytestmark = [pytest.mark.ros, pytest.mark.slow]
TOLERANCE = 0.03
CLI = [sys.executable, "-m", "robo_agent.cli", "mcp", "--robot", "panda"]
MODEL_TOOLS = [n for n in tool_names() if n not in HUMAN_ONLY]


def _text(result: Any) -> str:
    return "\n".join(c.text for c in result.content if c.type == "text")


def test_stdio_server_lists_calls_and_reports_errors(
    sim_robot: Any, ros_env: dict[str, str], tmp_path: Path
) -> None:
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    params = StdioServerParameters(
        command=CLI[0],
        args=[*CLI[1:], "--safety", str(safety_dir() / "unattended.yaml"),
              "--audit-log", str(tmp_path / "audit.jsonl")],
        env=ros_env,
    )
    q0 = sim_robot.positions()
    target = float(q0[0] + 0.2)

    async def session() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with Client(params, read_timeout_seconds=30) as client:
            listed = (await client.list_tools()).tools
            out["tools"] = {t.name: t for t in listed}
            out["names"] = [t.name for t in listed]
            out["state"] = await client.call_tool("get_robot_state", {})
            progress: list[tuple[float, str | None]] = []

            async def on_progress(value: float, _total: float | None, msg: str | None) -> None:
                progress.append((value, msg))

            out["move"] = await client.call_tool(
                "move_joints", {"joints": {"panda_joint1": target}, "duration": 1.5},
                progress_callback=on_progress,
            )
            out["progress"] = progress
            out["q_after_move"] = sim_robot.positions()
            out["out_of_range"] = await client.call_tool(
                "move_joints", {"joints": {"panda_joint2": 5.0}}
            )
            out["nan"] = await client.call_tool("move_end_effector_relative", {"dz": "NaN"})
            out["extra"] = await client.call_tool("stop", {"force": True})
            out["missing"] = await client.call_tool("confirm_plan", {})
            out["unknown"] = await client.call_tool("teleport", {})
            out["q_after_errors"] = sim_robot.positions()
            out["image"] = await client.call_tool("get_camera_image", {"width": 64, "height": 48})
            out["estop"] = await client.call_tool("emergency_stop", {"reason": "test"})
            out["during_estop"] = await client.call_tool(
                "move_end_effector_relative", {"dz": 0.02}
            )
            out["q_during_estop"] = sim_robot.positions()
            out["reset"] = await client.call_tool("reset_emergency_stop", {"reason": "test"})
            out["after_reset"] = await client.call_tool("get_robot_state", {})
            with _operator(ros_env, tmp_path) as operator:
                assert human_release_estop(operator, "test operator").ok
                for _ in range(100):  # until the server's node heard the latched release
                    state = await client.call_tool("get_robot_state", {})
                    if state.structured_content["data"]["estop"] is False:
                        break
                    await anyio.sleep(0.05)
            out["preempt"] = await _stop_during_motion(client, sim_robot)
        return out

    out = anyio.run(session)

    # One source of truth: names, descriptions and schemas come from the registry; the
    # human-only tools (e-stop release, plan approval) are not offered to MCP clients.
    assert out["names"] == MODEL_TOOLS
    for name, tool in out["tools"].items():
        assert tool.description == TOOLS[name].description
        assert tool.input_schema == args_json_schema(name)
        assert tool.output_schema == RESULT_SCHEMA
        assert tool.annotations.destructive_hint == TOOLS[name].moves_robot

    state = out["state"]
    assert not state.is_error and state.structured_content["ok"] is True
    assert set(state.structured_content["data"]) and "panda_joint1" in _text(state)

    assert not out["move"].is_error, _text(out["move"])
    assert out["q_after_move"][0] == pytest.approx(target, abs=TOLERANCE)
    # A 1.5 s motion reports progress while it runs (every 0.5 s), strictly increasing.
    values = [v for v, _ in out["progress"]]
    assert len(values) >= 2 and values == sorted(set(values)), out["progress"]
    assert all("move_joints: running for" in (m or "") for _, m in out["progress"])

    for key, needle in [
        ("out_of_range", "panda_joint2"),
        ("nan", "dz"),
        ("extra", "force"),
        ("missing", "human act"),
        ("unknown", "teleport"),
    ]:
        result = out[key]
        assert result.is_error, key
        assert needle in _text(result), (key, _text(result))
    assert out["unknown"].structured_content["error"] == "unknown_tool"
    assert out["extra"].structured_content["error"] == "invalid_arguments"
    assert np.allclose(out["q_after_errors"], out["q_after_move"], atol=0.01)

    image = out["image"]
    assert not image.is_error, _text(image)
    (item,) = [c for c in image.content if c.type == "image"]
    assert item.mime_type == "image/png"
    assert base64.b64decode(item.data).startswith(b"\x89PNG\r\n\x1a\n")

    assert not out["estop"].is_error
    assert out["during_estop"].is_error
    assert out["during_estop"].structured_content["error"] == "estop"
    assert np.allclose(out["q_during_estop"], out["q_after_move"], atol=0.01)
    # The client cannot release the e-stop: only the person at the operator console.
    assert out["reset"].is_error and "human act" in _text(out["reset"])
    assert out["after_reset"].structured_content["data"]["estop"] is True

    # Calls run in worker threads: a stop is served while a slow motion is in progress.
    pre = out["preempt"]
    assert pre["move"].is_error and pre["move"].structured_content["data"]["reached"] is False
    assert "interrupted by stop" in _text(pre["move"])
    assert pre["stop_latency"] < 1.0, pre
    assert not pre["stop"].is_error, _text(pre["stop"])
    assert pre["move_elapsed"] < 3.0, pre  # the 4 s motion was cut short
    assert pre["q_start"] + 0.02 < pre["q_end"] < pre["target"] - 0.05, pre

    # The server's safety decisions went to the audit log we gave it.
    audit = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert all(entry["source"] == "/robo_agent_mcp" for entry in audit)
    refused = [e for e in audit if e["tool"] == "move_joints" and e["decision"] == "refused"]
    assert any("panda_joint2" in e["reason"] for e in refused)
    # So did the human acts it asked for and was refused (nothing ran, but it tried).
    human = [(e["tool"], e["details"]["channel"]) for e in audit if e["limit"] == "human_only"]
    assert human == [("confirm_plan", "MCP client"), ("reset_emergency_stop", "MCP client")]
    assert all(e["decision"] == "refused" for e in audit if e["limit"] == "human_only")


def _operator(ros_env: dict[str, str], tmp_path: Path) -> Any:
    """The human channel: an operator-side executor (it releases the latched e-stop)."""
    from robo_agent.ros.tool_executor import RosToolExecutor

    return RosToolExecutor("panda", audit_log=tmp_path / "operator.jsonl",
                           node_name="agent_test_operator",
                           domain_id=int(ros_env["ROS_DOMAIN_ID"]))


async def _stop_during_motion(client: Any, sim_robot: Any) -> dict[str, Any]:
    q_start = float(sim_robot.positions()[0])
    target = q_start + 0.6
    out: dict[str, Any] = {"q_start": q_start, "target": target}

    async def move() -> None:
        t0 = time.monotonic()
        out["move"] = await client.call_tool(
            "move_joints", {"joints": {"panda_joint1": target}, "duration": 4.0}
        )
        out["move_elapsed"] = time.monotonic() - t0

    async with anyio.create_task_group() as tg:
        tg.start_soon(move)
        await anyio.sleep(1.0)
        t0 = time.monotonic()
        out["stop"] = await client.call_tool("stop", {})
        out["stop_latency"] = time.monotonic() - t0
    await anyio.sleep(0.3)
    out["q_end"] = float(sim_robot.positions()[0])
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def http_server(
    sim_robot: Any, ros_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """`robo-agent mcp --transport http` with a bearer token and the default (attended) policy."""
    port, token = _free_port(), "s3cret-token"
    env = {**ros_env, "ROBO_AGENT_MCP_TOKEN": token}
    folder = tmp_path_factory.mktemp("mcp_http")
    with open(folder / "stderr.log", "w") as log:  # a file: a full pipe would block the server
        proc = subprocess.Popen([*CLI, "--transport", "http", "--port", str(port),
                                 "--audit-log", str(folder / "audit.jsonl")], env=env,
                                stdout=subprocess.DEVNULL, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"mcp server exited {proc.returncode}: "
                            f"{(folder / 'stderr.log').read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("mcp http server did not start listening in 30 s")
        yield f"http://127.0.0.1:{port}/mcp", token
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_http_requires_the_token_and_confirmation_flow(
    http_server: tuple[str, str], sim_robot: Any
) -> None:
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    url, token = http_server
    q0 = sim_robot.positions()
    target = float(q0[0] - 0.15)
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "t", "version": "0"}}}
    headers = {"Accept": "application/json, text/event-stream"}

    async def session() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with httpx2.AsyncClient(timeout=10) as raw:
            out["no_token"] = (await raw.post(url, json=initialize, headers=headers)).status_code
            out["bad_token"] = (await raw.post(url, json=initialize, headers={
                **headers, "Authorization": "Bearer wrong"})).status_code
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"},
                                      timeout=httpx2.Timeout(30, read=60)) as authed:
            async with Client(streamable_http_client(url, http_client=authed)) as client:
                out["names"] = [t.name for t in (await client.list_tools()).tools]
                held = await client.call_tool("move_joints", {"joints": {"panda_joint1": target}})
                out["held"] = held
                out["q_held"] = sim_robot.positions()
                out["self_confirm"] = await client.call_tool("confirm_plan", {"plan_id": "x"})
                out["q_after"] = sim_robot.positions()
        return out

    out = anyio.run(session)
    assert out["no_token"] == 401 and out["bad_token"] == 401
    assert out["names"] == MODEL_TOOLS
    # No elicitation: the preview and an instruction for the person, no replayable token.
    held = out["held"]
    assert held.is_error and held.structured_content["error"] == "needs_confirmation"
    assert set(held.structured_content["data"]) == {"preview"}
    assert "plan_id" not in _text(held) and "Tell the person" in _text(held)
    assert np.allclose(out["q_held"], q0, atol=0.01)  # held: nothing moved
    assert out["self_confirm"].is_error and "human act" in _text(out["self_confirm"])
    assert np.allclose(out["q_after"], q0, atol=0.01)


def test_http_refuses_non_loopback_bind_without_token(ros_env: dict[str, str]) -> None:
    env = {k: v for k, v in ros_env.items() if k != "ROBO_AGENT_MCP_TOKEN"}
    out = subprocess.run([*CLI, "--transport", "http", "--host", "0.0.0.0"], env=env,
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2
    assert "refusing to serve MCP on 0.0.0.0" in out.stderr and "--token" in out.stderr


def test_http_asks_the_person_through_elicitation(
    http_server: tuple[str, str], sim_robot: Any
) -> None:
    """A client with elicitation gets the approval question itself; the model never sees a
    plan id. Both eras: 2026-07-28 (InputRequiredResult, retried) and legacy (inline)."""
    import httpx2
    import mcp_types as types
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    url, token = http_server
    asked: list[str] = []

    def person(approve: bool) -> Any:
        async def answer(_ctx: Any, params: Any) -> types.ElicitResult:
            asked.append(params.message)
            return types.ElicitResult(action="accept", content={"approve": approve})
        return answer

    async def call(mode: str, approve: bool, target: float) -> Any:
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"},
                                      timeout=httpx2.Timeout(30, read=60)) as authed:
            transport = streamable_http_client(url, http_client=authed)
            async with Client(transport, mode=mode, elicitation_callback=person(approve)) as c:
                return await c.call_tool("move_joints", {"joints": {"panda_joint1": target}})

    q0 = float(sim_robot.positions()[0])
    declined = anyio.run(call, "auto", False, q0 + 0.1)
    assert declined.is_error and declined.structured_content["error"] == "refused"
    assert "declined" in _text(declined) and "plan_id" not in declined.structured_content["data"]
    assert sim_robot.positions()[0] == pytest.approx(q0, abs=0.01)

    approved = anyio.run(call, "auto", True, q0 + 0.1)
    assert not approved.is_error, _text(approved)
    assert sim_robot.settled(0, q0 + 0.1, TOLERANCE) == pytest.approx(q0 + 0.1, abs=TOLERANCE)

    legacy = anyio.run(call, "legacy", True, q0)
    assert not legacy.is_error, _text(legacy)
    assert sim_robot.settled(0, q0, TOLERANCE) == pytest.approx(q0, abs=TOLERANCE)

    assert len(asked) == 3 and all("Execute it?" in m and "move_joints" in m for m in asked)
