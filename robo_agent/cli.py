"""`robo-agent` command line: one entry point, subcommands contributed by each part.

Each part (sim, autoresearch, agent) owns a `cli` module with `register(subparsers)`
that adds its subcommands and binds `func`; heavy imports happen inside the handlers so
`robo-agent --help` stays fast and works without the optional extras.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from robo_agent import __version__
from robo_agent.core.robot_spec import RobotSpecError, list_robots


def _cmd_robots(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="robot descriptions")
    for col in ("name", "joints", "gripper", "end effector", "description"):
        table.add_column(col)
    for spec in list_robots():
        gripper = f"{len(spec.gripper.joints)} joints" if spec.gripper else "-"
        table.add_row(spec.name, str(spec.dof), gripper, spec.ee_link, spec.description)
    Console().print(table)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from robo_agent.agent import cli as agent_cli
    from robo_agent.autoresearch import cli as research_cli
    from robo_agent.deploy import cli as deploy_cli
    from robo_agent.sim import cli as sim_cli

    parser = argparse.ArgumentParser(
        prog="robo-agent",
        description="Robot arms as agent tools, RL policy autoresearch in PyBullet, "
        "safe deployment over ROS 2 topics.",
    )
    parser.add_argument("--version", action="version", version=f"robo-agent {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    robots = sub.add_parser("robots", help="list the robot descriptions and their joint counts")
    robots.set_defaults(func=_cmd_robots)
    for part in (sim_cli, research_cli, agent_cli, deploy_cli):
        part.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except RobotSpecError as err:
        print(f"robo-agent: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("robo-agent: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
