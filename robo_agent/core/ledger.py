"""The research ledger: `results.tsv`, one row per trial, appended atomically, hash-chained.

Each row is written as one complete line with a single `write` on an `O_APPEND` file
descriptor, under an exclusive `flock`, then `fsync`ed before the lock is released. A
reader therefore sees either the whole row or none of it; a runner killed with
`kill -9` between trials loses nothing, and a resumed run reads the trial numbers
already present so it never writes one twice (`append` refuses a duplicate trial).

Tamper evidence: the last cell of every line, `chain`, is HMAC-SHA256 (keyed with the
workspace's secret; plain SHA-256 without a key) of the previous line's chain and the
line's other cells exactly as written. Whatever columns a row has, the serialised line
is what is hashed, so a forged, edited, reordered or truncated line breaks the chain
at that line, and without the key no one can write a line that continues it.

Self-healing: `check()` validates the file and names the first bad line; `rows()` is
the verified prefix before it. `heal()` moves the first bad line and every line after it
(they cannot be verified any more) into a quarantine file, verbatim, and keeps the good
prefix, so a corrupt line never stops the research loop; `append` heals first.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import math
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
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
    "sandbox",
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
#: the hash-chain cell, always last, outside COLUMNS (it covers every other cell)
CHAIN = "chain"
HEADER = "\t".join((*COLUMNS, CHAIN)) + "\n"


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
    sandbox: str = Field(default="", description="how train.py was isolated: bwrap | none")
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

    @field_validator("commit", "parent", "proposer", "sandbox", "description", mode="before")
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
        """The row's cells as one TSV line without the chain cell (no newline)."""
        cells = []
        for name in COLUMNS:
            value = getattr(self, name)
            if isinstance(value, float):
                cells.append("nan" if math.isnan(value) else f"{value:.6g}")
            elif isinstance(value, list):
                cells.append(";".join(f"{v:.6g}" for v in value))
            else:
                cells.append(str(value))
        return "\t".join(cells)

    @property
    def succeeded(self) -> bool:
        """True for rows that produced a score (baseline/keep/discard)."""
        return self.status in ("baseline", "keep", "discard")


@dataclass
class LedgerCheck:
    """The result of verifying the file: the good rows and the first bad line, if any."""

    rows: list[LedgerRow] = field(default_factory=list)
    first_bad: int | None = None  # 1-based line number
    problem: str = ""  # "line N: what is wrong"
    bad_lines: list[str] = field(default_factory=list)  # verbatim, from first_bad on
    last_chain: str = ""


class Ledger:
    """`results.tsv` in a research workspace.

    `key` (the workspace secret) keys the hash chain; `aside` is the folder that receives
    quarantined lines (default: beside the ledger).
    """

    def __init__(
        self, path: str | Path, key: bytes | None = None, aside: str | Path | None = None
    ) -> None:
        self.path = Path(path)
        self.key = key
        self.aside = Path(aside) if aside is not None else self.path.parent
        #: stamped into every appended row that does not name its own sandbox
        self.sandbox = ""
        #: what `heal` reported during this object's life (append heals silently)
        self.healed: list[str] = []

    # -- chain ----------------------------------------------------------------------------
    def _link(self, previous: str, content: str) -> str:
        data = f"{previous}\n{content}".encode()
        if self.key:
            return hmac.new(self.key, data, hashlib.sha256).hexdigest()
        return hashlib.sha256(data).hexdigest()

    def _genesis(self) -> str:
        return self._link("", HEADER.rstrip("\n"))

    # -- reading --------------------------------------------------------------------------
    def check(self) -> LedgerCheck:
        """Verify every line and the chain; never raises for a bad line, never writes."""
        if not self.path.exists():
            return LedgerCheck(last_chain=self._genesis())
        text = self.path.read_bytes().decode("utf-8", errors="replace")
        if not text:
            return LedgerCheck(last_chain=self._genesis())
        lines = text.split("\n")
        torn = lines[-1] != ""
        if not torn:
            lines = lines[:-1]
        found = LedgerCheck(last_chain=self._genesis())
        if lines[0] + "\n" != HEADER:
            found.first_bad, found.bad_lines = 1, lines
            names = ", ".join((*COLUMNS, CHAIN))
            found.problem = f"line 1: header does not match the ledger columns ({names})"
            return found
        seen: set[int] = set()
        for number, line in enumerate(lines[1:], start=2):
            try:
                if torn and number == len(lines):
                    raise LedgerError(
                        f"line {number}: incomplete last line (no newline); the file was "
                        "cut or written outside the ledger's append"
                    )
                row, content, chain = self._parse(line, number)
                if not hmac.compare_digest(chain, self._link(found.last_chain, content)):
                    raise LedgerError(
                        f"line {number}: hash chain broken (the line was edited, forged, "
                        "moved or a line before it removed)"
                    )
                if row.trial in seen:
                    raise LedgerError(f"line {number}: duplicate trial {row.trial}")
            except LedgerError as err:
                found.first_bad, found.problem = number, str(err)
                found.bad_lines = lines[number - 1 :]
                return found
            seen.add(row.trial)
            found.rows.append(row)
            found.last_chain = chain
        return found

    def rows(self) -> list[LedgerRow]:
        """The verified rows (those before the first bad line, if any)."""
        return self.check().rows

    def _parse(self, line: str, number: int) -> tuple[LedgerRow, str, str]:
        cells = line.split("\t")
        if len(cells) != len(COLUMNS) + 1:
            raise LedgerError(
                f"line {number}: expected {len(COLUMNS) + 1} tab-separated fields, got {len(cells)}"
            )
        try:
            row = LedgerRow.model_validate(dict(zip(COLUMNS, cells[:-1], strict=True)))
        except ValidationError as err:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()
            )
            raise LedgerError(f"line {number}: {problems}") from None
        return row, "\t".join(cells[:-1]), cells[-1]

    def next_trial(self) -> int:
        """The trial number the next row should carry."""
        rows = self.rows()
        return max((r.trial for r in rows), default=-1) + 1

    # -- writing --------------------------------------------------------------------------
    @contextmanager
    def _locked_fd(self) -> Iterator[int]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # `heal` replaced the file while we waited: lock the new one
        try:
            yield fd
        finally:
            os.close(fd)  # closing releases the flock

    def ensure_header(self) -> None:
        """Create the file with its header line if it does not exist yet."""
        with self._locked_fd() as fd:
            if os.fstat(fd).st_size == 0:
                _write_all(fd, HEADER.encode())
                os.fsync(fd)

    def heal(self) -> str | None:
        """Quarantine the first bad line and all after it; a report, or None if all good."""
        with self._locked_fd():
            return self._heal_locked(self.check())

    def _heal_locked(self, found: LedgerCheck) -> str | None:
        if found.first_bad is None:
            return None
        self.aside.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        aside = self.aside / f"{self.path.name}.bad-{stamp}-line{found.first_bad}"
        raw = self.path.read_bytes().split(b"\n")
        if raw[-1] == b"":
            raw = raw[:-1]
        cut = found.first_bad - 1
        with open(aside, "ab") as fh:  # the bad lines byte for byte
            fh.write(b"".join(line + b"\n" for line in raw[cut:]))
            fh.flush()
            os.fsync(fh.fileno())
        tmp = self.path.with_name(self.path.name + ".heal")
        with open(tmp, "wb") as fh:
            fh.write(b"".join(line + b"\n" for line in raw[:cut]))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        last = found.rows[-1].trial if found.rows else None
        count = len(found.bad_lines)
        report = (
            f"{self.path}: {found.problem}; moved {count} line(s) from line {found.first_bad} "
            f"on to {aside} and carried on from "
            + (f"trial {last}" if last is not None else "an empty ledger")
        )
        self.healed.append(report)
        return report

    def append(self, row: LedgerRow) -> None:
        """Append one row atomically (healing first); refuses a trial already present."""
        if not row.sandbox and self.sandbox:
            row = row.model_copy(update={"sandbox": self.sandbox})
        with self._locked_fd() as fd:
            # Validate under the lock so a concurrent writer cannot slip a duplicate in.
            found = self.check()
            healed = self._heal_locked(found) is not None
            if not healed:
                self._write_row(fd, found, row)
        if healed:  # the file was replaced: append to the new one
            self.append(row)

    def _write_row(self, fd: int, found: LedgerCheck, row: LedgerRow) -> None:
        if any(r.trial == row.trial for r in found.rows):
            raise LedgerError(f"{self.path}: trial {row.trial} is already in the ledger")
        content = row.to_line()
        line = f"{content}\t{self._link(found.last_chain, content)}\n".encode()
        size = os.fstat(fd).st_size
        _write_all(fd, line if size else HEADER.encode() + line)
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
