"""The paired keep rule, its noise model and the smallest detectable gain."""

from __future__ import annotations

import math

import pytest

from robo_agent.core.research_decision import (
    critical_value,
    decide,
    detectable_gain,
    margin,
    noise,
    pooled_dof,
    pooled_spread,
    spread,
    student_t_cdf,
    student_t_quantile,
)


def test_student_t_matches_scipy() -> None:
    # scipy is not a dependency of core (it comes with panda-gym): the reference only
    stats = pytest.importorskip("scipy.stats")
    for dof in [*range(1, 13), 20, 31, 60]:
        for t in (-2.5, 0.0, 0.3, 1.0, 2.1, 4.0, 12.0):
            assert student_t_cdf(t, dof) == pytest.approx(stats.t.cdf(t, dof), abs=1e-12)
        for p in (0.6, 0.9, 0.95, 0.975, 0.9833, 0.995):
            assert student_t_quantile(p, dof) == pytest.approx(stats.t.ppf(p, dof), rel=1e-9)
    with pytest.raises(ValueError):
        student_t_cdf(1.0, 0)
    with pytest.raises(ValueError):
        student_t_quantile(0.4, 3)


def test_critical_value_is_t_at_the_noise_dof_split_over_looks() -> None:
    assert critical_value(1.645) == pytest.approx(1.645, abs=1e-9)  # normal, one look
    assert critical_value(1.645, None, 3) == pytest.approx(2.128, abs=1e-3)  # 5 % / 3
    assert critical_value(1.645, 4) == pytest.approx(2.132, abs=1e-3)  # t(0.95, 4)
    assert critical_value(1.645, 4, 3) == pytest.approx(3.186, abs=1e-3)
    # fewer degrees of freedom, more looks: a higher bar; many dof: back to the normal
    assert critical_value(1.645, 2) > critical_value(1.645, 4) > critical_value(1.645, 100)
    assert critical_value(1.645, 10_000) == pytest.approx(1.645, abs=1e-3)
    assert critical_value(0.0, 3, 3) == 0.0
    assert pooled_dof([[0.1, 0.3], [0.5], [0.2, 0.2, 0.4]]) == 3


def test_spread_is_sample_std() -> None:
    assert spread([0.5]) == 0.0
    assert spread([0.4, 0.6]) == pytest.approx(math.sqrt(0.02))
    assert math.isnan(spread([]))


def test_pooled_spread_pools_within_group_variance_only() -> None:
    # two groups with very different means but the same within-group spread
    assert pooled_spread([[0.1, 0.3], [0.8, 1.0]]) == pytest.approx(math.sqrt(0.02))
    assert pooled_spread([[0.1, 0.3, 0.2], [0.5]]) == pytest.approx(0.1)
    assert math.isnan(pooled_spread([[0.4], []]))


def test_noise_is_floored_by_binomial_evaluation_noise() -> None:
    assert noise(0.5, 0.0, 100) == pytest.approx(0.05)
    assert noise(0.5, math.nan, 100) == pytest.approx(0.05)
    assert noise(0.5, 0.3, 100) == pytest.approx(0.3)
    with pytest.raises(ValueError):
        noise(0.5, 0.1, 0)


def test_margin_is_z_standard_errors_of_a_paired_mean() -> None:
    assert margin(0.5, 0.2, 2, 100, z=2.0, min_margin=0.0) == pytest.approx(2 * 0.2)
    assert margin(0.5, 0.2, 8, 100, z=2.0, min_margin=0.0) == pytest.approx(2 * 0.2 * 0.5)
    assert margin(1.0, 0.0, 2, 100, z=2.0, min_margin=0.02) == 0.02
    with pytest.raises(ValueError):
        margin(0.5, 0.1, 0, 100)


def test_detectable_gain_adds_the_80_percent_power_quantile() -> None:
    m = margin(0.4, 0.1, 2, 100, 2.0, 0.02)
    assert detectable_gain(0.4, 0.1, 2, 100, 2.0, 0.02) == pytest.approx(m + 0.8416 * 0.1)
    # more seeds, smaller detectable gain
    assert detectable_gain(0.4, 0.1, 8, 100) < detectable_gain(0.4, 0.1, 2, 100)


def test_decide_keeps_a_clear_paired_gain_only() -> None:
    d = decide([0.80, 0.74], [0.40, 0.30], seed_spread=0.1, episodes=100, z=2.0)
    assert d.keep and d.candidate_mean == pytest.approx(0.77)
    assert d.incumbent_mean == pytest.approx(0.35) and d.margin == pytest.approx(0.2)
    small = decide([0.45, 0.40], [0.40, 0.30], seed_spread=0.1, episodes=100)
    assert not small.keep and "does not beat" in small.reason
    worse = decide([0.0, 0.1], [0.40, 0.30], seed_spread=0.1, episodes=100)
    assert not worse.keep


def test_identical_scores_keep_only_a_clearly_cheaper_candidate() -> None:
    same = decide([0.4, 0.3], [0.4, 0.3], 0.1, 100, candidate_cpu=19.0, incumbent_cpu=20.0)
    assert not same.keep and "no faster" in same.reason
    # 40 % less CPU is within what load alone does to CPU time here: not a keep
    load = decide([0.4, 0.3], [0.4, 0.3], 0.1, 100, candidate_cpu=12.0, incumbent_cpu=20.0)
    assert not load.keep
    faster = decide([0.4, 0.3], [0.4, 0.3], 0.1, 100, candidate_cpu=8.0, incumbent_cpu=20.0)
    assert faster.keep and "60% less CPU" in faster.reason
    unknown = decide([0.4, 0.3], [0.4, 0.3], 0.1, 100)  # no CPU figures: never a keep
    assert not unknown.keep


def test_decide_pairs_by_seed_position_and_refuses_empty_input() -> None:
    # the candidate ran one extra seed: only the shared seeds are compared
    d = decide([0.9, 0.9, 0.0], [0.1, 0.1], 0.05, 100)
    assert d.keep and d.incumbent_mean == pytest.approx(0.1)
    with pytest.raises(ValueError):
        decide([], [0.1], 0.1, 100)
    with pytest.raises(ValueError):
        decide([0.1], [], 0.1, 100)


def test_racing_gives_close_calls_more_seeds_and_stops_clear_ones() -> None:
    from robo_agent.core.research_decision import wants_more_seeds

    inc = [0.3, 0.2, 0.4, 0.3]
    groups = [inc]
    kw = {"episodes": 100, "repeats": 2, "max_repeats": 4, "z": 2.0, "min_margin": 0.02}
    assert wants_more_seeds([0.9], inc, groups, **kw)  # fewer than `repeats` seeds
    assert wants_more_seeds([0.4, 0.35], inc, groups, **kw)  # gain +0.125: close
    assert not wants_more_seeds([0.95, 0.9], inc, groups, **kw)  # clear winner
    assert not wants_more_seeds([0.1, 0.0], inc, groups, **kw)  # loser
    assert not wants_more_seeds([0.4, 0.35, 0.4, 0.3], inc, groups, **kw)  # max_repeats
    assert not wants_more_seeds([0.4, 0.35], inc[:2], groups, **kw)  # incumbent has no more
