"""`DeadlineClock`: a fixed-rate schedule for a control loop, with its own timing figures.

Deadline-corrected (deadline += period, never `sleep(dt)`, so the rate does not drift by
the work done each tick); a tick that starts after its deadline counts as missed, and a
loop far behind restarts its schedule rather than bursting to catch up. The wait sleeps
until `spin` seconds before the deadline and spins the rest: the OS wakes a sleeper late
by up to a scheduler tick, which at 500 Hz is a large share of the 2 ms period.

Pure: the standard library and numpy only.
"""

from __future__ import annotations

import time
from collections import deque

import numpy as np

#: s before each deadline spent spinning instead of sleeping (CPU cost: spin / period)
SPIN_S = 0.0003


class DeadlineClock:
    """Call `tick()` at the start of every period's work and `wait()` after it (or, in a
    loop that does other work between ticks, `advance()`, `due_in()` and
    `spin_to_deadline()`)."""

    def __init__(self, period: float, spin: float = SPIN_S, history: int = 5000) -> None:
        if not period > 0:
            raise ValueError(f"control period must be > 0 s, got {period!r}")
        self.period = float(period)
        self.spin = max(0.0, min(float(spin), self.period / 2))
        self.deadline: float | None = None
        self.missed = 0
        self.ticks = 0
        self.first: float | None = None
        self.times: deque[float] = deque(maxlen=history)

    def tick(self) -> float:
        """Record the start of one tick; returns its time (`time.perf_counter`)."""
        now = time.perf_counter()
        if self.deadline is None:
            self.deadline = now
        if self.first is None:
            self.first = now
        self.ticks += 1
        self.times.append(now)
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

    def due_in(self) -> float:
        """Seconds until the next tick is due (<= 0: due now; before the first tick: 0)."""
        return 0.0 if self.deadline is None else self.deadline - time.perf_counter()

    def spin_to_deadline(self) -> None:
        """Busy-wait the last stretch (call when `due_in()` is below `spin`)."""
        while self.deadline is not None and time.perf_counter() < self.deadline:
            pass

    def wait(self) -> None:
        """`advance()`, then sleep (and spin the last `spin` s) until the deadline."""
        delay = self.advance()
        if delay <= 0:
            return
        if delay > self.spin:
            time.sleep(delay - self.spin)
        self.spin_to_deadline()

    def figures(self) -> dict[str, float]:
        """Achieved rate over the whole run, missed deadlines, ticks, period jitter p99."""
        t = np.asarray(self.times)
        rate = 0.0
        if self.first is not None and len(t) and t[-1] > self.first:
            rate = (self.ticks - 1) / (t[-1] - self.first)
        out = {"loop_rate_hz": rate, "target_rate_hz": 1.0 / self.period,
               "missed_deadlines": float(self.missed), "ticks": float(self.ticks)}
        if len(t) > 10:
            out["period_jitter_ms_p99"] = float(
                np.percentile(np.abs(np.diff(t) - self.period) * 1000, 99))
        return out
