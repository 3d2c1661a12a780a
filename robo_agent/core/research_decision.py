"""The keep/discard rule of the research loop: paired, with a pooled noise estimate.

Every candidate (and the baseline) is trained once per training seed `train_seeds[:n]`
— the **same** seeds for every candidate — for a fixed number of env steps, and each
run is scored by the frozen evaluator on the **same** held-out episodes (common random
numbers). A run is repeatable: the same `train.py`, seed and step budget give the same
policy whatever the machine's load. So for a candidate with per-seed scores `c_i` and
the incumbent's `p_i` on the same seeds,

    d_i = c_i - p_i,   keep  if  mean(d) > margin,
    margin = max(min_margin, z * s * sqrt(2 / n)),
    s = max(pooled seed spread, sqrt(p (1 - p) / episodes))

where the *pooled seed spread* is the within-candidate standard deviation over seeds,
pooled over every scored ledger row (a row's seeds all run the same code, so its
spread is pure seed noise whatever its mean), floored by the binomial noise of a
success rate `p` over `episodes` episodes. `sqrt(2) * s` is the noise of one paired
difference between two equally good `train.py` versions that follow different
trajectories (any real code change decorrelates the runs, so pairing by seed cannot be
assumed to cancel the seed noise); `z` (1.645 by default: one-sided 5 % per look under
that null) was chosen by measurement with racing (`bench/research_keep.py`: z = 2
left the power for a known gain at 72 %, z = 1 kept 12 % of fresh-trajectory A/A pairs).

A candidate whose scores equal the incumbent's on every seed trained the same policy
(e.g. a pure speed-up): it is kept only if it used at least `min_cpu_gain` (50 %) less
CPU time, so a clearly faster `train.py` still wins. The bar is high because CPU time
is not load-robust on a shared machine: the same 8000-step run took 18.5-28.4 CPU-s
depending on the load, and with a 15 % bar 20 of 21 comment-only A/A candidates were
"kept" as faster only because the incumbent had run while the machine was busier.

**Racing** (`wants_more_seeds`): a candidate first trains on `repeats` seeds; a close
call — a positive gain that does not clear the margin yet — earns one more seed at a
time, up to `max_repeats` (and never beyond the seeds the incumbent has scores for),
since the margin shrinks as `sqrt(2 / n)`. Clear winners and losers stop at `repeats`.

`detectable_gain` is the smallest true gain kept with 80 % probability under the same
noise model (`(z + 0.84) * s * sqrt(2 / n)`); `research status` shows it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

Z_POWER_80 = 0.8416  # one-sided normal quantile for 80 % power


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


def pooled_spread(groups: Sequence[Sequence[float]]) -> float:
    """Pooled within-group standard deviation (each group: one row's per-seed scores);
    NaN when no group has two values."""
    ss, dof = 0.0, 0
    for g in groups:
        if len(g) >= 2:
            mu = mean(g)
            ss += sum((v - mu) ** 2 for v in g)
            dof += len(g) - 1
    return math.sqrt(ss / dof) if dof else math.nan


def noise(incumbent_mean: float, seed_spread: float, episodes: int) -> float:
    """The standard deviation `s` of one run's score (see the module docstring)."""
    if episodes < 1:
        raise ValueError("episodes must be positive")
    p = min(max(incumbent_mean, 0.0), 1.0)
    binomial = math.sqrt(p * (1.0 - p) / episodes)
    return max(0.0 if math.isnan(seed_spread) else seed_spread, binomial)


def margin(
    incumbent_mean: float,
    seed_spread: float,
    n: int,
    episodes: int,
    z: float = 1.645,
    min_margin: float = 0.02,
) -> float:
    """The mean paired gain a candidate over `n` seeds must exceed."""
    if n < 1:
        raise ValueError("repeats must be positive")
    s = noise(incumbent_mean, seed_spread, episodes)
    return max(min_margin, z * s * math.sqrt(2.0 / n))


def detectable_gain(
    incumbent_mean: float,
    seed_spread: float,
    n: int,
    episodes: int,
    z: float = 1.645,
    min_margin: float = 0.02,
) -> float:
    """The smallest true mean gain kept with 80 % probability (normal approximation)."""
    s = noise(incumbent_mean, seed_spread, episodes)
    need = margin(incumbent_mean, seed_spread, n, episodes, z, min_margin)
    return need + Z_POWER_80 * s * math.sqrt(2.0 / n)


def decide(
    candidate_scores: Sequence[float],
    incumbent_scores: Sequence[float],
    seed_spread: float,
    episodes: int,
    z: float = 1.645,
    min_margin: float = 0.02,
    candidate_cpu: float = math.nan,
    incumbent_cpu: float = math.nan,
    min_cpu_gain: float = 0.5,
) -> Decision:
    """Keep or discard a candidate from its per-seed scores and the incumbent's on the
    same seeds (position i = training seed i)."""
    if not candidate_scores:
        raise ValueError("a candidate needs at least one score")
    if not incumbent_scores:
        raise ValueError("the incumbent needs per-seed scores")
    n = min(len(candidate_scores), len(incumbent_scores))
    cand, inc = list(candidate_scores[:n]), list(incumbent_scores[:n])
    m_cand, m_inc = mean(cand), mean(inc)
    s_cand = spread(list(candidate_scores))
    need = margin(m_inc, seed_spread, n, episodes, z, min_margin)
    gain = m_cand - m_inc
    if cand == inc:
        cheaper = candidate_cpu <= (1.0 - min_cpu_gain) * incumbent_cpu  # False for NaN
        if cheaper:
            saved = 1.0 - candidate_cpu / incumbent_cpu
            reason = f"same scores on all {n} seeds with {100 * saved:.0f}% less CPU"
        else:
            reason = f"same scores as the incumbent on all {n} seeds and no faster"
        return Decision(cheaper, m_cand, s_cand, m_inc, need, reason)
    keep = gain > need
    verdict = "beats" if keep else "does not beat"
    reason = f"paired gain {gain:+.3f} over {n} seeds {verdict} margin {need:.3f}"
    return Decision(keep, m_cand, s_cand, m_inc, need, reason)


def wants_more_seeds(
    candidate_scores: Sequence[float],
    incumbent_scores: Sequence[float],
    noise_groups: Sequence[Sequence[float]],
    episodes: int,
    repeats: int,
    max_repeats: int,
    z: float = 1.645,
    min_margin: float = 0.02,
) -> bool:
    """Whether a candidate with these scores so far should train on one more seed.

    `noise_groups` are the per-seed scores of the ledger's rows; the seed spread is
    pooled over them and the candidate's own scores, as the final decision pools it."""
    n = len(candidate_scores)
    if n < repeats:
        return True
    if n >= max_repeats or n >= len(incumbent_scores):
        return False
    inc = list(incumbent_scores[:n])
    gain = mean(candidate_scores) - mean(inc)
    s = pooled_spread([*noise_groups, list(candidate_scores)])
    return 0.0 < gain <= margin(mean(inc), s, n, episodes, z, min_margin)
