"""DeadlineClock: deadline-corrected schedule, missed deadlines counted, no catch-up burst."""

from __future__ import annotations

import time

import numpy as np
import pytest

from robo_agent.core.deadline import DeadlineClock, Histogram, PhaseLock


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


def _locked_run(period: float, input_period: float, ticks: int, lead: float = 0.0002,
                jitter=None) -> tuple[PhaseLock, list[float], list[float]]:
    """Simulated time: inputs every `input_period` (+ jitter), ticks on a schedule that the
    lock corrects; returns the lock, the tick times and each tick's input age."""
    lock = PhaseLock(period, lead)
    arrivals = iter(k * input_period + 0.00037 + (jitter(k) if jitter else 0.0)
                    for k in range(10**7))
    nxt = next(arrivals)
    deadline, times, ages = 0.0, [], []
    for _ in range(ticks):
        while nxt <= deadline:
            lock.arrival(nxt)
            nxt = next(arrivals)
        times.append(deadline)
        ages.append(deadline - lock.last_arrival if lock.last_arrival is not None else -1)
        deadline += period + lock.correction(deadline)
    return lock, times, ages


def test_the_phase_lock_reads_each_state_lead_after_it_arrived_at_the_same_rate() -> None:
    lock, times, ages = _locked_run(0.002, 0.001, 600)
    assert lock.locked
    assert max(abs(a - 0.0002) for a in ages[-200:]) < 5e-6  # free-running: up to 1 ms
    periods = np.diff(times)
    assert np.abs(periods - 0.002).max() <= 0.02 * 0.002 + 1e-12  # never a jerk
    assert abs(np.mean(periods[-400:]) - 0.002) < 1e-6


def test_late_inputs_do_not_drag_the_rate() -> None:
    rng = np.random.default_rng(0)
    late = rng.exponential(0.0002, 10**5) * (rng.random(10**5) < 0.1)  # 10 % late, heavy tail
    lock, times, _ = _locked_run(0.002, 0.001, 5000, jitter=lambda k: late[k])
    assert lock.locked
    assert abs((times[-1] - times[500]) / (len(times) - 501) - 0.002) < 0.002 * 0.001


def test_an_input_is_overdue_only_between_half_a_period_late_and_a_pause() -> None:
    lock, _, _ = _locked_run(0.002, 0.001, 600)
    last = lock.last_arrival
    assert last is not None and lock.input_period is not None
    ts = lock.input_period
    assert not lock.overdue(last + 0.0002)  # on time: the tick reads the newest input
    assert not lock.overdue(last + 0.0002 + 0.4 * ts)
    assert lock.overdue(last + 0.0002 + 0.6 * ts)  # the next one should be here by now
    assert lock.overdue(last + 0.0002 + 1.9 * ts)
    assert not lock.overdue(last + 0.0002 + 2.5 * ts)  # paused: nothing to wait for
    free, _, _ = _locked_run(0.002, 0.01, 300)  # not locked: never overdue
    assert not free.overdue(free.last_arrival + 0.008)


def test_no_lock_on_a_slower_or_incommensurate_stream_or_a_paused_one() -> None:
    for input_period in (1 / 300, 0.01):
        lock, times, _ = _locked_run(0.002, input_period, 300)
        assert not lock.locked and lock.correction(times[-1]) == 0.0
        assert np.allclose(np.diff(times), 0.002)
    lock, times, _ = _locked_run(0.002, 0.001, 300)
    assert lock.correction(times[-1] + 0.5) == 0.0  # no input for 0.5 s: run free
    with pytest.raises(ValueError, match="lead"):
        PhaseLock(0.002, 0.002)


def test_the_histogram_percentiles_match_the_samples_within_one_bin() -> None:
    rng = np.random.default_rng(1)
    samples = rng.gamma(2.0, 0.0002, 20000)
    hist = Histogram()
    for x in samples:
        hist.add(float(x))
    for q in (50, 99):
        exact = float(np.percentile(samples, q))
        assert exact <= hist.percentile(q) <= exact + hist.resolution + 1e-12
    hist.add(1.0)  # beyond the last bin: counted there, the maximum kept
    assert hist.count == 20001 and hist.max == 1.0
    assert np.isnan(Histogram().percentile(99))
