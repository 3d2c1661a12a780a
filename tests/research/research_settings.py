"""Tiny research settings shared by the research tests (the mechanics, not the score)."""

TASK = "robo_agent/PandaReach-v0"
TINY = {"repeats": 1, "max_repeats": 1, "eval_episodes": 10, "grace_seconds": 10.0}  # generous: CI
BUDGET = 6.0
