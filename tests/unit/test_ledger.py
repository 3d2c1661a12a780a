"""Ledger: atomic appends, validation with line numbers, no duplicates."""

from __future__ import annotations

import math
import multiprocessing as mp
from pathlib import Path

import pytest

from robo_agent.core.ledger import COLUMNS, HEADER, Ledger, LedgerError, LedgerRow, best_row


def _row(trial: int, status: str = "discard", score: float = 0.5, **kw) -> LedgerRow:
    return LedgerRow(trial=trial, proposer="optuna", status=status, score=score, **kw)


def test_append_and_read_round_trip(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "results.tsv")
    assert ledger.rows() == [] and ledger.next_trial() == 0
    ledger.append(_row(0, "baseline", 0.4, commit="abc123", description="tab\there\nnewline"))
    ledger.append(_row(1, "crash", math.nan))
    rows = ledger.rows()
    assert [r.trial for r in rows] == [0, 1]
    assert rows[0].description == "tab here newline"
    assert rows[0].commit == "abc123" and rows[0].score == pytest.approx(0.4)
    assert math.isnan(rows[1].score)
    assert ledger.next_trial() == 2
    text = (tmp_path / "results.tsv").read_text()
    assert text.startswith(HEADER) and text.count("\n") == 3


def test_duplicate_trial_refused_and_nothing_written(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "results.tsv")
    ledger.append(_row(0, "baseline"))
    before = ledger.path.read_bytes()
    with pytest.raises(LedgerError, match="already in the ledger"):
        ledger.append(_row(0, "keep"))
    assert ledger.path.read_bytes() == before


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ("1\tonly\tthree", f"expected {len(COLUMNS)} tab-separated fields"),
        ("\t".join(["x"] + [""] * (len(COLUMNS) - 1)), "trial"),
        (
            "\t".join(["1", "", "", "optuna", "0.5"] + ["nan"] * 4 + ["0", "bogus"] + ["nan"] * 6
                      + ["nan", ""]),
            "status",
        ),
    ],
)
def test_malformed_line_names_line_number(tmp_path: Path, bad_line: str, message: str) -> None:
    ledger = Ledger(tmp_path / "results.tsv")
    ledger.append(_row(0, "baseline"))
    with ledger.path.open("a") as fh:
        fh.write(bad_line + "\n")
    before = ledger.path.read_bytes()
    with pytest.raises(LedgerError, match=rf"line 3: .*{message}"):
        ledger.rows()
    with pytest.raises(LedgerError, match="line 3"):
        ledger.append(_row(5))
    assert ledger.path.read_bytes() == before


def test_torn_last_line_and_bad_header(tmp_path: Path) -> None:
    path = tmp_path / "results.tsv"
    path.write_text(HEADER + "0\tabc")
    with pytest.raises(LedgerError, match="line 2: incomplete last line"):
        Ledger(path).rows()
    path.write_text("trial\tscore\n")
    with pytest.raises(LedgerError, match="line 1: header"):
        Ledger(path).rows()


def test_commit_must_be_hex(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="git commit"):
        _row(0, commit="not-a-hash")


def _writer(path: str, start: int) -> None:
    ledger = Ledger(path)
    for i in range(start, start + 25):
        ledger.append(_row(i, description="x" * 300))


def test_concurrent_appends_from_processes_never_interleave(tmp_path: Path) -> None:
    path = str(tmp_path / "results.tsv")
    procs = [mp.get_context("fork").Process(target=_writer, args=(path, k * 100)) for k in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    rows = Ledger(path).rows()
    assert len(rows) == 75 and len({r.trial for r in rows}) == 75


def test_best_row_is_last_incumbent() -> None:
    rows = [_row(0, "baseline", 0.3), _row(1, "keep", 0.5), _row(2, "discard", 0.9)]
    assert best_row(rows).trial == 1
    assert best_row([_row(0, "crash")]) is None
