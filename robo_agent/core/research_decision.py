"""The noise-aware keep/discard rule of the research loop.

Every candidate (and the baseline) is trained `n` times with different training seeds
and each run is scored by the frozen evaluator on the same held-out episodes. With

* `m_inc, s_inc, n_inc` — the incumbent's mean score, sample standard deviation over
  its repeats and number of repeats (its *spread*),
* `m_cand, n_cand` — the candidate's mean over its own repeats,

the candidate is kept only if

    m_cand > m_inc + margin,   margin = max(min_margin, z * s * sqrt(1/n_inc + 1/n_cand))

where `s = max(s_inc, sqrt(p (1 - p) / episodes))` with `p = m_inc`: the incumbent's
measured spread, floored by the binomial noise of a success rate over `episodes`
held-out episodes (two repeats can agree by chance; the evaluation itself cannot be
less noisy than that). `margin` is the standard error of a difference of two means
scaled by `z` (1.0 by default: a gain of one standard error). Both the candidate's mean
and the margin go into the ledger so every decision can be re-checked by hand.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Decision:
    keep: bool
    candidate_mean: float
    candidate_spread: float
    incumbent_mean: float
    margin: float
    reason: str


def mean(values: Sequence[float]) -> float:
    return float(sum(values) / len(values)) if values else math.nan


def spread(values: Sequence[float]) -> float:
    """Sample standard deviation (n-1); 0.0 for a single value, NaN for none."""
    if not values:
        return math.nan
    if len(values) == 1:
        return 0.0
    mu = mean(values)
    return math.sqrt(sum((v - mu) ** 2 for v in values) / (len(values) - 1))


def margin(
    incumbent_mean: float,
    incumbent_spread: float,
    n_incumbent: int,
    n_candidate: int,
    episodes: int,
    z: float = 1.0,
    min_margin: float = 0.02,
) -> float:
    """The improvement a candidate must exceed (see the module docstring)."""
    if n_incumbent < 1 or n_candidate < 1 or episodes < 1:
        raise ValueError("repeats and episodes must be positive")
    p = min(max(incumbent_mean, 0.0), 1.0)
    binomial = math.sqrt(p * (1.0 - p) / episodes)
    s_inc = 0.0 if math.isnan(incumbent_spread) else incumbent_spread
    s = max(s_inc, binomial)
    return max(min_margin, z * s * math.sqrt(1.0 / n_incumbent + 1.0 / n_candidate))


def decide(
    candidate_scores: Sequence[float],
    incumbent_mean: float,
    incumbent_spread: float,
    n_incumbent: int,
    episodes: int,
    z: float = 1.0,
    min_margin: float = 0.02,
) -> Decision:
    """Keep or discard a candidate given its per-repeat scores and the incumbent's stats."""
    if not candidate_scores:
        raise ValueError("a candidate needs at least one score")
    m = mean(candidate_scores)
    s = spread(candidate_scores)
    need = margin(
        incumbent_mean,
        incumbent_spread,
        n_incumbent,
        len(candidate_scores),
        episodes,
        z,
        min_margin,
    )
    keep = m > incumbent_mean + need
    verdict = "beats" if keep else "does not beat"
    reason = f"mean {m:.3f} {verdict} incumbent {incumbent_mean:.3f} + margin {need:.3f}"
    return Decision(keep, m, s, incumbent_mean, need, reason)
