"""Sandbox overhead per trial: the same train.py run sandboxed and not, in one invocation.

    python bench/sandbox.py [--budget 10] [--pairs 3] [--json docs/benchmarks/sandbox.json]

Two figures, each from pairs measured back to back (sandboxed, then not; the order
alternates per pair, so load from other jobs on the machine hits both sides alike):

* start-up: wall-clock of `python -c "import torch, robo_agent.sim"` in the sandbox
  minus the same outside it (the cost of building the namespaces and mounts, `RLIMIT_DATA`
  and the filtered environment), median over 5 pairs;
* per trial: wall-clock of `execute.train_once` (the runner's real launch path: write
  train.py, start the process tree, poll memory at 10 Hz, wait, sanitise the output,
  verify the artifact) with `sandbox='bwrap'` minus `sandbox='none'` at the given
  budget, and the env steps each side managed in that budget; mean over `--pairs`.

The overhead is reported in seconds and as a percentage of the budget (goal <= 3 %).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TASK = "robo_agent/PandaReach-v0"
ROOT = Path(__file__).resolve().parents[1]


def _startup(folder: Path, mode: str) -> float:
    from robo_agent.autoresearch.execute import _child_env
    from robo_agent.autoresearch.sandbox import Sandbox

    box = Sandbox(mode, folder, 8192)
    cmd = box.wrap([sys.executable, "-c", "import torch, robo_agent.sim"])
    t0 = time.perf_counter()
    subprocess.run(cmd, env=box.env(_child_env(1)), preexec_fn=box.preexec(), check=True,
                   cwd=folder)  # fmt: skip
    wall = time.perf_counter() - t0
    box.finish()
    return wall


def _trial(folder: Path, mode: str, budget: float, seed: int) -> tuple[float, int, str]:
    from robo_agent.autoresearch.execute import Job, train_once

    job = Job(trial=0, commit="", source=(ROOT / "autoresearch" / "train.py").read_text(),
              task=TASK, budget_seconds=budget, grace_seconds=30.0, train_seeds=[seed],
              eval_seed_base=0, eval_episodes=1, device="cpu", sandbox=mode)  # fmt: skip
    t0 = time.perf_counter()
    result = train_once(job, seed, folder)
    return time.perf_counter() - t0, result.env_steps, result.status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget", type=float, default=10.0)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    from robo_agent.autoresearch.sandbox import find_bwrap

    bwrap, why = find_bwrap()
    if bwrap is None:
        print(f"no sandbox available: {why}", file=sys.stderr)
        return 2
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        starts: dict[str, list[float]] = {"bwrap": [], "none": []}
        for i in range(5):
            for mode in ("bwrap", "none") if i % 2 == 0 else ("none", "bwrap"):
                starts[mode].append(_startup(root, mode))
        startup = statistics.median(starts["bwrap"]) - statistics.median(starts["none"])
        print(f"start-up: sandboxed {statistics.median(starts['bwrap']):.3f} s, plain "
              f"{statistics.median(starts['none']):.3f} s -> +{startup:.3f} s")  # fmt: skip
        trials: dict[str, list[tuple[float, int, str]]] = {"bwrap": [], "none": []}
        for i in range(args.pairs):
            for mode in ("bwrap", "none") if i % 2 == 0 else ("none", "bwrap"):
                folder = root / f"{mode}{i}"
                trials[mode].append(_trial(folder, mode, args.budget, seed=i))
                wall, steps, status = trials[mode][-1]
                print(f"pair {i} {mode:5s}: train_once {wall:.2f} s, {steps} env steps, {status}")
    wall = {m: statistics.mean(t[0] for t in v) for m, v in trials.items()}
    steps = {m: statistics.mean(t[1] for t in v) for m, v in trials.items()}
    overhead = wall["bwrap"] - wall["none"]
    percent = 100 * overhead / args.budget
    print(f"per trial at a {args.budget:g} s budget: sandboxed {wall['bwrap']:.2f} s, plain "
          f"{wall['none']:.2f} s -> overhead {overhead:+.3f} s = {percent:+.2f} % of the budget "
          f"(goal <= 3 %); env steps {steps['bwrap']:.0f} vs {steps['none']:.0f}")  # fmt: skip
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True, check=False).stdout.strip()  # fmt: skip
    record = {
        "bench": "sandbox",
        "command": " ".join(["python", "bench/sandbox.py", *sys.argv[1:]]),
        "commit": commit,
        "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": "shared 2-core x86-64 VM, no GPU, other engineers' jobs running",
        "load_average": [load_before, os.getloadavg()],
        "bwrap": bwrap,
        "budget_seconds": args.budget,
        "startup_seconds": {
            "sandboxed": starts["bwrap"],
            "plain": starts["none"],
            "overhead_median": startup,
        },
        "trials": {
            m: [{"wall": w, "env_steps": s, "status": st} for w, s, st in v]
            for m, v in trials.items()
        },
        "overhead_seconds_per_trial": overhead,
        "overhead_percent_of_budget": percent,
        "env_steps_mean": steps,
        "goal_percent": 3.0,
    }
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
