"""`DeadlineClock`: a fixed-rate schedule for a control loop, with its own timing figures.

Deadline-corrected (deadline += period, never `sleep(dt)`, so the rate does not drift by
the work done each tick); a tick that starts after its deadline counts as missed, and a
loop far behind restarts its schedule rather than bursting to catch up. The wait sleeps
until `spin` seconds before the deadline and spins the rest: the OS wakes a sleeper late
by up to a scheduler tick, which at 500 Hz is a large share of the 2 ms period.

`PhaseLock` keeps the ticks a fixed lead after the arrivals of an input stream whose
period divides the control period (e.g. `/joint_states` at 1 kHz, control at 500 Hz):
a free-running schedule samples such a stream at a random phase, so the state a command
is computed from is up to one input period old; a locked one reads it `lead` after it
came in, the way ros2_control's read -> update -> write cycle does.

Pure: the standard library and numpy only.
"""

from __future__ import annotations

import time

import numpy as np

#: s before each deadline spent spinning instead of sleeping (CPU cost: spin / period)
SPIN_S = 0.0003


class DeadlineClock:
    """Call `tick()` at the start of every period's work and `wait()` after it (or, in a
    loop that does other work between ticks, `advance()`, `due_in()` and
    `spin_to_deadline()`)."""

    def __init__(self, period: float, spin: float = SPIN_S) -> None:
        if not period > 0:
            raise ValueError(f"control period must be > 0 s, got {period!r}")
        self.period = float(period)
        self.spin = max(0.0, min(float(spin), self.period / 2))
        self.deadline: float | None = None
        self.missed = 0
        self.ticks = 0
        self.first: float | None = None
        self.last: float | None = None
        self.jitter = Histogram()  # |tick-to-tick interval - period|, whole run
        self.shifted = 0.0  # s the schedule was moved by `shift` (phase lock), in total

    def tick(self) -> float:
        """Record the start of one tick; returns its time (`time.perf_counter`)."""
        now = time.perf_counter()
        if self.deadline is None:
            self.deadline = now
        if self.first is None:
            self.first = now
        self.ticks += 1
        if self.last is not None:
            self.jitter.add(abs(now - self.last - self.period))
        self.last = now
        return now

    def advance(self) -> float:
        """After a tick's work: move to the next deadline, counting a miss if it has
        already passed; returns the seconds left until it."""
        if self.deadline is None:
            self.deadline = time.perf_counter()
        self.deadline += self.period
        delay = self.deadline - time.perf_counter()
        if delay <= 0:
            self.missed += 1
            if delay < -10 * self.period:  # far behind: restart the schedule, no burst
                self.deadline = time.perf_counter()
        return delay

    def shift(self, seconds: float) -> None:
        """Move the next deadline (a phase correction; keep it small against the period)."""
        if self.deadline is not None and seconds:
            self.deadline += seconds
            self.shifted += seconds

    def due_in(self) -> float:
        """Seconds until the next tick is due (<= 0: due now; before the first tick: 0)."""
        return 0.0 if self.deadline is None else self.deadline - time.perf_counter()

    def spin_to_deadline(self) -> None:
        """Busy-wait the last stretch (call when `due_in()` is below `spin`)."""
        while self.deadline is not None and time.perf_counter() < self.deadline:
            pass

    def sleep_to_deadline(self) -> None:
        """Sleep until `spin` s before the deadline, then spin the rest."""
        delay = self.due_in()
        if delay > self.spin:
            time.sleep(delay - self.spin)
        self.spin_to_deadline()

    def wait(self) -> None:
        """`advance()`, then sleep (and spin the last `spin` s) until the deadline."""
        if self.advance() > 0:
            self.sleep_to_deadline()

    def figures(self) -> dict[str, float]:
        """Achieved rate over the whole run, missed deadlines, ticks, period jitter p99."""
        rate = 0.0
        if self.first is not None and self.last is not None and self.last > self.first:
            rate = (self.ticks - 1) / (self.last - self.first)
        out = {"loop_rate_hz": rate, "target_rate_hz": 1.0 / self.period,
               "missed_deadlines": float(self.missed), "ticks": float(self.ticks)}
        if self.jitter.count > 10:
            out["period_jitter_ms_p99"] = self.jitter.percentile(99) * 1000
        return out


class Histogram:
    """Durations (s) of a whole run in fixed bins, for percentiles at a fixed cost: a
    status every 0.2 s of a 500 Hz loop must not sort the run's samples each time.
    Bins of `resolution` up to `limit`; a sample beyond counts in the last bin, and a
    percentile that lands there reads as `limit` or more (`max` keeps the largest)."""

    def __init__(self, resolution: float = 1e-5, limit: float = 0.05) -> None:
        self.resolution = float(resolution)
        self.bins = np.zeros(round(limit / resolution) + 1, dtype=np.int64)
        self.count = 0
        self.max = 0.0

    def add(self, seconds: float) -> None:
        k = int(seconds / self.resolution) if seconds > 0 else 0
        self.bins[min(k, len(self.bins) - 1)] += 1
        self.count += 1
        if seconds > self.max:
            self.max = seconds

    def percentile(self, q: float) -> float:
        """The q-th percentile (s; upper edge of its bin, so never an underestimate)."""
        if not self.count:
            return float("nan")
        k = int(np.searchsorted(np.cumsum(self.bins), q / 100.0 * self.count))
        return min((k + 1) * self.resolution, self.max)


class PhaseLock:
    """Phase-locks a `DeadlineClock` to an input stream: ticks fall `lead` s after an arrival.

    `arrival(t)` for each input (its receive time, `time.perf_counter` base); after each
    tick, `correction(t_tick)` says how far to move the next deadline. The correction is
    proportional (`gain`) and bounded by `max_step` x period per tick, so the period changes
    by at most that much: the lock pulls the phase in over a few dozen ticks and never
    jerks the loop. It engages only while the input period (a running estimate that an
    outlier gap cannot drag) divides the control period within `tolerance`; otherwise
    (a slower or incommensurate stream, or none) it returns 0 and the clock runs free.
    """

    def __init__(self, period: float, lead: float, gain: float = 0.25, max_step: float = 0.02,
                 tolerance: float = 0.03) -> None:
        if not 0 <= lead < period:
            raise ValueError(f"phase lead must lie in [0, period), got {lead!r}")
        self.period = float(period)
        self.lead = float(lead)
        self.gain = float(gain)
        self.max_step = float(max_step) * self.period
        self.tolerance = float(tolerance)
        self.input_period: float | None = None
        self.last_arrival: float | None = None
        self.samples = 0

    def arrival(self, t: float) -> None:
        if self.last_arrival is not None and t > self.last_arrival:
            gap = t - self.last_arrival
            if self.input_period is None:
                self.input_period = gap
            else:  # EMA of the gap, each gap clipped to [0.5, 2] x the estimate first
                gap = min(max(gap, 0.5 * self.input_period), 2.0 * self.input_period)
                self.input_period += 0.05 * (gap - self.input_period)
            self.samples += 1
        self.last_arrival = t

    @property
    def locked(self) -> bool:
        """The input stream is regular and its period divides the control period."""
        if self.samples < 20 or self.input_period is None or self.input_period <= 0:
            return False
        ratio = self.period / self.input_period
        return ratio >= 1 - self.tolerance and abs(ratio - round(ratio)) <= self.tolerance * ratio

    def overdue(self, t: float) -> bool:
        """Whether, locked, the input this tick is aligned to has not arrived by time t:
        the last one is more than half an input period older than `lead` (and the stream
        has not paused: then there is nothing to wait for)."""
        if not self.locked or self.last_arrival is None or self.input_period is None:
            return False
        age = t - self.last_arrival
        return self.lead + self.input_period / 2 < age <= self.lead + 2 * self.input_period

    def correction(self, t_tick: float) -> float:
        """s to move the next deadline by (negative: earlier), given this tick's time."""
        if not self.locked or self.last_arrival is None:
            return 0.0
        age = t_tick - self.last_arrival
        ts = self.input_period
        assert ts is not None
        if not 0 <= age <= 2 * ts:  # the stream paused: do not chase it
            return 0.0
        # the phase error modulo the input period, in [-ts/2, ts/2): symmetric, so a late
        # input (the tick read the one before) does not drag the average rate
        error = (age - self.lead + ts / 2) % ts - ts / 2
        return min(max(-self.gain * error, -self.max_step), self.max_step)
