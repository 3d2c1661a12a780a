"""Agent-interface overhead and the command evaluation suite, in one run against `sim_robot`.

    python bench/agent.py [--calls 300] [--commands 40] [--no-eval]

Prints, for `get_robot_state` (no motion, so only interface cost is measured):
- latency of a direct `RosToolExecutor.call` (in-process reference),
- latency through the MCP server over stdio (real MCP client, spawned `robo-agent mcp`),
  and the ratio MCP / direct;
- one chat command through `LLMAgent` with the real `openai` client against a scripted
  OpenAI-compatible server on loopback (2 requests: one tool call, one final answer);
- offline grammar parse time per command;
- the agent's own overhead per tool step, excluding the LLM and the tool itself
  (`LLMAgent.handle` wall time minus time inside LLM requests minus time inside the
  model's tool calls, per tool call; the post-motion sensor check counts as overhead),
  for a read-only step and for a 1 cm motion, as a ratio to the direct call;
- `eval-commands` success for the offline grammar and for a scripted model (a
  grammar-backed OpenAI-compatible server: it measures the LLM loop's plumbing and
  checks, not language understanding).
Writes docs/benchmarks/detail/agent.json (with the git commit) and a record,
docs/benchmarks/agent-<UTC time>.json (bench/record.py: summary rows agent 1-3). It reuses
the scripted LLM server and the /joint_states probe of tests/agent/conftest.py.
"""

from __future__ import annotations

import argparse
import json
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
from record import write_record  # bench/record.py (the script's folder is on sys.path)


def stats(samples_s: list[float]) -> dict[str, float]:
    ms = np.array(samples_s) * 1e3
    return {"p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99)),
            "mean": float(ms.mean()), "n": len(ms)}


def row(name: str, s: dict[str, float]) -> str:
    return f"| {name} | {s['n']} | {s['p50']:.3f} | {s['p99']:.3f} | {s['mean']:.3f} |"


class Timed:
    """An executor proxy that records the time spent inside each call."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.calls: list[tuple[str, float]] = []

    def call(self, name: str, arguments: object = None) -> object:
        t0 = time.perf_counter()
        try:
            return self.inner.call(name, arguments)  # type: ignore[attr-defined]
        finally:
            self.calls.append((name, time.perf_counter() - t0))

    def close(self) -> None:
        pass


def step_overhead(llm: ScriptedLLM, executor: object, panda: object, tool: str,
                  arguments: dict, n: int) -> list[float]:
    """Per tool step: handle() time - LLM request time - time in the model's tool calls."""
    from robo_agent.agent.llm import LLMAgent, make_client

    class Measured(LLMAgent):
        llm_time = 0.0

        def _complete(self, messages: list) -> object:
            t0 = time.perf_counter()
            try:
                return super()._complete(messages)
            finally:
                Measured.llm_time += time.perf_counter() - t0

    timed = Timed(executor)
    agent = Measured(make_client(llm.url, max_retries=0), timed, model="scripted", robot=panda)
    out = []
    for i in range(n):
        args = dict(arguments)
        if "dz" in args:  # alternate up and down so the arm stays in place
            args["dz"] = args["dz"] * (1 if i % 2 == 0 else -1)
        llm.script = [{"tool_calls": [(tool, args)]}, {"content": "ok"}]
        timed.calls.clear()
        Measured.llm_time = 0.0
        t0 = time.perf_counter()
        reply = agent.handle("do it")
        total = time.perf_counter() - t0
        assert reply.results and reply.results[0].ok, reply.text
        in_tool = timed.calls[0][1]  # the model's call; later ones are the sensor check
        out.append(total - Measured.llm_time - in_tool)
        agent._turns.clear()
    return out


def grammar_model(panda: object) -> object:
    """A scripted model step: the offline grammar as its 'understanding'."""
    from robo_agent.agent.grammar import GrammarError, describe_grammar, is_help, parse_command

    def step(request: dict) -> dict:
        msgs = request["messages"]
        if msgs[-1]["role"] == "user":
            text = msgs[-1]["content"]
            if is_help(text):
                return {"content": describe_grammar()}
            try:
                calls = parse_command(text, panda)
            except GrammarError as err:
                return {"content": str(err).splitlines()[0]}
            return {"tool_calls": [(c.name, c.arguments) for c in calls]}
        last_user = max(i for i, m in enumerate(msgs) if m["role"] == "user")
        told = [json.loads(m["content"]) for m in msgs[last_user:] if m["role"] == "tool"]
        return {"content": "; ".join(t["message"] for t in told)}
    return step


def run_eval(executor: object, panda: object, llm_url: str | None) -> dict:
    from robo_agent.agent.eval_suite import public, run_suite
    from robo_agent.agent.llm import LLMAgent, make_client
    from robo_agent.agent.session import OfflineAgent

    if llm_url is None:
        agent = OfflineAgent(executor, panda)
        claims = lambda r: "I don't understand" not in r.text  # noqa: E731
    else:
        agent = LLMAgent(make_client(llm_url, max_retries=0), executor, model="scripted",
                         robot=panda)
        claims = lambda _r: True  # noqa: E731
    t0 = time.perf_counter()
    result = run_suite(agent, executor, panda, claims)
    out = public(result)
    out["wall_s"] = round(time.perf_counter() - t0, 1)
    return out


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--commands", type=int, default=40)
    ap.add_argument("--no-eval", action="store_true", help="skip the evaluation suite")
    args = ap.parse_args()
    load_before = os.getloadavg()

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
            results["agent overhead per tool step, read-only (excl. LLM and tool)"] = stats(
                step_overhead(llm, executor, panda, "get_robot_state", {}, args.commands))
            results["agent overhead per tool step, 1 cm motion (excl. LLM and tool)"] = stats(
                step_overhead(llm, executor, panda, "move_end_effector_relative",
                              {"dz": 0.01}, args.commands))
        finally:
            llm.close()
        executor.close()

        evals: dict[str, dict] = {}
        if not args.no_eval:
            from robo_agent.agent.eval_cli import eval_policy
            from robo_agent.ros.eval_scene import InjectedObject

            scene = InjectedObject(int(os.environ["ROS_DOMAIN_ID"]))
            ev = RosToolExecutor("panda", safety_policy=eval_policy(tmp),
                                 audit_log=tmp / "eval.jsonl", node_name="bench_eval",
                                 parameters={"image_dir": str(tmp / "images")})
            llm = ScriptedLLM()
            try:
                assert wait_for_robot(ev).ok
                evals["offline grammar"] = run_eval(ev, panda, None)
                llm.script = [grammar_model(panda)] * 10_000
                evals["scripted model (grammar-backed, LLM loop)"] = run_eval(ev, panda, llm.url)
            finally:
                llm.close()
                ev.close()
                scene.close()

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
    for key in ("read-only", "1 cm motion"):
        name = f"agent overhead per tool step, {key} (excl. LLM and tool)"
        o = results[name]
        print(f"agent overhead per tool step ({key}): p99 {o['p99']:.3f} ms "
              f"(goal <= 10 ms), {o['p99'] / ref['p99']:.1f}x the direct call's p99")
    for name, ev in evals.items():
        cats: dict[str, list[bool]] = {}
        for r in ev["commands"]:
            cats.setdefault(r["category"], []).append(r["passed"])
        per = ", ".join(f"{c} {sum(v)}/{len(v)}" for c, v in cats.items())
        print(f"eval-commands, {name}: success {ev['success']:.1%}, claimed_success "
              f"{ev['claimed_success']:.1%} of {len(ev['commands'])} ({per}); {ev['wall_s']} s")
    record = {"bench": "agent", "commit": git_commit(), "time": time.strftime(
        "%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": "shared 2-core CPU, no GPU",
        "command": "python bench/agent.py " + " ".join(sys.argv[1:]),
        "latency_ms": results, "eval": evals}
    out = Path(__file__).resolve().parents[1] / "docs" / "benchmarks" / "detail" / "agent.json"
    out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {out}")
    figures, rows = summary_figures(results, evals)
    print(f"wrote {write_record('agent', figures, rows, load_before=load_before)}")
    return 0


def summary_figures(results: dict[str, dict[str, float]],
                    evals: dict[str, dict]) -> tuple[dict[str, float | int], list[dict]]:
    """The record's figures and the summary rows they supply (agent 1-3)."""
    direct = results["direct RosToolExecutor.call"]
    mcp = results["MCP stdio call_tool (client->server->executor)"]
    ro = results["agent overhead per tool step, read-only (excl. LLM and tool)"]["p99"]
    motion = results["agent overhead per tool step, 1 cm motion (excl. LLM and tool)"]["p99"]
    figures: dict[str, float | int] = {
        "direct_p50_ms": round(direct["p50"], 3), "mcp_p50_ms": round(mcp["p50"], 3),
        "mcp_p99_ms": round(mcp["p99"], 3), "mcp_ratio": round(mcp["p50"] / direct["p50"], 1),
        "chat_p50_ms": round(
            results["chat command, LLM tool loop (2 requests + 1 tool)"]["p50"], 2),
        "step_ro_p99_ms": round(ro, 3), "step_motion_p99_ms": round(motion, 3),
        "step_p99_max_ms": round(max(ro, motion), 3)}
    rows = [
        {"id": "agent 1", "goal": "MCP (stdio) and chat-loop overhead per call",
         "measured": "MCP p50 {mcp_p50_ms:.2f} ms / p99 {mcp_p99_ms:.2f} ms ({mcp_ratio}× a "
                     "direct call); one chat command {chat_p50_ms:.1f} ms p50 with an instant "
                     "scripted model"},
        {"id": "agent 2", "goal": "agent overhead per tool step excluding the LLM, p99 ≤ 10 ms",
         "measured": "p99 **{step_ro_p99_ms} ms** read-only, **{step_motion_p99_ms} ms** with "
                     "a motion (incl. the sensor check); MCP stdio p50 {mcp_p50_ms} ms "
                     "({mcp_ratio}× a direct call)",
         "check": ["step_p99_max_ms", "<=", 10.0]}]
    for key, name in (("offline", "offline grammar"),
                      ("scripted", "scripted model (grammar-backed, LLM loop)")):
        if name in evals:
            ev = evals[name]
            figures.update({f"{key}_commands": len(ev["commands"]),
                            f"{key}_success": ev["success"],
                            f"{key}_claimed": ev["claimed_success"]})
    if "offline_claimed" in figures and "scripted_success" in figures:
        rows.append({
            "id": "agent 3",
            "goal": "`eval-commands`: the offline grammar's claimed set reaches 100 %",
            "measured": "{offline_commands} commands: offline grammar {offline_success:.1%} "
                        "success, **{offline_claimed:.0%} of claimed**; scripted model "
                        "{scripted_success:.1%}",
            "check": ["offline_claimed", ">=", 1.0]})
    return figures, rows


if __name__ == "__main__":
    sys.exit(main())
