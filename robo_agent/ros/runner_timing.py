"""The policy runner's timing figures: whole-run percentiles and the start-up in parts.

Pure bookkeeping beside the node (no rclpy): the node tells it when the first state came,
when a controller first listened, and each command it published; `figures()` is what the
status carries. Percentiles come from fixed-bin `Histogram`s, so a status costs the same
after an hour as after a second.
"""

from __future__ import annotations

import time

from robo_agent.core.deadline import DeadlineClock, Histogram, PhaseLock


class RunnerTiming:
    def __init__(self, clock: DeadlineClock, phase: PhaseLock) -> None:
        self.clock, self.phase = clock, phase
        self.compute = Histogram()  # s from reading the state to the publish
        self.obs_age = Histogram()  # s from the state's DDS arrival to the publish
        self.command_jitter = Histogram()  # |interval between commands - period|
        self.last_sent: float | None = None
        self.t_created = time.monotonic()
        self.first_state: float | None = None
        self.controller: float | None = None  # when a controller first listened
        self.first_command: float | None = None
        self.estop_reaction: float | None = None  # s from the e-stop's arrival to the hold
        self.state_waits = 0  # ticks that waited for an overdue state
        self.state_wait_misses = 0  # ... and went on without it

    def state_read(self, t: float) -> None:
        if self.first_state is None:
            self.first_state = t

    def controller_listens(self, t: float) -> None:
        if self.controller is None:
            self.controller = t

    def command_sent(self, t_read: float, stamp: float) -> None:
        """After a command's publish: `t_read` when the tick read the state, `stamp` the
        state's arrival (both `time.monotonic`)."""
        now = time.monotonic()
        self.compute.add(now - t_read)
        self.obs_age.add(now - stamp)
        sent = time.perf_counter()
        if self.last_sent is not None:
            self.command_jitter.add(abs(sent - self.last_sent - self.clock.period))
        self.last_sent = sent
        if self.first_command is None:
            self.first_command = now

    def figures(self) -> dict[str, float]:
        out = self.clock.figures()
        if self.command_jitter.count > 10:  # the commands' own: the tick's plus the compute's
            out["command_jitter_ms_p99"] = self.command_jitter.percentile(99) * 1000
        out["phase_locked"] = float(self.phase.locked)
        out["state_waits"] = float(self.state_waits)
        out["state_wait_misses"] = float(self.state_wait_misses)
        if self.compute.count:
            out.update(compute_ms_p50=self.compute.percentile(50) * 1000,
                       compute_ms_p99=self.compute.percentile(99) * 1000,
                       obs_to_command_ms_p50=self.obs_age.percentile(50) * 1000,
                       obs_to_command_ms_p99=self.obs_age.percentile(99) * 1000)
        if self.estop_reaction is not None:
            out["estop_reaction_ms"] = self.estop_reaction * 1000
        for key, t in (("startup_to_first_state_s", self.first_state),
                       ("startup_to_controller_s", self.controller),
                       ("startup_to_first_command_s", self.first_command)):
            if t is not None:
                out[key] = t - self.t_created
        if self.first_command is not None:
            # CLOCK_MONOTONIC is one clock for every process of the machine: a launcher
            # measures process start -> first command published from its own reading
            out["first_command_monotonic_s"] = self.first_command
            out["created_monotonic_s"] = self.t_created
        return out
