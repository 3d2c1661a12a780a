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


def _valid_line(ledger: Ledger, trial: int) -> str:
    """A well-formed line for `trial` chained to the current end (not written)."""
    content = _row(trial).to_line()
    return f"{content}\t{ledger._link(ledger.check().last_chain, content)}"


@pytest.mark.parametrize(
    ("make_line", "message"),
    [
        (lambda led: "1\tonly\tthree", f"expected {len(COLUMNS) + 1} tab-separated fields"),
        (lambda led: "x" + _valid_line(led, 1)[1:], "trial"),
        (lambda led: _valid_line(led, 1).replace("\tdiscard\t", "\tbogus\t"), "status"),
        (lambda led: _valid_line(led, 1).replace("\t0.5\t", "\t0.99\t", 1), "hash chain"),
        (lambda led: _valid_line(led, 0), "duplicate trial 0"),
    ],
)
def test_bad_line_is_named_and_moved_aside_verbatim(tmp_path: Path, make_line, message) -> None:
    ledger = Ledger(tmp_path / "results.tsv", aside=tmp_path / "aside")
    ledger.append(_row(0, "baseline"))
    bad = make_line(ledger)
    with ledger.path.open("a") as fh:
        fh.write(bad + "\n")
    found = ledger.check()
    assert found.first_bad == 3 and message in found.problem, found.problem
    assert [r.trial for r in ledger.rows()] == [0]  # the verified prefix
    report = ledger.heal()
    assert report is not None and "line 3" in report and "carried on from trial 0" in report
    (aside,) = (tmp_path / "aside").iterdir()
    assert aside.read_text() == bad + "\n"
    ledger.append(_row(1))
    assert [r.trial for r in ledger.rows()] == [0, 1] and ledger.check().problem == ""
    assert ledger.heal() is None


def test_torn_last_line_and_bad_header(tmp_path: Path) -> None:
    path = tmp_path / "results.tsv"
    path.write_text(HEADER + "0\tabc")
    found = Ledger(path).check()
    assert found.first_bad == 2 and "incomplete last line" in found.problem
    path.write_text("trial\tscore\n")
    found = Ledger(path).check()
    assert found.first_bad == 1 and "header" in found.problem
    Ledger(path, aside=tmp_path).append(_row(0, "baseline"))  # append heals first
    assert [r.trial for r in Ledger(path).rows()] == [0]
    assert (next(tmp_path.glob("results.tsv.bad-*-line1"))).read_text() == "trial\tscore\n"


def test_forged_row_needs_the_key(tmp_path: Path) -> None:
    path = tmp_path / "results.tsv"
    ledger = Ledger(path, key=b"k" * 32)
    ledger.append(_row(0, "baseline", 0.2))
    forger = Ledger(path, key=b"guess" * 7)  # a well-formed row chained with another key
    content = _row(1, "keep", 0.99).to_line()
    with path.open("a") as fh:
        fh.write(f"{content}\t{forger._link(forger.check().last_chain, content)}\n")
    assert forger.check().first_bad == 2  # even the header link needs the key
    found = ledger.check()
    assert found.first_bad == 3 and "hash chain broken" in found.problem
    assert best_row(ledger.rows()).trial == 0


def test_edited_middle_row_quarantines_it_and_all_after(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "results.tsv")
    for t in range(4):
        ledger.append(_row(t, "baseline" if t == 0 else "discard"))
    lines = ledger.path.read_text().splitlines(keepends=True)
    lines[2] = lines[2].replace("optuna", "optunb")
    ledger.path.write_text("".join(lines))
    report = ledger.heal()
    assert report is not None and "line 3: hash chain broken" in report and "3 line(s)" in report
    assert [r.trial for r in ledger.rows()] == [0]
    assert next(tmp_path.glob("results.tsv.bad-*")).read_text() == "".join(lines[2:])


def test_sandbox_mode_is_stamped_into_rows(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "results.tsv")
    ledger.sandbox = "none"
    ledger.append(_row(0, "baseline"))
    ledger.append(_row(1, sandbox="bwrap"))
    assert [r.sandbox for r in ledger.rows()] == ["none", "bwrap"]


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
