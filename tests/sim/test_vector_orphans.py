"""Sim workers die with their owner: `kill -9` of the process that built a `SimVectorEnv`
leaves no worker behind (before the fix, forked workers slept for good as orphans)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.sim

OWNER = """
import sys
from robo_agent.sim.vector import make_vec_from_id

if __name__ == "__main__":
    envs = make_vec_from_id("robo_agent/PandaReach-v0", 2, num_workers=2, context=sys.argv[1])
    envs.reset(seed=0)
    print(" ".join(str(p.pid) for p in envs._procs), flush=True)
    sys.stdin.read()  # block until killed
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux")
# fork is the start method train.py uses (and the one that left orphans); forkserver
# re-imports the sim in a server process and costs a few seconds more
@pytest.mark.parametrize("context", ["fork", pytest.param("forkserver", marks=pytest.mark.slow)])
def test_workers_die_when_owner_is_killed(context: str) -> None:
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, context],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    workers: list[int] = []
    try:
        assert owner.stdout is not None
        line = owner.stdout.readline()
        workers += [int(p) for p in line.split()]
        assert len(workers) == 2 and all(_alive(p) for p in workers), line
        os.kill(owner.pid, signal.SIGKILL)  # the owner only, not its process group
        owner.wait(timeout=30)
        deadline = time.monotonic() + 30  # generous: the machine is shared
        while any(_alive(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        survivors = [p for p in workers if _alive(p)]
        assert not survivors, f"sim workers {survivors} outlived their owner"
    finally:
        if owner.poll() is None:
            os.killpg(owner.pid, signal.SIGKILL)
            owner.wait()
        for pid in workers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
