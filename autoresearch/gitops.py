"""Thin git wrapper for research workspaces (subprocess `git`, no GitPython).

Commits work on machines with no git identity configured: when the repository has no
`user.name`/`user.email`, each command gets `-c user.name=... -c user.email=...` — the
global config is never touched. Candidates are committed with plumbing through a
temporary index (`commit_file`), so proposing never touches the working tree; each trial
commit is kept reachable under `refs/trials/<n>` whether kept or discarded, and only a
kept one moves the branch.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

FALLBACK_NAME = "robo-agent research"
FALLBACK_EMAIL = "research@robo-agent.invalid"


class GitError(RuntimeError):
    """A git command failed or the folder is not a usable repository."""


class Repo:
    """A git repository rooted exactly at `path`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).resolve()
        self._identity: list[str] | None = None

    # -- plumbing -------------------------------------------------------------------------
    def run(self, *args: str, env: dict[str, str] | None = None, input: str | None = None) -> str:
        cmd = ["git", *self.identity_args(), *args]
        proc = subprocess.run(
            cmd,
            cwd=self.path,
            capture_output=True,
            text=True,
            env={**os.environ, **(env or {})},
            input=input,
            check=False,
        )
        if proc.returncode != 0:
            raise GitError(f"git {' '.join(args)} failed in {self.path}: {proc.stderr.strip()}")
        return proc.stdout

    def identity_args(self) -> list[str]:
        """`-c user.*` options when no identity is configured (cached per Repo)."""
        if self._identity is None:
            self._identity = []
            for key, fallback in (("user.name", FALLBACK_NAME), ("user.email", FALLBACK_EMAIL)):
                probe = subprocess.run(
                    ["git", "config", "--get", key],
                    cwd=self.path if self.path.is_dir() else None,
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if not probe.stdout.strip():
                    self._identity += ["-c", f"{key}={fallback}"]
        return self._identity

    # -- queries --------------------------------------------------------------------------
    def check(self) -> None:
        """Raise `GitError` unless `path` is the top level of its own git repository."""
        if not self.path.is_dir():
            raise GitError(f"{self.path}: no such directory")
        proc = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"],
            cwd=self.path,
            capture_output=True,
            text=True,
            check=False,
        )
        top = proc.stdout.strip()
        if proc.returncode != 0 or Path(top).resolve() != self.path:
            raise GitError(
                f"{self.path} is not a git repository of its own "
                "(create research workspaces with `robo-agent research init DIR`)"
            )
        try:
            self.head()
        except GitError:
            raise GitError(f"{self.path}: the repository has no commits") from None

    def head(self) -> str:
        return self.run("rev-parse", "HEAD").strip()

    def resolve(self, rev: str) -> str:
        return self.run("rev-parse", "--verify", f"{rev}^{{commit}}").strip()

    def dirty_files(self) -> list[str]:
        """Tracked changes and untracked, non-ignored files."""
        out = self.run("status", "--porcelain", "--untracked-files=all")
        return [line[3:] for line in out.splitlines() if line.strip()]

    def show(self, commit: str, path: str) -> str:
        return self.run("show", f"{commit}:{path}")

    def changed_files(self, a: str, b: str) -> list[str]:
        return [f for f in self.run("diff", "--name-only", a, b).splitlines() if f]

    def parent(self, commit: str) -> str:
        parents = self.run("rev-list", "--parents", "-n", "1", commit).split()
        return parents[1] if len(parents) > 1 else ""

    def is_ancestor(self, a: str, b: str) -> bool:
        proc = subprocess.run(
            ["git", "merge-base", "--is-ancestor", a, b], cwd=self.path, check=False
        )
        return proc.returncode == 0

    def subject(self, commit: str) -> str:
        return self.run("log", "-1", "--format=%s", commit).strip()

    # -- changes --------------------------------------------------------------------------
    def commit_file(self, parent: str, path: str, content: str, message: str) -> str:
        """A new commit = `parent` with `path` replaced by `content`; the tree is untouched."""
        with tempfile.TemporaryDirectory() as tmp:
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            self.run("read-tree", parent, env=env)
            blob = self.run("hash-object", "-w", "--stdin", input=content).strip()
            self.run("update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", env=env)
            tree = self.run("write-tree", env=env).strip()
        return self.run("commit-tree", tree, "-p", parent, "-m", message).strip()

    def set_ref(self, name: str, commit: str) -> None:
        self.run("update-ref", name, commit)

    def fast_forward(self, commit: str) -> None:
        """Move the checked-out branch (and working tree) to `commit`."""
        self.run("merge", "--ff-only", "--quiet", commit)

    def reset_hard(self, commit: str) -> None:
        self.run("reset", "--hard", "--quiet", commit)


def init_repo(path: Path) -> Repo:
    """`git init` with branch `research` and a first commit of everything in `path`."""
    subprocess.run(["git", "init", "-q", str(path)], check=True, capture_output=True)
    repo = Repo(path)
    repo.run("checkout", "-q", "-b", "research")
    repo.run("add", "-A")
    repo.run("commit", "-q", "-m", "research workspace: baseline train.py, program.md, settings")
    return repo
