"""DeadlineClock: deadline-corrected schedule, missed deadlines counted, no catch-up burst."""

from __future__ import annotations

import time

import pytest

from robo_agent.core.deadline import DeadlineClock


def test_the_schedule_does_not_drift_by_the_work_done() -> None:
    clock = DeadlineClock(0.01)
    start = time.perf_counter()
    for _ in range(20):
        clock.tick()
        time.sleep(0.004)  # work inside the period
        clock.wait()
    # deadline-corrected: 20 periods take 20 x 10 ms, not 20 x (10 + 4) ms; the bound
    # leaves a loaded machine room (a late wake-up delays, it never shortens)
    assert 0.2 - 1e-4 <= time.perf_counter() - start < 0.27
    figures = clock.figures()
    assert figures["ticks"] == 20 and figures["target_rate_hz"] == 100
    assert "period_jitter_ms_p99" in figures


def test_overruns_count_as_missed_and_far_behind_restarts_the_schedule() -> None:
    clock = DeadlineClock(0.002)
    clock.tick()
    time.sleep(0.03)  # 15 periods late: counted once, and no burst of catch-up ticks
    clock.wait()
    assert clock.missed == 1
    t0 = time.perf_counter()
    clock.tick()
    clock.wait()
    assert time.perf_counter() - t0 >= 0.002 - 1e-4  # a full period again


def test_a_bad_period_is_refused() -> None:
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="period"):
            DeadlineClock(bad)
