"""The `robo-agent` entry point: help lists subcommands, `robots` lists descriptions."""

from __future__ import annotations

import subprocess
import sys

import pytest

from robo_agent.cli import build_parser, main


def test_help_lists_subcommands() -> None:
    text = build_parser().format_help()
    assert "robots" in text


def test_robots_lists_joint_counts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["robots"]) == 0
    out = capsys.readouterr().out
    assert "panda" in out and "iiwa" in out and "xarm6" in out
    assert "7" in out and "6" in out


def test_console_script_runs() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "robo_agent.cli", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "robots" in out
