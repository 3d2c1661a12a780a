"""The keep/discard rule of the research loop: paired, with a pooled noise estimate.

Every candidate (and the baseline) is trained once per training seed `train_seeds[:n]`
— the **same** seeds for every candidate — for a fixed number of env steps, and each
run is scored by the frozen evaluator on the **same** held-out episodes (common random
numbers). A run is repeatable: the same `train.py`, seed and step budget give the same
policy whatever the machine's load. So for a candidate with per-seed scores `c_i` and
the incumbent's `p_i` on the same seeds,

    d_i = c_i - p_i,   keep  if  mean(d) > margin,
    margin = max(min_margin, t * s * sqrt(2 / n)),
    s = max(pooled seed spread, sqrt(p (1 - p) / episodes))

where the *pooled seed spread* is the within-candidate standard deviation over seeds,
pooled over every scored ledger row (a row's seeds all run the same code, so its
spread is pure seed noise whatever its mean), floored by the binomial noise of a
success rate `p` over `episodes` episodes. `sqrt(2) * s` is the noise of one paired
difference between two equally good `train.py` versions that follow different
trajectories (any real code change decorrelates the runs, so pairing by seed cannot be
assumed to cancel the seed noise).

`t` is the critical value of the false-keep rate `alpha` that `z` names (the one-sided
normal tail above `z`: 5 % for the default 1.645), taken from Student's t at the pooled
spread's degrees of freedom, because `s` is estimated from a handful of seeds (with the
normal quantile the rule kept 13 % of fresh-trajectory A/A candidates, racing included:
`bench/research_keep.py`), and split over racing's looks (Bonferroni: `alpha / looks`
at each of the `max_repeats - repeats + 1` decisions a race may take), so the whole race
keeps a null candidate at most `alpha` of the time whatever seed it stops at. Without
a spread estimate (no row with two seeds yet) the normal quantile is used.

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
noise model (`(t + 0.84) * s * sqrt(2 / n)`); `research status` shows it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

Z_POWER_80 = 0.8416  # one-sided normal quantile for 80 % power
_NORMAL = NormalDist()


def student_t_cdf(t: float, dof: int) -> float:
    """P(T <= t) for Student's t with a positive integer `dof` (closed forms for whole
    degrees of freedom, Abramowitz & Stegun 26.7.3-4: no special functions needed)."""
    if dof < 1:
        raise ValueError("degrees of freedom must be a positive integer")
    theta = math.atan(t / math.sqrt(dof))
    s, c2 = math.sin(theta), math.cos(theta) ** 2
    if dof % 2:  # odd: A = (2/pi) (theta + sin cos (1 + 2/3 cos^2 + 2.4/3.5 cos^4 ...))
        term = total = math.cos(theta) if dof > 1 else 0.0
        for k in range(1, (dof - 1) // 2):
            term *= c2 * (2 * k) / (2 * k + 1)
            total += term
        a = 2.0 / math.pi * (theta + s * total)
    else:  # even: A = sin (1 + 1/2 cos^2 + 1.3/2.4 cos^4 ...)
        term = total = 1.0
        for k in range(1, dof // 2):
            term *= c2 * (2 * k - 1) / (2 * k)
            total += term
        a = s * total
    return 0.5 * (1.0 + a)


def student_t_quantile(p: float, dof: int) -> float:
    """The t with P(T <= t) = p, by bisection on `student_t_cdf` (p in (0.5, 1))."""
    if not 0.5 < p < 1.0:
        raise ValueError("p must lie in (0.5, 1)")
    lo, hi = 0.0, 1.0
    while student_t_cdf(hi, dof) < p:
        hi *= 2.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if student_t_cdf(mid, dof) < p else (lo, mid)
    return 0.5 * (lo + hi)


def critical_value(z: float, dof: int | None = None, looks: int = 1) -> float:
    """The multiple of the standard error a gain must exceed: one-sided false-keep rate
    `alpha = P(N(0,1) > z)` split over `looks` decisions, from Student's t at `dof`
    degrees of freedom (the normal distribution when `dof` is None or 0)."""
    if looks < 1:
        raise ValueError("looks must be positive")
    if z <= 0:
        return z  # a rule that keeps any positive gain: nothing to correct
    p = 1.0 - (1.0 - _NORMAL.cdf(z)) / looks
    if not dof:
        return _NORMAL.inv_cdf(p)
    return student_t_quantile(p, dof)


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


def pooled_dof(groups: Sequence[Sequence[float]]) -> int:
    """Degrees of freedom of `pooled_spread` over the same groups."""
    return sum(len(g) - 1 for g in groups if len(g) >= 2)


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
    dof: int | None = None,
    looks: int = 1,
) -> float:
    """The mean paired gain a candidate over `n` seeds must exceed (`dof`: of the seed
    spread's estimate; `looks`: decisions a race may take, see the module)."""
    if n < 1:
        raise ValueError("repeats must be positive")
    s = noise(incumbent_mean, seed_spread, episodes)
    return max(min_margin, critical_value(z, dof, looks) * s * math.sqrt(2.0 / n))


def detectable_gain(
    incumbent_mean: float,
    seed_spread: float,
    n: int,
    episodes: int,
    z: float = 1.645,
    min_margin: float = 0.02,
    dof: int | None = None,
    looks: int = 1,
) -> float:
    """The smallest true mean gain kept with 80 % probability at `n` seeds (normal
    approximation of the gain's spread around the margin)."""
    s = noise(incumbent_mean, seed_spread, episodes)
    need = margin(incumbent_mean, seed_spread, n, episodes, z, min_margin, dof, looks)
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
    dof: int | None = None,
    looks: int = 1,
) -> Decision:
    """Keep or discard a candidate from its per-seed scores and the incumbent's on the
    same seeds (position i = training seed i); `dof` of `seed_spread`, `looks` of the
    race (see the module)."""
    if not candidate_scores:
        raise ValueError("a candidate needs at least one score")
    if not incumbent_scores:
        raise ValueError("the incumbent needs per-seed scores")
    n = min(len(candidate_scores), len(incumbent_scores))
    cand, inc = list(candidate_scores[:n]), list(incumbent_scores[:n])
    m_cand, m_inc = mean(cand), mean(inc)
    s_cand = spread(list(candidate_scores))
    need = margin(m_inc, seed_spread, n, episodes, z, min_margin, dof, looks)
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
    looks: int = 1,
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
    groups = [*noise_groups, list(candidate_scores)]
    need = margin(mean(inc), pooled_spread(groups), n, episodes, z, min_margin,
                  pooled_dof(groups), looks)
    return 0.0 < gain <= need
