"""The decision/record step of a research round, as a pure function.

`record_round` turns what a round measured (one `Outcome` per candidate) and the ledger
so far into the ledger rows to append: it applies the keep rule of
`robo_agent.core.research_decision` to every candidate that produced scores, keeps at
most one (the highest mean among those that clear the rule), and fills every column.
The runner does the effects — appending the rows, moving the branch, writing logs —
so this step can be tested, and re-checked by hand, without git, processes or disk.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from robo_agent.core.ledger import LedgerRow, best_row
from robo_agent.core.research_decision import (
    Decision,
    decide,
    mean,
    pooled_dof,
    pooled_spread,
    spread,
)


@dataclass(frozen=True)
class Rules:
    """The decision settings of `research.yaml`."""

    episodes: int
    z: float = 1.645
    min_margin: float = 0.02
    min_cpu_gain: float = 0.5
    looks: int = 1  # decisions a race may take: max_repeats - repeats + 1


@dataclass(frozen=True)
class Outcome:
    """What one candidate's round produced (per-repeat figures already averaged)."""

    trial: int
    commit: str
    parent: str
    proposer: str
    description: str
    status: str  # ok | crash | timeout
    scores: list[float] = field(default_factory=list)  # per training seed, seed order
    repeats: int = 0
    train_seconds: float = math.nan
    cpu_seconds: float = math.nan
    env_steps: int = 0
    peak_mem_mb: float = math.nan
    final_distance: float = math.nan
    smoothness: float = math.nan
    wall_seconds: float = math.nan
    failure_line: str = ""  # last line of the failure log (crash/timeout)


def _noise_groups(rows: Sequence[LedgerRow], extra: Sequence[Sequence[float]]
                  ) -> list[Sequence[float]]:
    return [*(r.scores for r in rows if r.succeeded and len(r.scores) >= 2), *extra]


def seed_noise(rows: Sequence[LedgerRow], extra: Sequence[Sequence[float]] = ()) -> float:
    """Pooled within-row seed spread of every scored row (and `extra` score groups)."""
    return pooled_spread(_noise_groups(rows, extra))


def seed_dof(rows: Sequence[LedgerRow], extra: Sequence[Sequence[float]] = ()) -> int:
    """Degrees of freedom of `seed_noise` over the same rows and groups."""
    return pooled_dof(_noise_groups(rows, extra))


def _base(o: Outcome) -> dict:
    return {
        "trial": o.trial,
        "commit": o.commit,
        "parent": o.parent,
        "proposer": o.proposer,
        "repeats": o.repeats,
        "train_seconds": o.train_seconds,
        "cpu_seconds": o.cpu_seconds,
        "env_steps": o.env_steps,
        "peak_mem_mb": o.peak_mem_mb,
        "wall_seconds": o.wall_seconds,
    }


def record_round(
    outcomes: Sequence[Outcome], history: Sequence[LedgerRow], rules: Rules, baseline: bool
) -> list[LedgerRow]:
    """The ledger rows for one round, in the order of `outcomes`.

    `history` is the ledger before the round; its incumbent (`best_row`) is the
    reference unless `baseline` is set (then scored outcomes become `baseline` rows).
    """
    inc = None if baseline else best_row(list(history))
    fresh = [o.scores for o in outcomes if o.status == "ok"]
    noise, dof = seed_noise(history, fresh), seed_dof(history, fresh)
    decisions: dict[int, Decision] = {}
    if inc is not None:
        inc_scores = inc.scores or [inc.score] * max(inc.repeats, 1)  # rows before per-seed scores
        for o in outcomes:
            if o.status == "ok" and o.scores:
                decisions[o.trial] = decide(
                    o.scores, inc_scores, noise, rules.episodes, rules.z, rules.min_margin,
                    o.cpu_seconds, inc.cpu_seconds, rules.min_cpu_gain, dof, rules.looks,
                )  # fmt: skip
    winners = [t for t, d in decisions.items() if d.keep]
    winner = max(winners, key=lambda t: decisions[t].candidate_mean, default=None)
    rows: list[LedgerRow] = []
    for o in outcomes:
        if o.status != "ok" or not o.scores:
            status = o.status if o.status in ("crash", "timeout") else "crash"
            note = f"{o.description} | {o.failure_line[:200]}"
            rows.append(LedgerRow(**_base(o), status=status, description=note))
            continue
        stats = {
            "score": mean(o.scores),
            "spread": spread(o.scores),
            "scores": list(o.scores),
            "final_distance": o.final_distance,
            "smoothness": o.smoothness,
        }
        if inc is None:
            rows.append(LedgerRow(**_base(o), **stats, status="baseline",
                                  description=o.description))  # fmt: skip
            continue
        d = decisions[o.trial]
        status = "keep" if o.trial == winner else "discard"
        note = d.reason if status == "keep" or not d.keep else (
            f"{d.reason}; a sibling scored higher"
        )  # fmt: skip
        rows.append(LedgerRow(**_base(o), **stats, incumbent=d.incumbent_mean, margin=d.margin,
                              status=status, description=f"{o.description} ({note})"))  # fmt: skip
    return rows
