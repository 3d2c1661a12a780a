"""Research-loop benchmarks: overhead per trial, parallel scaling, optuna vs random.

    python bench/research.py overhead  [--budget 60] [--trials 2]
    python bench/research.py parallel  [--budget 20] [--trials 4]
    python bench/research.py proposers [--budget 12] [--trials 6] [--seeds 3] [--parallel 2]

* overhead — wall-clock of each research round (propose, commit, train, evaluate 100
  held-out episodes, decide, ledger, plot) minus the training budget, as a fraction of
  the budget (one repeat per candidate, so one training run per trial).
* parallel — trials per hour with `--parallel 2` versus `--parallel 1`, same budget and
  trial count, one run after the other on this machine; ratio printed.
* proposers — best kept score after the same number of trials for `optuna` and `random`,
  several proposer seeds each, all starting from one shared baseline (trained once, so
  every run faces the same incumbent); mean and spread of the best score per proposer.

Every figure is measured in the run that prints it; workspaces live in a temp folder.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

TASK = "robo_agent/PandaReach-v0"


def _workspace(root: Path, name: str, budget: float, repeats: int, episodes: int):
    from robo_agent.autoresearch.workspace import Workspace

    # budget_steps 0: each run trains until its CPU-seconds budget (the figures here are
    # about the loop's own cost and throughput, not about the step budget)
    return Workspace.init(root / name, task=TASK, budget=budget, repeats=repeats,
                          max_repeats=repeats, eval_episodes=episodes,
                          budget_steps=0)  # fmt: skip


def bench_overhead(args: argparse.Namespace, root: Path) -> dict:
    from robo_agent.autoresearch.proposers import OptunaProposer
    from robo_agent.autoresearch.runner import Runner

    ws = _workspace(root, "overhead", args.budget, 1, 100)
    runner = Runner(ws, OptunaProposer(seed=0), live=False)
    t0 = time.monotonic()
    runner.run_baseline()
    rounds = [time.monotonic() - t0]
    for _ in range(args.trials):
        t0 = time.monotonic()
        runner.run_round(1)
        rounds.append(time.monotonic() - t0)
    runner.wait_for_plot()
    rows = ws.ledger.rows()
    # the budget is CPU seconds now: overhead is measured against train.py's own wall time
    fractions = [(w - r.train_seconds) / r.train_seconds for w, r in zip(rounds, rows, strict=True)]
    for row, wall, frac in zip(rows, rounds, fractions, strict=True):
        print(
            f"trial {row.trial} ({row.status}): round {wall:.2f} s, "
            f"train.py {row.train_seconds:.2f} s, overhead {wall - row.train_seconds:.2f} s = "
            f"{100 * frac:.1f}% of train.py's wall time"
        )
    mean = statistics.mean(fractions)
    print(f"overhead: mean {100 * mean:.2f}% of the budget over {len(rounds)} trials (goal <= 3%)")
    return {"budget": args.budget, "round_seconds": rounds, "overhead_fraction_mean": mean}


def bench_parallel(args: argparse.Namespace, root: Path) -> dict:
    from robo_agent.autoresearch.proposers import RandomProposer
    from robo_agent.autoresearch.runner import Runner

    base = _workspace(root, "par-base", args.budget, 1, 100)
    base_runner = Runner(base, None, live=False)
    base_runner.run_baseline()
    base_runner.wait_for_plot()
    out = {}
    for k in (1, 2):
        path = root / f"par{k}"
        shutil.copytree(base.path, path, symlinks=True)
        from robo_agent.autoresearch.workspace import Workspace

        ws = Workspace(path)
        runner = Runner(ws, RandomProposer(seed=0), parallel=k, live=False)
        t0 = time.monotonic()
        runner.run(trials=args.trials)
        wall = time.monotonic() - t0
        per_hour = args.trials / wall * 3600
        out[k] = {"wall": wall, "trials_per_hour": per_hour}
        print(f"--parallel {k}: {args.trials} trials in {wall:.1f} s = {per_hour:.0f} trials/hour")
    ratio = out[2]["trials_per_hour"] / out[1]["trials_per_hour"]
    print(f"parallel scaling: {ratio:.2f}x trials/hour with --parallel 2 (goal >= 1.7x)")
    return {"budget": args.budget, "trials": args.trials, "runs": out, "ratio": ratio}


def bench_proposers(args: argparse.Namespace, root: Path) -> dict:
    from robo_agent.autoresearch.proposers import make_proposer
    from robo_agent.autoresearch.runner import Runner
    from robo_agent.autoresearch.workspace import Workspace

    from robo_agent.core.ledger import best_row

    base = _workspace(root, "prop-base", args.budget, args.repeats, args.episodes)
    base_runner = Runner(base, None, live=False)
    baseline = base_runner.run_baseline()
    base_runner.wait_for_plot()
    print(f"shared baseline: score {baseline.score:.3f} +- {baseline.spread:.3f}")
    results: dict[str, list[float]] = {}
    for name in ("optuna", "random"):
        for seed in range(args.seeds):
            path = root / f"{name}{seed}"
            shutil.copytree(base.path, path, symlinks=True)
            ws = Workspace(path)
            Runner(ws, make_proposer(name, seed=seed), parallel=args.parallel, live=False).run(
                trials=args.trials
            )
            rows = ws.ledger.rows()
            scored = [r.score for r in rows[1:] if r.succeeded]
            best_any = max(scored, default=float("nan"))
            kept = best_row(rows)
            results.setdefault(name, []).append(best_any)
            print(f"{name} seed {seed}: best trial score {best_any:.3f}, incumbent "
                  f"{kept.score:.3f} (trial {kept.trial}), statuses "
                  f"{[r.status for r in rows[1:]]}", flush=True)  # fmt: skip
    summary = {}
    for name, values in results.items():
        mean = statistics.mean(values)
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        summary[name] = {"best_scores": values, "mean": mean, "sd": sd}
        print(
            f"{name}: best score after {args.trials} trials: mean {mean:.3f} +- {sd:.3f} "
            f"over {len(values)} seeds {values}"
        )
    return {"baseline": baseline.score, "trials": args.trials, "summary": summary}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("which", choices=("overhead", "parallel", "proposers"))
    parser.add_argument("--budget", type=float, default=None)
    parser.add_argument("--trials", type=int, default=None)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--parallel", type=int, default=1)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    defaults = {"overhead": (60.0, 2), "parallel": (20.0, 4), "proposers": (12.0, 6)}
    budget, trials = defaults[args.which]
    args.budget = args.budget or budget
    args.trials = args.trials or trials
    with tempfile.TemporaryDirectory() as tmp:
        fn = {"overhead": bench_overhead, "parallel": bench_parallel,
              "proposers": bench_proposers}[args.which]  # fmt: skip
        result = fn(args, Path(tmp))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
