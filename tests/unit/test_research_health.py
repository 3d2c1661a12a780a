"""Run warnings and the smallest detectable gain, from ledger rows alone."""

from __future__ import annotations

import math

from robo_agent.core.ledger import LedgerRow
from robo_agent.core.research_health import smallest_detectable_gain, warnings


def _row(trial: int, status: str, scores: list[float], **kw) -> LedgerRow:
    fields = {"train_seconds": 20.0, "cpu_seconds": 19.0, "env_steps": 8000} | kw
    return LedgerRow(trial=trial, commit="ab", proposer="optuna", status=status, scores=scores,
                     score=sum(scores) / len(scores), repeats=len(scores), **fields)  # fmt: skip


def test_a_healthy_run_has_no_warnings_and_a_detectable_gain() -> None:
    rows = [_row(0, "baseline", [0.5, 0.3]), _row(1, "keep", [0.9, 0.8], incumbent=0.4,
                                                 margin=0.3)]  # fmt: skip
    assert warnings(rows, 8000, 2) == []
    gain = smallest_detectable_gain(rows, 2, 100, 2.0, 0.02)
    assert 0.1 < gain < 1.0
    assert math.isnan(smallest_detectable_gain([], 2, 100, 2.0, 0.02))


def test_baseline_near_zero_and_all_zero_trials_are_called_out() -> None:
    rows = [_row(0, "baseline", [0.0, 0.0])] + [
        _row(t, "discard", [0.0, 0.0], incumbent=0.0, margin=0.02) for t in (1, 2, 3)
    ]
    text = " ".join(warnings(rows, 8000, 2))
    assert "baseline scores 0.000" in text and "--budget-steps 16000" in text
    assert "every trial scored 0" in text and "tied with the incumbent" in text


def test_ties_overload_and_cpu_cap_are_called_out() -> None:
    rows = [_row(0, "baseline", [0.5, 0.3], train_seconds=100.0)] + [
        _row(t, "discard", [0.45, 0.35], incumbent=0.4, margin=0.3, train_seconds=100.0)
        for t in (1, 2, 3)
    ] + [_row(4, "discard", [0.1, 0.1], env_steps=3000, incumbent=0.4, margin=0.3)]
    text = " ".join(warnings(rows, 8000, 2))
    assert "overloaded" in text and "trial(s) 4 hit the CPU-seconds cap" in text
    assert "tied" not in text  # trial 4 is a clear loser, not a tie
    ties = " ".join(warnings(rows[:4], 8000, 2))
    assert "every one of 3 trials tied" in ties and "--repeats 4" in ties
