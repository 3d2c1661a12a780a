"""Write a benchmark record: `docs/benchmarks/<bench>-<UTC time>.json`.

A record holds the figures a bench script measured (numbers only), the command that
measured them, the git commit of the measured code (`+dirty` when the tree had changes),
the time, the machine and its load. `bench/summary.py` builds the goals table of
`docs/BENCHMARKS.md` from these records alone, so a figure in the summary is always one
that a record holds. A record's `rows` say which summary rows it supplies:

    {"id": "sim 1", "goal": "...", "measured": "**{ratio:.3f}** ...",
     "check": ["ratio", ">=", 0.9], "met_note": "quiet"}

`measured` may name only the record's own figures; `check` (optional) decides ✔/✘.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
#: where records go; ROBO_AGENT_BENCH_RECORDS moves them (tests, trial runs of a bench)
RECORDS = Path(os.environ.get("ROBO_AGENT_BENCH_RECORDS", ROOT / "docs" / "benchmarks"))


def git_commit(root: Path = ROOT) -> str:
    """Short HEAD commit, with `+dirty` when tracked files differ from it."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              check=False).stdout.strip()  # fmt: skip

    head = git("rev-parse", "--short=12", "HEAD") or "unknown"
    return head + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu_model": model, "python": platform.python_version(),
            "system": f"{platform.system()} {platform.machine()}"}  # fmt: skip


def write_record(
    bench: str,
    figures: dict[str, float | int | str | None],
    rows: list[dict[str, Any]] | None = None,
    command: str | None = None,
    load_before: tuple[float, float, float] | None = None,
    notes: str = "",
    out_dir: Path = RECORDS,
) -> Path:
    """Write the record and return its path (the name carries the UTC minute)."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    record = {
        "bench": bench,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "commit": git_commit(),
        "command": command or "python " + " ".join(sys.argv),
        "machine": machine(),
        "load_avg": {
            "before": load_before and round(load_before[0], 2),
            "after": round(os.getloadavg()[0], 2),
        },
        "figures": figures,
        "rows": rows or [],
        "notes": notes,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{bench}-{stamp}.json"
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
