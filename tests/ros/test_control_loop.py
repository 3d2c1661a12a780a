"""`set_realtime_priority`: SCHED_FIFO for the policy runner's threads when allowed, a clear
warning and normal scheduling when not (each case in a fresh process: a FIFO pytest
would change every other test's timing)."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys

import pytest

from robo_agent.ros.control_loop import set_realtime_priority

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
