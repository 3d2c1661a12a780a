"""`robo-agent mcp`, `chat` and `eval-commands`: the agent-facing commands.

Heavy imports (rclpy, mcp, openai) happen inside the handlers so `robo-agent --help`
stays fast and works without the optional extras.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from typing import Any

TOKEN_ENV = "ROBO_AGENT_MCP_TOKEN"


def _positive(kind: type) -> Any:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    return parse


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port (1-65535): {text!r}")
    return int(text)


def _add_executor_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--robot", default="panda", help="robot description name or YAML path")
    p.add_argument("--safety", metavar="FILE", help="safety policy YAML (default: config/safety)")
    p.add_argument("--audit-log", metavar="FILE", help="JSONL audit log of safety decisions")
    p.add_argument("--policies", metavar="DIR", default="",
                   help="policy artifact folder for run_policy (~/.ros/robo_agent/policies)")
    p.add_argument(
        "--dry-run",
        action="store_true",
        default=None,
        help="send commands to the preview topic, never to the controllers",
    )
    p.add_argument(
        "--wait",
        type=_positive(float),
        default=5.0,
        metavar="S",
        help="seconds to wait at start for the robot's /joint_states (5)",
    )


def _make_executor(args: argparse.Namespace) -> Any:
    """The ROS executor: talks to /joint_states and the controller topics of the robot."""
    try:
        from robo_agent.ros.tool_executor import RosToolExecutor
    except ImportError as err:
        raise SystemExit(
            f"robo-agent: the ROS tool executor is unavailable ({err}); install the 'ros' extra "
            "or source a ROS 2 installation"
        ) from None
    from robo_agent.agent.session import wait_for_robot
    from robo_agent.core.safety_policy import SafetyPolicyError

    try:
        executor = RosToolExecutor(
            robot=args.robot,
            safety_policy=args.safety,
            audit_log=args.audit_log,
            dry_run=args.dry_run,
            node_name=args.node_name,
            parameters={"policies": str(args.policies or "")},
        )
    except SafetyPolicyError as err:
        print(f"robo-agent {args.command}: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    state = wait_for_robot(executor, timeout=args.wait)
    if not state.ok:
        print(
            f"robo-agent {args.command}: warning: {state.message}. Is the robot (or sim_robot) "
            "running, on this ROS_DOMAIN_ID? Motions are refused until its state arrives.",
            file=sys.stderr,
        )
    return executor


# --- mcp -------------------------------------------------------------------------------------


def _cmd_mcp(args: argparse.Namespace) -> int:
    import anyio

    from robo_agent.agent.mcp_server import BindRefused, build_server, check_bind, serve_http
    from robo_agent.core.robot_spec import load_robot

    token = args.token or os.environ.get(TOKEN_ENV) or None
    if args.transport == "http":
        try:  # refuse before touching ROS, so a bad bind changes nothing
            check_bind(args.host, token)
        except BindRefused as err:
            print(f"robo-agent mcp: {err}", file=sys.stderr)
            return 2
    elif token and args.token:
        print("robo-agent mcp: --token applies to --transport http only", file=sys.stderr)
        return 2
    load_robot(args.robot)  # a clear error for an unknown robot before ROS starts
    executor = _make_executor(args)
    try:
        server = build_server(executor, robot=args.robot)
        if args.transport == "stdio":
            from robo_agent.agent.mcp_server import serve_stdio

            anyio.run(serve_stdio, server)
        else:
            anyio.run(lambda: serve_http(server, args.host, args.port, token))
    finally:
        executor.close()
    return 0


# --- chat ------------------------------------------------------------------------------------


def _ask_human(result: Any) -> bool:
    from robo_agent.agent.session import format_preview

    print(f"\nThe safety policy holds this motion for confirmation:\n  {format_preview(result)}")
    if not sys.stdin.isatty():
        print("no terminal to ask on; not executing (pass --yes for unattended use)")
        return False
    try:
        answer = input("Execute it? [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def _cmd_chat(args: argparse.Namespace) -> int:
    from robo_agent.agent.llm import AgentError, LLMAgent, llm_configured, make_client
    from robo_agent.agent.session import OfflineAgent
    from robo_agent.core.robot_spec import load_robot

    robot = load_robot(args.robot)
    use_llm = not args.offline and llm_configured(args.base_url)
    executor = _Interruptible(_make_executor(args))
    try:
        if use_llm:
            agent: Any = LLMAgent(
                make_client(args.base_url, timeout=args.timeout),
                executor,
                model=args.model,
                robot=robot,
                confirm=_ask_human,
                auto_confirm=args.yes,
                max_rounds=args.max_rounds,
                temperature=args.temperature,
            )
            mode = f"LLM {args.model} at {agent.base_url}"
        else:
            # The person types at this terminal: "reset the emergency stop" is theirs to say.
            agent = OfflineAgent(executor, robot, confirm=_ask_human, auto_confirm=args.yes,
                                 human_channel=True)
            mode = "offline command grammar (no --base-url and no OPENAI_API_KEY)"
        if args.once is not None:
            return _answer(agent, executor, args.once)
        print(f"robo-agent chat: {robot.name}, {mode}. Ctrl-C stops the arm; Ctrl-D or "
              "'quit' leaves.")
        status = 0
        while True:
            try:
                line = input("you> ").strip()
            except EOFError:
                print()
                return status
            except KeyboardInterrupt:
                print("\n(Ctrl-D or 'quit' to leave)")
                continue
            if line.lower() in ("quit", "exit", "bye"):
                return status
            if line:
                status = _answer(agent, executor, line)
    except AgentError as err:
        print(f"robo-agent chat: {err}", file=sys.stderr)
        return 3
    finally:
        executor.close()


def _release_requested(text: str, robot: Any) -> bool:
    from robo_agent.agent.grammar import GrammarError, parse_command

    try:
        calls = parse_command(text, robot)
    except GrammarError:
        return False
    return [c.name for c in calls] == ["reset_emergency_stop"]


def _handle_interruptibly(agent: Any, executor: Any, text: str) -> Any:
    """Run the command on a worker thread; Ctrl-C here stops the arm, then re-raises.

    KeyboardInterrupt is raised wherever the main thread happens to be. Raised inside the
    motion (in the executor's lock and condition-variable waits) it could leave a lock
    held and the stop that follows waiting on it; here it only ever interrupts this
    wait, and the motion ends because `stop` aborts it, through the executor's own path.
    """
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["reply"] = agent.handle(text)
        except BaseException as err:  # handed to the main thread
            box["error"] = err

    executor.interrupted.clear()
    worker = threading.Thread(target=work, name="chat-command", daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.1)
    except KeyboardInterrupt:
        executor.interrupted.set()
        box["stopped"] = executor.call("stop", {})
        worker.join(5.0)  # the aborted motion reports back quickly
        raise _Interrupted(box["stopped"]) from None
    if "error" in box:
        raise box["error"]
    return box["reply"]


class _Interruptible:
    """The executor the chat agents use: after Ctrl-C, no further motion of that command.

    The agent's thread may still be talking to the LLM when the person interrupts; any
    motion it asks for afterwards is refused until the next command starts.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.interrupted = threading.Event()

    def call(self, name: str, arguments: Any = None) -> Any:
        from robo_agent.core.tools import TOOLS, ToolResult

        spec = TOOLS.get(str(name))
        if self.interrupted.is_set() and spec is not None and spec.moves_robot:
            return ToolResult(tool=str(name), ok=False, error="refused",
                              message="the operator interrupted this command (Ctrl-C); "
                              "nothing more moves")
        return self.inner.call(name, arguments)

    def close(self) -> None:
        self.inner.close()


class _Interrupted(Exception):
    def __init__(self, stop_result: Any) -> None:
        super().__init__("interrupted")
        self.stop_result = stop_result


def _answer(agent: Any, executor: Any, text: str) -> int:
    from robo_agent.agent.llm import AgentError, LLMAgent
    from robo_agent.agent.session import human_release_estop, summarize

    if _release_requested(text, getattr(agent, "robot", None)):
        # The person at this terminal asked; a model never gets here (the tool is hidden).
        result = human_release_estop(executor, "typed at the chat terminal")
        print(summarize(result))
        return 0 if result.ok else 1
    try:
        reply = _handle_interruptibly(agent, executor, text)
    except AgentError as err:
        print(f"robo-agent chat: {err}", file=sys.stderr)
        return 3
    except _Interrupted as stop:
        # Ctrl-C while a command runs: the person wants the arm to stop, not just the program.
        print(f"\ninterrupted; {summarize(stop.stop_result)}")
        return 130

    if isinstance(agent, LLMAgent):  # the human sees what was measured, not only the LLM's words
        for result in reply.results:
            print(f"  [{summarize(result)}]")
    print(reply.text)
    return 0 if reply.ok else 1


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add `mcp` and `chat` to the `robo-agent` parser."""
    mcp = sub.add_parser(
        "mcp",
        help="serve the robot tools over MCP (stdio or streamable HTTP)",
        description="Serve the robot's tools to MCP clients (Claude Desktop, IDEs, agents). "
        "Tools execute in this process against the ROS graph, through the safety envelope.",
    )
    _add_executor_args(mcp)
    mcp.add_argument("--transport", choices=("stdio", "http"), default="stdio")
    mcp.add_argument("--host", default="127.0.0.1", help="HTTP bind address (default loopback)")
    mcp.add_argument("--port", type=_port, default=8765, help="HTTP port (default 8765)")
    mcp.add_argument(
        "--token",
        help=f"bearer token required on every HTTP request (or set {TOKEN_ENV}); "
        "mandatory when --host is not a loopback address",
    )
    mcp.set_defaults(func=_cmd_mcp, node_name="robo_agent_mcp")

    chat = sub.add_parser(
        "chat",
        help="talk to the robot: an LLM tool loop, or the offline grammar without an LLM",
        description="Natural-language control. With --base-url or OPENAI_API_KEY an LLM "
        "(any OpenAI-compatible endpoint: OpenAI, vLLM, ollama, llama.cpp) calls the tools; "
        "otherwise the offline command grammar parses commands such as "
        "'open the gripper and move 5 cm up'.",
    )
    _add_executor_args(chat)
    chat.add_argument("--base-url", help="OpenAI-compatible endpoint, e.g. http://localhost:11434/v1")
    chat.add_argument(
        "--model", default=os.environ.get("OPENAI_MODEL", "gpt-4o-mini"), help="model name"
    )
    chat.add_argument("--yes", action="store_true", help="approve held plans without asking")
    chat.add_argument("--once", metavar="TEXT", help="run one command, print the reply, exit")
    chat.add_argument("--offline", action="store_true", help="use the grammar even with an LLM")
    chat.add_argument(
        "--max-rounds", type=_positive(int), default=8, help="LLM requests per command (8)"
    )
    chat.add_argument(
        "--timeout", type=_positive(float), default=60.0, help="LLM request timeout, s (60)"
    )
    chat.add_argument(
        "--temperature", type=float, help="sampling temperature (default: the server's)"
    )
    chat.set_defaults(func=_cmd_chat, node_name="robo_agent_chat")

    from robo_agent.agent import eval_cli

    eval_cli.register(sub)
