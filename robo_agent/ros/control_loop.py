"""The policy runner's one thread: executor callbacks between control ticks, ticks on time.

`run_control_loop` waits in the rclpy executor (states, e-stop, goals arrive there) until
`EXECUTOR_MARGIN_S` before the next deadline, then waits out the last stretch and runs
the tick, then the status if there is time for it before the next deadline. Callbacks
never run during a tick, so a tick waits for no lock and no GIL and reads the freshest
state; the status (a DiagnosticArray of ~25 values, a fraction of a millisecond in
Python) goes out right after a tick, never just before one.

`warm_lead` s before each tick the node runs that tick's computation once on the latest
state and discards it (`warm_up`): in the idle stretch of a long period other processes
evict the policy's weights and code from the CPU caches, and the tick then pays for
reloading them while the state waits (an in-process check during development, not a
benchmark: the policy step's p50 0.35-0.42 ms at 100 Hz against 0.16 ms at 500 Hz;
0.25-0.28 ms at 100 Hz with the warm-up).

`set_realtime_priority` puts the calling thread under SCHED_FIFO, as ros2_control's
controller manager does for its update thread: a FIFO thread preempts every normal one,
so the OS wakes it on time even when the machine is busy, and the last stretch before a
deadline is slept (a FIFO sleeper wakes within tens of microseconds) instead of spun.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Protocol

from rclpy.executors import Executor

from robo_agent.core.deadline import DeadlineClock

#: no callback is started this close to a deadline: a JointState callback (take,
#: deserialise, run) costs ~0.1 ms in Python, and one started just before the deadline
#: would make the tick late
EXECUTOR_MARGIN_S = 0.0003
#: a warm-up is skipped when the tick is closer than this (it would delay the tick)
WARM_ROOM_S = 0.0008
#: the status waits for a later tick when the next deadline is closer than this
STATUS_ROOM_S = 0.0008


class ControlNode(Protocol):
    clock: DeadlineClock
    finished: threading.Event
    state_wait: float  # s a tick may wait for an overdue state (0: never)
    warm_lead: float  # s before a tick that `warm_up` runs (0: never)

    def state_overdue(self, now: float) -> bool: ...
    def state_waited(self, arrived: bool) -> None: ...
    def warm_up(self) -> None: ...
    def control_tick(self) -> None: ...
    def status_due(self, room: float) -> bool: ...
    def publish_status(self) -> None: ...


def set_realtime_priority(priority: int) -> str | None:
    """SCHED_FIFO at `priority` (1-99) for the calling thread; None when it worked, else why
    not (an unprivileged user needs `rtprio` in /etc/security/limits.conf, as for
    ros2_control)."""
    if not 1 <= priority <= 99:
        return f"realtime_priority {priority} outside 1..99"
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
        # The middleware's receive threads too: a state the DDS thread takes late is
        # read one input period late by the tick, whatever the control thread's priority.
        for tid in os.listdir("/proc/self/task"):
            if int(tid) != threading.get_native_id():
                os.sched_setscheduler(int(tid), os.SCHED_FIFO, os.sched_param(priority))
    except (OSError, AttributeError) as err:
        return (f"could not enable SCHED_FIFO at priority {priority} ({err}); give the user "
                "an rtprio limit (e.g. '@realtime - rtprio 98' in /etc/security/limits.conf) "
                "or run with CAP_SYS_NICE; running with normal scheduling")
    return None


def _wait_for_overdue_state(node: ControlNode, executor: Executor) -> None:
    """When the state this tick is phase-locked to is late (the middleware's delivery
    has a tail), wait up to `node.state_wait` for it rather than compute from the one
    before, a whole input period older."""
    if node.state_wait <= 0 or not node.state_overdue(time.perf_counter()):
        return
    until = time.perf_counter() + node.state_wait
    while node.state_overdue(time.perf_counter()):
        left = until - time.perf_counter()
        if left <= 0:
            node.state_waited(arrived=False)
            return
        executor.spin_once(timeout_sec=left)
    node.state_waited(arrived=True)


def run_control_loop(node: ControlNode, executor: Executor, stop: threading.Event,
                     exit_when_done: bool, realtime: bool = False) -> None:
    """Until `stop`, the executor's context shuts down, or (with `exit_when_done`) the run
    finishes."""
    clock = node.clock
    if realtime:
        clock.spin = 0.0  # a FIFO thread wakes on time: sleep, do not burn the core
    else:
        clock.spin = EXECUTOR_MARGIN_S
    warm = node.warm_lead > WARM_ROOM_S
    warmed = not warm
    while executor.context.ok() and not stop.is_set():
        due = clock.due_in()
        if not warmed and due <= node.warm_lead:
            warmed = True
            if due > WARM_ROOM_S:
                node.warm_up()
            continue
        if due > EXECUTOR_MARGIN_S:
            wake = due - EXECUTOR_MARGIN_S if warmed else due - node.warm_lead
            executor.spin_once(timeout_sec=min(wake, 0.05))
            continue
        clock.sleep_to_deadline()
        executor.spin_once(timeout_sec=0)  # a state that arrived meanwhile, if any
        _wait_for_overdue_state(node, executor)
        node.control_tick()
        warmed = not warm
        if node.finished.is_set() and exit_when_done:
            break
        if node.status_due(room=clock.due_in() - STATUS_ROOM_S):
            node.publish_status()
