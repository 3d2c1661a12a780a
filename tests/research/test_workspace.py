"""Workspace creation and bad input: clear messages, nothing half-written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from research_settings import BUDGET, TASK, TINY
from robo_agent.autoresearch.workspace import Workspace, WorkspaceError

from robo_agent.core.ledger import LedgerError

pytestmark = pytest.mark.research


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "robo_agent.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        check=False,
    )


def _snapshot(path: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(path)): p.read_bytes()
        for p in sorted(path.rglob("*"))
        if p.is_file()
        and ".git/" not in str(p.relative_to(path)) + "/"
        and not str(p.relative_to(path)).startswith(".git")
    }


def test_init_commits_without_git_identity(tmp_path: Path) -> None:
    proc = _cli("research", "init", str(tmp_path / "ws"), "--budget", "5", "--repeats", "1")
    assert proc.returncode == 0, proc.stderr
    ws = Workspace(tmp_path / "ws")
    assert ws.config.task == TASK and ws.config.budget_seconds == 5 and ws.config.repeats == 1
    assert ws.repo.dirty_files() == []
    log = ws.repo.run("log", "--format=%an <%ae>").strip()
    assert log == "robo-agent research <research@robo-agent.invalid>"
    assert (ws.path / "train.py").read_text() == (
        Path(__file__).resolve().parents[2] / "autoresearch" / "train.py"
    ).read_text()
    assert set(ws.config.eval_seeds).isdisjoint(ws.config.train_seeds)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--budget", "0"], "budget must be a positive"),
        (["--budget", "-3"], "budget must be a positive"),
        (["--task", "robo_agent/NoSuchTask-v0"], "unknown task 'robo_agent/NoSuchTask-v0'"),
        (["--repeats", "0"], "repeats"),
    ],
)
def test_init_bad_input_leaves_nothing(tmp_path: Path, args: list[str], message: str) -> None:
    proc = _cli("research", "init", str(tmp_path / "ws"), *args)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_init_refuses_non_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "notes.txt").write_text("mine")
    with pytest.raises(WorkspaceError, match="not empty"):
        Workspace.init(tmp_path / "ws", budget=BUDGET, **TINY)
    assert [p.name for p in (tmp_path / "ws").iterdir()] == ["notes.txt"]


def test_not_a_git_repo(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "train.py").write_text("x = 1\n")
    proc = _cli("research", "run", str(tmp_path / "plain"), "--trials", "1")
    assert proc.returncode == 2 and "not a git repository of its own" in proc.stderr
    assert [p.name for p in (tmp_path / "plain").iterdir()] == ["train.py"]


@pytest.mark.slow
def test_dirty_tree_refused_and_untouched(workspace: Path) -> None:
    (workspace / "train.py").write_text((workspace / "train.py").read_text() + "\n# wip\n")
    before = _snapshot(workspace)
    proc = _cli("research", "run", str(workspace), "--trials", "1", "--quiet")
    assert proc.returncode == 2 and "uncommitted changes in train.py" in proc.stderr
    assert _snapshot(workspace) == before


@pytest.mark.slow
def test_malformed_ledger_line_refused_and_untouched(workspace: Path) -> None:
    with (workspace / "results.tsv").open("a") as fh:
        fh.write("1\tgarbage\n")
    before = _snapshot(workspace)
    head = Workspace(workspace).repo.head()
    proc = _cli("research", "run", str(workspace), "--trials", "1", "--quiet")
    assert proc.returncode == 2 and "results.tsv: line 3" in proc.stderr
    assert _snapshot(workspace) == before
    assert Workspace(workspace).repo.head() == head
    with pytest.raises(LedgerError, match="line 3"):
        Workspace(workspace).ledger.rows()


@pytest.mark.slow
def test_unreachable_llm_endpoint_is_a_clear_error(workspace: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    before = _snapshot(workspace)
    head = Workspace(workspace).repo.head()
    proc = _cli(
        "research", "run", str(workspace), "--trials", "1", "--quiet",
        "--proposer", "llm", "--base-url", f"http://127.0.0.1:{port}/v1", "--model", "m",
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "unreachable" in proc.stderr
    assert _snapshot(workspace) == before
    assert Workspace(workspace).repo.head() == head
