"""Subcommands of robo_agent.autoresearch (filled in by its owner)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add this part's subcommands to the `robo-agent` parser."""

