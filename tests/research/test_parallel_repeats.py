"""A candidate's seeds trained side by side (`Job.parallel_repeats`) give the ledger
exactly what one after another gives: the same per-seed results in seed order, and a
crash ends the job at that seed. The candidate is a stand-in `train.py` (a real script in
the real sandbox, scored by the real evaluator) that writes a constant policy whose
action depends on its seed, so each seed has its own final distance, and logs when it
ran, so the overlap can be seen."""

from __future__ import annotations

from pathlib import Path

import pytest
from robo_agent.autoresearch.execute import Job, run_job

pytestmark = [pytest.mark.research, pytest.mark.slow]
TASK = "robo_agent/PandaReach-v0"
CRASH_SEED = 7

FAKE_TRAIN = '''
import argparse, sys, time
from pathlib import Path
p = argparse.ArgumentParser()
for flag in ("--task", "--seed", "--budget-seconds", "--budget-steps", "--out", "--device",
             "--torch-threads"):
    p.add_argument(flag)
a = p.parse_args()
out, seed = Path(a.out), int(a.seed)
start = time.time()
import gymnasium as gym
import numpy as np
import robo_agent.sim
from robo_agent.autoresearch.onnx_policy import (build_mlp_model, spec_fields_from_env,
                                                 write_artifact)
time.sleep(1.5)  # long enough for two side-by-side runs to overlap
(out / "ran.txt").write_text(f"{start} {time.time()}")
if seed == CRASH_SEED:
    sys.exit(f"seed {seed} crashes")
env = gym.make(a.task)
obs, _ = env.reset(seed=0)
inputs = [("observation", obs["observation"].size), ("desired_goal", 3)]
fields = spec_fields_from_env(env, a.task, inputs)
n_in = sum(i["size"] for i in fields["inputs"])
action = np.full(fields["action_dim"], 0.1 * (seed + 1))
model = build_mlp_model([np.zeros((action.size, n_in))], [np.arctanh(action)],
                        np.zeros(n_in), np.ones(n_in))
write_artifact(out / "artifact", model, fields)
print("env_steps: 1")
'''.replace("CRASH_SEED", str(CRASH_SEED))


def _job(seeds: list[int], parallel: int) -> Job:
    return Job(trial=1, commit="c0ffee", source=FAKE_TRAIN, task=TASK, budget_seconds=60.0,
               grace_seconds=30.0, train_seeds=seeds, eval_seed_base=10**9, eval_episodes=4,
               device="cpu", sandbox="bwrap", parallel_repeats=parallel)


def _ran(folder: Path, k: int) -> tuple[float, float]:
    start, end = (float(x) for x in (folder / f"r{k}" / "ran.txt").read_text().split())
    return start, end


def test_side_by_side_repeats_record_what_sequential_ones_do(tmp_path: Path) -> None:
    one = run_job(_job([0, 1], 1), tmp_path / "one")
    two = run_job(_job([0, 1], 2), tmp_path / "two")
    for res in (one, two):
        assert [r.status for r in res.repeats] == ["ok", "ok"], res.failure_tail()
        assert [r.seed for r in res.repeats] == [0, 1]
    assert [r.final_distance for r in two.repeats] == [r.final_distance for r in one.repeats]
    assert one.repeats[0].final_distance != one.repeats[1].final_distance  # seeds differ
    a, b = _ran(tmp_path / "one", 0), _ran(tmp_path / "one", 1)
    assert a[1] <= b[0]  # one after the other
    a, b = _ran(tmp_path / "two", 0), _ran(tmp_path / "two", 1)
    assert a[0] < b[1] and b[0] < a[1]  # side by side


def test_a_crash_ends_the_job_at_that_seed_even_side_by_side(tmp_path: Path) -> None:
    res = run_job(_job([CRASH_SEED, 1], 2), tmp_path)
    assert [(r.seed, r.status) for r in res.repeats] == [(CRASH_SEED, "crash")]
    assert "seed 7 crashes" in res.repeats[0].log_tail
