"""Agent-interface overhead, measured in one run against a `sim_robot` process.

    python bench/agent.py [--calls 300] [--commands 40]

Prints, for `get_robot_state` (no motion, so only interface cost is measured):
- latency of a direct `RosToolExecutor.call` (in-process reference),
- latency through the MCP server over stdio (real MCP client, spawned `robo-agent mcp`),
  and the ratio MCP / direct;
- one chat command through `LLMAgent` with the real `openai` client against a scripted
  OpenAI-compatible server on loopback (2 requests: one tool call, one final answer);
- offline grammar parse time per command.
It reuses the scripted LLM server and the /joint_states probe of tests/agent/conftest.py.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "agent"))
from conftest import JointStateProbe, ScriptedLLM


def stats(samples_s: list[float]) -> dict[str, float]:
    ms = np.array(samples_s) * 1e3
    return {"p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99)),
            "mean": float(ms.mean()), "n": len(ms)}


def row(name: str, s: dict[str, float]) -> str:
    return f"| {name} | {s['n']} | {s['p50']:.3f} | {s['p99']:.3f} | {s['mean']:.3f} |"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--commands", type=int, default=40)
    args = ap.parse_args()

    os.environ["ROS_DOMAIN_ID"] = str(random.randint(101, 200))
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    for key in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        os.environ.pop(key, None)
    tmp = Path(tempfile.mkdtemp(prefix="bench_agent_"))

    from robo_agent.agent.grammar import EXAMPLES, parse_command
    from robo_agent.agent.llm import LLMAgent, make_client
    from robo_agent.agent.session import wait_for_robot
    from robo_agent.core.robot_spec import load_robot
    from robo_agent.ros.tool_executor import RosToolExecutor

    panda = load_robot("panda")
    sim = subprocess.Popen([sys.executable, "-m", "robo_agent.ros.sim_robot", "--ros-args",
                            "-p", "robot:=panda"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    probe = JointStateProbe(panda.joint_names, int(os.environ["ROS_DOMAIN_ID"]))
    results: dict[str, dict[str, float]] = {}
    try:
        probe.positions()
        executor = RosToolExecutor("panda", safety_policy="unattended",
                                   audit_log=tmp / "direct.jsonl", node_name="bench_direct")
        assert wait_for_robot(executor).ok
        direct = []
        for _ in range(args.calls):
            t0 = time.perf_counter()
            result = executor.call("get_robot_state", {})
            direct.append(time.perf_counter() - t0)
            assert result.ok, result.message
        results["direct RosToolExecutor.call"] = stats(direct)

        from mcp import Client
        from mcp.client.stdio import StdioServerParameters

        params = StdioServerParameters(
            command=sys.executable,
            args=["-m", "robo_agent.cli", "mcp", "--safety", "unattended",
                  "--audit-log", str(tmp / "mcp.jsonl")],
            env=dict(os.environ),
        )

        async def over_mcp() -> list[float]:
            out = []
            async with Client(params, read_timeout_seconds=30) as client:
                await client.call_tool("get_robot_state", {})  # warm-up
                for _ in range(args.calls):
                    t0 = time.perf_counter()
                    r = await client.call_tool("get_robot_state", {})
                    out.append(time.perf_counter() - t0)
                    assert not r.is_error
            return out

        results["MCP stdio call_tool (client->server->executor)"] = stats(anyio.run(over_mcp))

        llm = ScriptedLLM()
        try:
            agent = LLMAgent(make_client(llm.url, max_retries=0), executor, model="scripted",
                             robot=panda)
            per_command = []
            for _ in range(args.commands):
                llm.script = [{"tool_calls": [("get_robot_state", {})]}, {"content": "ok"}]
                t0 = time.perf_counter()
                reply = agent.handle("what is the state?")
                per_command.append(time.perf_counter() - t0)
                assert reply.ok and reply.text == "ok"
                agent._turns.clear()  # same prompt size every command
            results["chat command, LLM tool loop (2 requests + 1 tool)"] = stats(per_command)
        finally:
            llm.close()
        executor.close()

        parse = []
        for _ in range(20):
            for text in EXAMPLES:
                if "/" in text:
                    continue
                t0 = time.perf_counter()
                parse_command(text, panda)
                parse.append(time.perf_counter() - t0)
        results["offline grammar parse_command"] = stats(parse)
    finally:
        probe.close()
        sim.send_signal(signal.SIGINT)
        sim.wait(timeout=10)

    print("| path | n | p50 ms | p99 ms | mean ms |")
    print("|---|---|---|---|---|")
    for name, s in results.items():
        print(row(name, s))
    ref = results["direct RosToolExecutor.call"]
    mcp = results["MCP stdio call_tool (client->server->executor)"]
    print(f"\nMCP / direct p50 ratio: {mcp['p50'] / ref['p50']:.1f}x; "
          f"MCP overhead p50: {mcp['p50'] - ref['p50']:.3f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
