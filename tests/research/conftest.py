"""Fixtures for research tests: no git identity, tiny budgets, one shared real baseline.

Every test runs with `GIT_CONFIG_GLOBAL=/dev/null` and `GIT_CONFIG_NOSYSTEM=1`, so the
workspace code must commit without any configured identity, as on a fresh machine.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from research_settings import BUDGET, TASK, TINY

NO_IDENTITY = {
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "",
    "GIT_COMMITTER_NAME": "",
    "EMAIL": "",
}


def _apply_no_identity() -> None:
    for key, value in NO_IDENTITY.items():
        if value:
            os.environ[key] = value
        else:
            os.environ.pop(key, None)


@pytest.fixture(autouse=True)
def no_git_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in NO_IDENTITY.items():
        if value:
            monkeypatch.setenv(key, value)
        else:
            monkeypatch.delenv(key, raising=False)


@pytest.fixture(scope="session")
def baseline_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace whose real baseline (trial 0) has been trained and evaluated once."""
    saved = dict(os.environ)
    _apply_no_identity()
    try:
        from robo_agent.autoresearch.runner import Runner
        from robo_agent.autoresearch.workspace import Workspace

        path = tmp_path_factory.mktemp("baseline") / "ws"
        ws = Workspace.init(path, task=TASK, budget=BUDGET, **TINY)
        runner = Runner(ws, None, live=False)
        row = runner.run_baseline()
        runner.wait_for_plot()
        assert row.status == "baseline", (ws.trial_dir(0) / "failure.log").read_text()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return path


@pytest.fixture
def workspace(baseline_workspace: Path, tmp_path: Path) -> Iterator[Path]:
    """A private copy of the baseline workspace (git repo, ledger and artifacts)."""
    target = tmp_path / "ws"
    shutil.copytree(baseline_workspace, target, symlinks=True)
    yield target
