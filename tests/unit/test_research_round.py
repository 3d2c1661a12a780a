"""The pure decision/record step of a research round (no git, processes or disk)."""

from __future__ import annotations

import math

import pytest

from robo_agent.core.ledger import LedgerRow
from robo_agent.core.research_decision import critical_value
from robo_agent.core.research_round import Outcome, Rules, record_round, seed_dof, seed_noise

RULES = Rules(episodes=100, z=2.0, min_margin=0.02, min_cpu_gain=0.5)


def _ok(trial: int, scores: list[float], cpu: float = 20.0) -> Outcome:
    return Outcome(trial=trial, commit=f"{trial:x}" * 8, parent="ab", proposer="optuna",
                   description=f"cand {trial}", status="ok", scores=scores,
                   repeats=len(scores), cpu_seconds=cpu, env_steps=8000)  # fmt: skip


def _baseline(scores: list[float]) -> list[LedgerRow]:
    return record_round([_ok(0, scores)], [], RULES, baseline=True)


def test_baseline_row_carries_per_seed_scores_and_cpu() -> None:
    (row,) = _baseline([0.4, 0.2])
    assert row.status == "baseline" and row.scores == [0.4, 0.2]
    assert row.score == pytest.approx(0.3) and row.spread == pytest.approx(math.sqrt(0.02))
    assert row.cpu_seconds == 20.0 and row.env_steps == 8000 and math.isnan(row.margin)


def test_only_the_best_clear_winner_of_a_round_is_kept() -> None:
    history = _baseline([0.30, 0.20])
    rows = record_round(
        [_ok(1, [0.9, 0.8]), _ok(2, [0.95, 0.9]), _ok(3, [0.3, 0.25])], history, RULES, False
    )
    assert [r.status for r in rows] == ["discard", "keep", "discard"]
    assert "sibling scored higher" in rows[0].description
    assert rows[1].incumbent == pytest.approx(0.25) and rows[1].margin > 0.02
    assert "does not beat" in rows[2].description


def test_noise_is_pooled_over_the_ledger_and_the_round() -> None:
    history = _baseline([0.30, 0.10])
    assert seed_noise(history) == pytest.approx(math.sqrt(0.02))
    assert seed_noise(history, [[0.5, 0.5]]) == pytest.approx(0.1)
    assert seed_dof(history) == 1 and seed_dof(history, [[0.5, 0.5]]) == 2
    # the margin is Student's t at the pooled 2 degrees of freedom times the pooled noise
    # 0.1 (not the baseline's own 0.14): 4.5 standard errors, so a gain of 0.25 is not
    # enough with this little evidence about the noise ...
    (row,) = record_round([_ok(1, [0.45, 0.45])], history, RULES, False)
    t2 = critical_value(RULES.z, 2)
    assert t2 == pytest.approx(4.53, abs=0.01)
    assert row.margin == pytest.approx(t2 * 0.1) and row.status == "discard"
    # ... with more rows behind the noise estimate (8 degrees of freedom) it is
    more = history + record_round([_ok(2, [0.2, 0.0, 0.2, 0.0, 0.1, 0.1, 0.1])], history,
                                  RULES, False)
    (row,) = record_round([_ok(3, [0.45, 0.45])], more, RULES, False)
    assert seed_dof(more, [[0.45, 0.45]]) == 8
    assert row.margin == pytest.approx(critical_value(RULES.z, 8) * seed_noise(
        more, [[0.45, 0.45]])) and row.status == "keep"


def test_racing_looks_raise_the_margin() -> None:
    # Bonferroni over a race's decisions: 3 looks at 2.3 % each instead of one at 2.3 %
    history = _baseline([0.30, 0.10, 0.2, 0.2])
    three = Rules(episodes=100, z=2.0, looks=3)
    (one_look,) = record_round([_ok(1, [0.45, 0.45])], history, RULES, False)
    (race,) = record_round([_ok(1, [0.45, 0.45])], history, three, False)
    assert race.margin / one_look.margin == pytest.approx(
        critical_value(2.0, 4, 3) / critical_value(2.0, 4))
    assert race.margin > one_look.margin


def test_failures_become_crash_and_timeout_rows_with_their_last_line() -> None:
    history = _baseline([0.3, 0.2])
    crash = Outcome(1, "cc", "ab", "llm", "boom", "crash", failure_line="ValueError: x")
    late = Outcome(2, "dd", "ab", "llm", "slow", "timeout", failure_line="[runner] killed")
    rows = record_round([crash, late], history, RULES, False)
    assert [r.status for r in rows] == ["crash", "timeout"]
    assert rows[0].description == "boom | ValueError: x" and math.isnan(rows[0].score)


def test_identical_candidate_is_discarded_unless_clearly_faster() -> None:
    history = _baseline([0.3, 0.2])
    same, quick = _ok(1, [0.3, 0.2], cpu=13.0), _ok(2, [0.3, 0.2], cpu=9.0)
    assert record_round([same], history, RULES, False)[0].status == "discard"
    row = record_round([quick], history, RULES, False)[0]
    assert row.status == "keep" and "55% less CPU" in row.description


def test_rows_before_per_seed_scores_still_compare() -> None:
    old = LedgerRow(trial=0, commit="ab", proposer="baseline", status="baseline", score=0.2,
                    spread=0.1, repeats=2)  # fmt: skip
    row = record_round([_ok(1, [0.9, 0.9])], [old], RULES, False)[0]
    assert row.status == "keep" and row.incumbent == pytest.approx(0.2)
