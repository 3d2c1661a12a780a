"""JSONL audit log of every safety decision (allowed / clipped / refused).

One JSON object per line, appended and flushed as each decision is made so that a crash
loses nothing already decided. Safe to share between threads.
"""

from __future__ import annotations

import json
import math
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import numpy as np

Outcome = Literal["allowed", "clipped", "refused"]


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()]
    if isinstance(value, (np.floating, float)):
        v = float(value)
        return v if math.isfinite(v) else str(v)  # JSON has no NaN; keep it readable
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    return repr(value)


class AuditLog:
    """Appends decisions to `path` (JSONL); with path None keeps them in memory only.

    The last `keep` records are also held in `records` for inspection and tests.
    """

    def __init__(self, path: str | Path | None = None, source: str = "", keep: int = 1000) -> None:
        self.path = Path(path).expanduser() if path else None
        self.source = source
        self._keep = keep
        self.records: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._file = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", encoding="utf-8")

    def record(
        self,
        tool: str,
        decision: Outcome,
        reason: str,
        limit: str | None = None,
        **details: Any,
    ) -> dict[str, Any]:
        """Write one decision; returns the record written."""
        now = time.time()
        entry = {
            "time": datetime.fromtimestamp(now, tz=timezone.utc).isoformat(timespec="milliseconds"),
            "unix": round(now, 6),
            "source": self.source,
            "tool": tool,
            "decision": decision,
            "reason": reason,
            "limit": limit,
            "details": _jsonable(details),
        }
        line = json.dumps(entry, separators=(",", ":"))
        with self._lock:
            self.records.append(entry)
            del self.records[: -self._keep]
            if self._file is not None:
                self._file.write(line + "\n")
                self._file.flush()
        return entry

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


def read_audit_log(path: str | Path) -> list[dict[str, Any]]:
    """All records of a JSONL audit log."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
