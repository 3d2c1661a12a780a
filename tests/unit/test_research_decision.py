"""The noise-aware keep/discard rule."""

from __future__ import annotations

import math

import pytest

from robo_agent.core.research_decision import decide, margin, spread


def test_spread_is_sample_std() -> None:
    assert spread([0.5]) == 0.0
    assert spread([0.4, 0.6]) == pytest.approx(math.sqrt(0.02))
    assert math.isnan(spread([]))


def test_margin_uses_incumbent_spread_floored_by_binomial_noise() -> None:
    # spread 0 from two agreeing repeats: the binomial noise of 100 episodes still applies
    m = margin(0.5, 0.0, 2, 2, episodes=100, z=1.0, min_margin=0.0)
    assert m == pytest.approx(math.sqrt(0.25 / 100) * math.sqrt(1.0))
    # a large measured spread dominates
    assert margin(0.5, 0.2, 2, 2, 100, 1.0, 0.0) == pytest.approx(0.2)
    # the floor applies when the incumbent is saturated
    assert margin(1.0, 0.0, 2, 2, 100, 1.0, 0.02) == 0.02
    with pytest.raises(ValueError):
        margin(0.5, 0.1, 0, 1, 100)


def test_decide_keeps_only_clear_improvements() -> None:
    d = decide([0.70, 0.74], incumbent_mean=0.5, incumbent_spread=0.05, n_incumbent=2, episodes=100)
    assert d.keep and d.candidate_mean == pytest.approx(0.72)
    noisy = decide(
        [0.55, 0.57], incumbent_mean=0.5, incumbent_spread=0.1, n_incumbent=2, episodes=100
    )
    assert not noisy.keep and noisy.margin == pytest.approx(0.1)
    assert "does not beat" in noisy.reason
