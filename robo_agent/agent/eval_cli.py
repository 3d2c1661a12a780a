"""`robo-agent eval-commands`: run the command evaluation suite against `sim_robot`.

    robo-agent eval-commands --offline --json
    robo-agent eval-commands --base-url http://localhost:11434/v1 --model qwen2.5:7b

Starts its own `sim_robot` in a private ROS domain (a random id in 101..200, localhost
discovery) unless `--use-running`, so it never moves someone else's arm. The executor
runs the `unattended` safety limits plus a keep-out box (`KEEP_OUT`, "monitor") and no
confirmation step: there is no person to ask, and every command is checked against the
sensors. Exit status: 0 when every command the agent claims to handle passed.
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
from pathlib import Path
from typing import Any

import yaml

from robo_agent.agent.eval_suite import (
    CATEGORIES,
    COMMANDS,
    KEEP_OUT,
    public,
    run_suite,
    summary_table,
)
from robo_agent.core.paths import safety_dir


def eval_policy(folder: Path) -> Path:
    """The unattended policy with the suite's keep-out box, as a YAML file in `folder`."""
    policy = yaml.safe_load((safety_dir() / "unattended.yaml").read_text())
    policy["name"] = "eval_commands"
    policy["hard_limits"]["keep_out"] = [KEEP_OUT]
    path = folder / "eval_commands.yaml"
    path.write_text(yaml.safe_dump(policy))
    return path


def _start_sim(robot: str, domain: int, log: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "robo_agent.ros.sim_robot", "--ros-args", "-p",
             f"robot:={robot}"], env=env, stdout=subprocess.DEVNULL, stderr=out)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _agent(args: argparse.Namespace, executor: Any, robot: Any) -> tuple[Any, Any]:
    from robo_agent.agent.llm import LLMAgent, llm_configured, make_client
    from robo_agent.agent.session import OfflineAgent

    if args.offline or not llm_configured(args.base_url):
        # Topic-like text, not a person at a terminal: human-only tools stay refused.
        return OfflineAgent(executor, robot), lambda r: "I don't understand" not in r.text
    agent = LLMAgent(make_client(args.base_url, timeout=args.timeout), executor,
                     model=args.model, robot=robot, max_rounds=args.max_rounds)
    return agent, lambda _r: True


def run(args: argparse.Namespace) -> int:
    from robo_agent.agent.session import wait_for_robot
    from robo_agent.core.robot_spec import load_robot
    from robo_agent.ros.eval_scene import InjectedObject
    from robo_agent.ros.tool_executor import RosToolExecutor

    robot = load_robot(args.robot)
    commands = tuple(c for c in COMMANDS if not args.category or c.category in args.category)
    say = (lambda _m: None) if args.json else (lambda m: print(m, flush=True))
    with tempfile.TemporaryDirectory(prefix="robo_agent_eval_") as tmp:
        folder = Path(tmp)
        domain = None if args.use_running else random.randint(101, 200)
        sim = None if domain is None else _start_sim(args.robot, domain, folder / "sim.log")
        scene = executor = None
        try:
            scene = InjectedObject(domain)
            executor = RosToolExecutor(args.robot, safety_policy=eval_policy(folder),
                                       audit_log=folder / "audit.jsonl",
                                       node_name="robo_agent_eval",
                                       parameters={"image_dir": str(folder / "images")},
                                       domain_id=domain)
            state = wait_for_robot(executor, timeout=30.0)
            if not state.ok:
                log = (folder / "sim.log").read_text()[-2000:] if sim else ""
                print(f"robo-agent eval-commands: no robot state: {state.message}\n{log}",
                      file=sys.stderr)
                return 2
            agent, claims = _agent(args, executor, robot)
            say(f"robo-agent eval-commands: {len(commands)} commands, "
                f"{type(agent).__name__}, ROS domain {domain if domain else 'of the environment'}")
            result = run_suite(agent, executor, robot, claims, commands, progress=say)
        finally:
            if executor is not None:
                executor.close()
            if scene is not None:
                scene.close()
            if sim is not None:
                _stop(sim)
    if args.json:
        print(json.dumps(public(result), indent=1))
    else:
        print(summary_table(result))
    return 0 if result["claimed_success"] == 1.0 else 1


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "eval-commands",
        help="measure how well natural-language commands are understood (sim_robot)",
        description=__doc__.split("\n\n")[0] + " " + str(len(COMMANDS)) + " commands in "
        "categories " + ", ".join(CATEGORIES) + ", each with a machine-checked end state.",
    )
    p.add_argument("--robot", default="panda", help="robot description (default panda)")
    p.add_argument("--offline", action="store_true", help="the offline grammar, no LLM")
    p.add_argument("--base-url", help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1")
    p.add_argument("--model", default=os.environ.get("OPENAI_MODEL", "gpt-4o-mini"))
    p.add_argument("--max-rounds", type=int, default=8, help="LLM requests per command (8)")
    p.add_argument("--timeout", type=float, default=60.0, help="LLM request timeout, s (60)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object: commands, success, claimed_success")
    p.add_argument("--use-running", action="store_true",
                   help="use the robot already on this ROS_DOMAIN_ID instead of starting one")
    p.add_argument("--category", action="append", choices=CATEGORIES,
                   help="only these categories (repeatable)")
    p.set_defaults(func=run)
