"""Research workspaces: a folder with its own git repo, `train.py`, `program.md`, settings.

Layout of a workspace:

    train.py        the one file candidates change (committed)
    program.md      the rules an agent follows (committed, frozen)
    research.yaml   task, budget, seeds, decision rule (committed, frozen)
    .gitignore      keeps the ledger and run outputs out of git
    results.tsv     the ledger (untracked, appended atomically)
    progress.png    score per trial and the kept frontier (untracked)
    .research/      per-trial logs and artifacts, the in-flight record, the run lock,
                    secret.json (the evaluation seeds and ledger key, mode 0600),
                    harness.json (sha256 of the frozen files), ledger-quarantine/
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from robo_agent.autoresearch import harness
from robo_agent.autoresearch.gitops import GitError, Repo, init_repo

from robo_agent.core.ledger import Ledger
from robo_agent.core.research_config import ResearchConfig, draw_eval_seed_base
from robo_agent.core.research_source import vet_train_source

TEMPLATE_DIR = Path(__file__).resolve().parent
DEFAULT_TASK = "robo_agent/PandaReach-v0"
DEFAULT_BUDGET = 30.0  # CPU-seconds cap per run; the work per run is budget_steps (research.yaml)
DEFAULT_DIR = "research-default"
FROZEN_FILES = ("program.md", "research.yaml", ".gitignore")
GITIGNORE = "results.tsv\nprogress.png\n.research/\n__pycache__/\n*.onnx\n"
SECRET_FILE = "secret.json"


class WorkspaceError(ValueError):
    """The folder is not a usable research workspace, or the request would damage one."""


def known_tasks() -> list[str]:
    """Gymnasium ids registered by `robo_agent.sim` (and panda-gym, if installed)."""
    import gymnasium as gym
    import robo_agent.sim  # noqa: F401  (registers robo_agent/* ids)

    try:
        import panda_gym  # noqa: F401
    except ImportError:
        pass
    return sorted(gym.registry)


def check_task(task: str) -> None:
    tasks = known_tasks()
    if task not in tasks:
        ours = [t for t in tasks if t.startswith("robo_agent/")]
        raise WorkspaceError(
            f"unknown task '{task}' (robo_agent tasks: {', '.join(ours) or 'none'})"
        )


class Workspace:
    """An existing research workspace (validated on open)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).resolve()
        self.repo = Repo(self.path)
        try:
            self.repo.check()
        except GitError as err:
            raise WorkspaceError(str(err)) from None
        for name in ("train.py", "program.md", "research.yaml"):
            if not (self.path / name).is_file():
                raise WorkspaceError(f"{self.path}: no {name} (not a research workspace)")
        self.config = ResearchConfig.load(self.path)
        self.state = self.path / ".research"
        self._secret = self._load_secret()
        self.ledger = Ledger(
            self.path / "results.tsv",
            key=bytes.fromhex(self._secret["ledger_key"]),
            aside=self.state / "ledger-quarantine",
        )
        self._pinned: dict[str, str] | None = None

    # -- secrets and the frozen harness -----------------------------------------------------
    def _load_secret(self) -> dict[str, Any]:
        path = self.state / SECRET_FILE
        if not path.exists():
            if (self.path / "results.tsv").exists():
                raise WorkspaceError(
                    f"{self.path}: has a ledger but no {path.name} (made before evaluation "
                    "seeds were secret); its scores cannot be continued, create a new workspace"
                )
            write_secret(self.state)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            int(data["eval_seed_base"]), bytes.fromhex(data["ledger_key"])
        except (OSError, ValueError, KeyError, TypeError):
            raise WorkspaceError(f"{path}: unreadable or malformed secret file") from None
        return data

    @property
    def eval_seed_base(self) -> int:
        """The secret first evaluation seed (only the runner and the evaluator see it)."""
        return int(self._secret["eval_seed_base"])

    @property
    def eval_seeds(self) -> list[int]:
        """The held-out seeds, one per evaluation episode; disjoint from training seeds."""
        return list(range(self.eval_seed_base, self.eval_seed_base + self.config.eval_episodes))

    def check_harness(self) -> None:
        """Stop (`WorkspaceError` naming the files) if a frozen file changed since pinned."""
        try:
            self._pinned = harness.check(self.path, self._pinned)
        except harness.HarnessChanged as err:
            raise WorkspaceError(f"{self.path}: {err}") from None

    # -- init -----------------------------------------------------------------------------
    @classmethod
    def init(
        cls,
        path: str | Path,
        task: str = DEFAULT_TASK,
        budget: float = DEFAULT_BUDGET,
        validate_task: bool = True,
        **config: Any,
    ) -> Workspace:
        """Create a workspace at `path` (absent or empty). Builds it beside the target and
        renames it into place, so a failure leaves nothing behind."""
        target = Path(path).resolve()
        if target.exists() and (not target.is_dir() or any(target.iterdir())):
            raise WorkspaceError(f"{target} already exists and is not empty")
        if not budget > 0:
            raise WorkspaceError(f"budget must be a positive number of seconds, got {budget}")
        try:
            settings = ResearchConfig(task=task, budget_seconds=budget, **config)
        except ValueError as err:
            raise WorkspaceError(f"invalid research settings: {err}") from None
        if validate_task:
            check_task(task)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            shutil.copy(TEMPLATE_DIR / "train.py", staging / "train.py")
            shutil.copy(TEMPLATE_DIR / "program.md", staging / "program.md")
            vet_train_source((staging / "train.py").read_text())
            settings.save(staging)
            (staging / ".gitignore").write_text(GITIGNORE)
            init_repo(staging)
            write_secret(staging / ".research")
            harness.record(staging)
            if target.exists():
                target.rmdir()
            os.rename(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return cls(target)

    # -- state ----------------------------------------------------------------------------
    def require_clean(self) -> None:
        dirty = self.repo.dirty_files()
        if dirty:
            raise WorkspaceError(
                f"{self.path}: uncommitted changes in {', '.join(dirty[:5])}; commit or discard "
                "them first (the research loop commits candidates itself)"
            )

    def trial_dir(self, trial: int) -> Path:
        return self.state / "trials" / f"{trial:04d}"

    def artifact_dir(self, trial: int, repeat: int) -> Path:
        return self.trial_dir(trial) / f"r{repeat}" / "artifact"

    @contextmanager
    def run_lock(self) -> Iterator[None]:
        """Exclusive lock for one runner; released by the kernel even after `kill -9`."""
        self.state.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.state / "run.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise WorkspaceError(
                    f"{self.path}: another research run is active in this workspace"
                ) from None
            yield
        finally:
            os.close(fd)

    # -- in-flight record (for resume after kill -9) ---------------------------------------
    @property
    def _pending_path(self) -> Path:
        return self.state / "pending.json"

    def write_pending(self, entries: list[dict[str, Any]]) -> None:
        """Record candidates committed but not yet in the ledger (atomic replace)."""
        self.state.mkdir(parents=True, exist_ok=True)
        tmp = self.state / "pending.json.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(entries, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self._pending_path)

    def read_pending(self) -> list[dict[str, Any]]:
        try:
            data = json.loads(self._pending_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except json.JSONDecodeError:
            return []  # a torn write never replaced the old file; treat as nothing pending
        done = {r.trial for r in self.ledger.rows()}
        return [e for e in data if e.get("trial") not in done]

    def clear_pending(self) -> None:
        self._pending_path.unlink(missing_ok=True)


def write_secret(state: Path) -> Path:
    """Draw the evaluation seeds and the ledger key from the OS's randomness (mode 0600)."""
    state.mkdir(parents=True, exist_ok=True)
    path = state / SECRET_FILE
    data = {"eval_seed_base": draw_eval_seed_base(), "ledger_key": secrets.token_hex(32)}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh)
        fh.flush()
        os.fsync(fh.fileno())
    return path
