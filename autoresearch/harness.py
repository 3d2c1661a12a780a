"""Frozen-harness integrity: the files that decide a trial's score, pinned by sha256.

`research init` records the sha256 of every file that takes part in scoring a candidate
— the workspace's `program.md`, `research.yaml`, `.gitignore` and secret file, the
evaluator, runner, sandbox and ledger code (`robo_agent.autoresearch` except the
editable `train.py`, `robo_agent.core`), the simulator (`robo_agent.sim`) and the robot
descriptions — in `.research/harness.json`. The runner re-checks them before and after
every round of trials and stops with a message naming each file that changed.

The sandbox already keeps candidates from writing any of these; this check also
catches a `--no-sandbox` run, a hand edit, or an upgrade of robo_agent in the middle of
a research campaign (scores before and after would not be comparable). To accept a
deliberate change, delete `.research/harness.json`: the next run pins the files again.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from pathlib import Path

HARNESS_FILE = "harness.json"
WORKSPACE_FILES = ("program.md", "research.yaml", ".gitignore", ".research/secret.json")
PACKAGES = ("robo_agent.autoresearch", "robo_agent.core", "robo_agent.sim")
EDITABLE = {"robo_agent.autoresearch": {"train.py"}}


class HarnessChanged(RuntimeError):
    """A frozen file differs from the hash recorded at `research init`."""


def harness_files(workspace: Path) -> dict[str, Path]:
    """Name → path of every frozen file (names are stable across machines)."""
    files = {name: workspace / name for name in WORKSPACE_FILES}
    for package in PACKAGES:
        spec = importlib.util.find_spec(package)
        assert spec is not None and spec.submodule_search_locations
        folder = Path(next(iter(spec.submodule_search_locations)))
        for path in sorted(folder.glob("*.py")):
            if path.name not in EDITABLE.get(package, set()):
                files[f"{package}/{path.name}"] = path
    from robo_agent.core.paths import robots_dir

    try:
        robots = robots_dir()
    except FileNotFoundError:
        robots = None
    if robots is not None:
        for path in sorted(p for p in robots.rglob("*") if p.is_file()):
            files[f"robots/{path.relative_to(robots)}"] = path
    return files


def digests(workspace: Path) -> dict[str, str]:
    found = {}
    for name, path in harness_files(workspace).items():
        try:
            found[name] = hashlib.sha256(path.read_bytes()).hexdigest()
        except FileNotFoundError:
            found[name] = "missing"
    return found


def record(workspace: Path) -> Path:
    """Pin the frozen files now (atomic write of `.research/harness.json`)."""
    target = workspace / ".research" / HARNESS_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(digests(workspace), indent=1, sort_keys=True) + "\n")
    os.replace(tmp, target)
    return target


def check(workspace: Path, pinned: dict[str, str] | None = None) -> dict[str, str]:
    """Raise `HarnessChanged` naming every frozen file that moved since it was pinned.

    `pinned` is what an earlier call returned (a runner keeps it in memory, so deleting
    the record mid-run changes nothing); without it the record is read, and a workspace
    without one (made before this check existed, or whose owner deleted it to accept a
    change) is pinned now. Returns the pinned digests.
    """
    target = workspace / ".research" / HARNESS_FILE
    if pinned is None:
        try:
            pinned = json.loads(target.read_text())
        except FileNotFoundError:
            record(workspace)
            return json.loads(target.read_text())
        except json.JSONDecodeError:
            raise HarnessChanged(
                f"{target} is corrupt; delete it to pin the harness again"
            ) from None
    assert pinned is not None
    now = digests(workspace)
    changed = sorted(n for n in set(pinned) | set(now) if pinned.get(n) != now.get(n))
    if changed:
        raise HarnessChanged(
            f"the frozen research harness changed since it was pinned: {', '.join(changed)}. "
            "Scores before and after would not be comparable, so the run stops. If you "
            f"changed it on purpose (e.g. upgraded robo_agent), delete {target} and run again."
        )
    return pinned
