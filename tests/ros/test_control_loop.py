"""The policy runner's control loop: `set_realtime_priority` (SCHED_FIFO for the runner's
threads when allowed, a clear warning and normal scheduling when not; each case in a
fresh process: a FIFO pytest would change every other test's timing), and the schedule
of the cache warm-up before each tick."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import threading

import pytest
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor

from robo_agent.core.deadline import DeadlineClock
from robo_agent.ros.control_loop import WARM_ROOM_S, run_control_loop, set_realtime_priority

PROBE = (
    "import os, threading\n"
    "threading.Thread(target=lambda: None).start()\n"  # a second thread exists
    "from robo_agent.ros.control_loop import set_realtime_priority\n"
    "why = set_realtime_priority(10)\n"
    "tasks = [os.sched_getscheduler(int(t)) for t in os.listdir('/proc/self/task')]\n"
    "print(repr(why)); print(tasks)\n"
)


def _probe(*prefix: str) -> tuple[str, list[int]]:
    out = subprocess.run([*prefix, sys.executable, "-c", PROBE], capture_output=True,
                         text=True, timeout=60, check=True)
    why, tasks = out.stdout.strip().splitlines()[-2:]
    return ast.literal_eval(why), ast.literal_eval(tasks)


def test_out_of_range_priorities_change_nothing() -> None:
    before = os.sched_getscheduler(0)
    for bad in (0, 100, -5):
        assert "outside 1..99" in (set_realtime_priority(bad) or "")
    assert os.sched_getscheduler(0) == before


def test_fifo_for_every_thread_when_allowed_else_a_warning_and_normal_scheduling() -> None:
    why, tasks = _probe()
    if why is None:  # root or CAP_SYS_NICE (this machine): every thread is FIFO
        assert tasks and all(t == os.SCHED_FIFO for t in tasks)
    else:
        assert "rtprio" in why and all(t == os.SCHED_OTHER for t in tasks)


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root and setpriv to become an unprivileged user")
def test_an_unprivileged_user_gets_the_warning_and_runs_normally() -> None:
    why, tasks = _probe("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                        "--inh-caps=-all", "--bounding-set=-all")
    assert why is not None and "rtprio" in why and "normal scheduling" in why
    assert all(t == os.SCHED_OTHER for t in tasks)


class _ScheduleNode:
    """The `ControlNode` protocol with recorded calls (no topics: the schedule alone)."""

    def __init__(self, period: float, warm_lead: float, ticks: int) -> None:
        self.clock = DeadlineClock(period)
        self.finished = threading.Event()
        self.state_wait, self.warm_lead, self.ticks = 0.0, warm_lead, ticks
        self.events: list[tuple[str, float]] = []

    def state_overdue(self, now: float) -> bool:
        return False

    def state_waited(self, arrived: bool) -> None: ...

    def warm_up(self) -> None:
        self.events.append(("warm", self.clock.due_in()))

    def control_tick(self) -> None:
        self.clock.tick()
        self.events.append(("tick", 0.0))
        self.clock.advance()
        if sum(kind == "tick" for kind, _ in self.events) >= self.ticks:
            self.finished.set()

    def status_due(self, room: float) -> bool:
        return False

    def publish_status(self) -> None: ...


@pytest.mark.parametrize("warm_lead", [0.0015, 0.0])
def test_the_warm_up_runs_once_before_each_tick_at_its_lead(warm_lead: float) -> None:
    """A real executor (no nodes: the schedule alone): one warm-up per period, between
    `warm_lead` and `WARM_ROOM_S` before the tick, never two without a tick between;
    none with `warm_lead` 0."""
    context = Context()
    rclpy.init(context=context)
    try:
        executor = SingleThreadedExecutor(context=context)
        node = _ScheduleNode(period=0.01, warm_lead=warm_lead, ticks=40)
        run_control_loop(node, executor, threading.Event(), exit_when_done=True)
        executor.shutdown()
    finally:
        rclpy.try_shutdown(context=context)
    kinds = [kind for kind, _ in node.events]
    assert kinds.count("tick") == 40
    if warm_lead == 0:
        assert "warm" not in kinds
        return
    assert "warm warm" not in " ".join(kinds)
    warm_dues = [due for kind, due in node.events if kind == "warm"]
    assert all(WARM_ROOM_S < due <= warm_lead for due in warm_dues)
    # the first tick has no schedule yet; a late wake-up may skip one (busy machine)
    assert len(warm_dues) >= 30
