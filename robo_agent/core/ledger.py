"""The research ledger: `results.tsv`, one row per trial, appended atomically.

Each row is written as one complete line with a single `write` on an `O_APPEND` file
descriptor, under an exclusive `flock`, then `fsync`ed before the lock is released. A
reader therefore sees either the whole row or none of it; a runner killed with
`kill -9` between trials loses nothing, and a resumed run reads the trial numbers
already present so it never writes one twice (`append` refuses a duplicate trial).

Reading validates every line; a malformed one raises `LedgerError` naming the file and
the line number, and nothing is written.
"""

from __future__ import annotations

import fcntl
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

Status = Literal["baseline", "keep", "discard", "crash", "timeout", "rejected"]
STATUSES: tuple[str, ...] = ("baseline", "keep", "discard", "crash", "timeout", "rejected")

COLUMNS: tuple[str, ...] = (
    "trial",
    "commit",
    "parent",
    "proposer",
    "score",
    "spread",
    "incumbent",
    "margin",
    "repeats",
    "status",
    "train_seconds",
    "env_steps",
    "peak_mem_mb",
    "final_distance",
    "smoothness",
    "wall_seconds",
    "description",
    "cpu_seconds",
    "scores",
)
HEADER = "\t".join(COLUMNS) + "\n"


class LedgerError(ValueError):
    """The ledger file is malformed, or a row cannot be appended."""


def _clean_text(value: str) -> str:
    # Tabs and newlines would break the TSV framing; keep descriptions on one line.
    return " ".join(str(value).replace("\t", " ").split())


class LedgerRow(BaseModel):
    """One trial. Scores are success rates in [0, 1]; NaN where a trial produced none."""

    model_config = ConfigDict(extra="forbid")

    trial: int = Field(ge=0)
    commit: str = Field(default="", description="candidate commit, '' when rejected pre-commit")
    parent: str = Field(default="", description="incumbent commit the candidate was built on")
    proposer: str = Field(min_length=1)
    score: float = math.nan
    spread: float = math.nan
    incumbent: float = math.nan
    margin: float = math.nan
    repeats: int = Field(default=0, ge=0)
    status: Status
    train_seconds: float = math.nan
    env_steps: int = Field(default=0, ge=0)
    peak_mem_mb: float = math.nan
    final_distance: float = math.nan
    smoothness: float = math.nan
    wall_seconds: float = math.nan
    description: str = ""
    cpu_seconds: float = math.nan  # mean CPU seconds of train.py's process tree (the budget)
    scores: list[float] = Field(
        default_factory=list, description="held-out score per training seed, seed order"
    )

    @field_validator("scores", mode="before")
    @classmethod
    def _scores_cell(cls, value: object) -> object:
        # in the TSV the per-seed scores are one cell, ';'-separated
        if isinstance(value, str):
            return [float(v) for v in value.split(";") if v.strip()]
        return value

    @field_validator("commit", "parent", "proposer", "description", mode="before")
    @classmethod
    def _one_line(cls, value: object) -> str:
        return _clean_text(str(value))

    @field_validator("commit", "parent")
    @classmethod
    def _hex(cls, value: str) -> str:
        if value and not all(c in "0123456789abcdef" for c in value):
            raise ValueError(f"'{value}' is not a git commit hash")
        return value

    def to_line(self) -> str:
        """The row as one TSV line (with the trailing newline)."""
        cells = []
        for name in COLUMNS:
            value = getattr(self, name)
            if isinstance(value, float):
                cells.append("nan" if math.isnan(value) else f"{value:.6g}")
            elif isinstance(value, list):
                cells.append(";".join(f"{v:.6g}" for v in value))
            else:
                cells.append(str(value))
        return "\t".join(cells) + "\n"

    @property
    def succeeded(self) -> bool:
        """True for rows that produced a score (baseline/keep/discard)."""
        return self.status in ("baseline", "keep", "discard")


class Ledger:
    """`results.tsv` in a research workspace."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    # -- reading --------------------------------------------------------------------------
    def rows(self) -> list[LedgerRow]:
        """All rows, validated. Raises `LedgerError` naming the first bad line."""
        if not self.path.exists():
            return []
        text = self.path.read_text(encoding="utf-8")
        if not text:
            return []
        lines = text.split("\n")
        if lines[-1] != "":
            raise LedgerError(
                f"{self.path}: line {len(lines)}: incomplete last line (no newline); "
                "the file was truncated outside the ledger's append"
            )
        lines = lines[:-1]
        if lines[0] + "\n" != HEADER:
            raise LedgerError(
                f"{self.path}: line 1: header does not match the ledger columns "
                f"({', '.join(COLUMNS)})"
            )
        rows: list[LedgerRow] = []
        seen: set[int] = set()
        for number, line in enumerate(lines[1:], start=2):
            row = self._parse(line, number)
            if row.trial in seen:
                raise LedgerError(f"{self.path}: line {number}: duplicate trial {row.trial}")
            seen.add(row.trial)
            rows.append(row)
        return rows

    def _parse(self, line: str, number: int) -> LedgerRow:
        cells = line.split("\t")
        if len(cells) != len(COLUMNS):
            raise LedgerError(
                f"{self.path}: line {number}: expected {len(COLUMNS)} tab-separated fields, "
                f"got {len(cells)}"
            )
        try:
            return LedgerRow.model_validate(dict(zip(COLUMNS, cells, strict=True)))
        except ValidationError as err:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()
            )
            raise LedgerError(f"{self.path}: line {number}: {problems}") from None

    def next_trial(self) -> int:
        """The trial number the next row should carry."""
        rows = self.rows()
        return max((r.trial for r in rows), default=-1) + 1

    # -- writing --------------------------------------------------------------------------
    @contextmanager
    def _locked_fd(self) -> Iterator[int]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield fd
        finally:
            os.close(fd)  # closing releases the flock

    def ensure_header(self) -> None:
        """Create the file with its header line if it does not exist yet."""
        with self._locked_fd() as fd:
            if os.fstat(fd).st_size == 0:
                _write_all(fd, HEADER.encode())
                os.fsync(fd)

    def append(self, row: LedgerRow) -> None:
        """Append one row atomically; refuses a trial number that is already present."""
        line = row.to_line().encode("utf-8")
        with self._locked_fd() as fd:
            # Validate under the lock so a concurrent writer cannot slip a duplicate in.
            existing = self.rows()
            if any(r.trial == row.trial for r in existing):
                raise LedgerError(f"{self.path}: trial {row.trial} is already in the ledger")
            data = line if os.fstat(fd).st_size else HEADER.encode() + line
            _write_all(fd, data)
            os.fsync(fd)


def _write_all(fd: int, data: bytes) -> None:
    # One write of a line this short is a single append on Linux; loop only for safety.
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def best_row(rows: list[LedgerRow]) -> LedgerRow | None:
    """The current incumbent: the last baseline or kept row (kept means it beat the last one)."""
    incumbents = [r for r in rows if r.status in ("baseline", "keep")]
    return incumbents[-1] if incumbents else None
