"""Keep-rule benchmark: load robustness, A/A false keeps and power at the default settings.

    python bench/research_keep.py [--seeds 10] [--comment-seeds 7] [--load-seeds 4] \
        [--parallel 2] [--json docs/benchmarks/detail/research_keep_rule.json]

Real runs of the research path (`execute.run_job`: train.py in its own process with the
default `research.yaml` budget, then the frozen evaluator on the default 100 held-out
episodes), one training seed per run, for three versions of `train.py`:

* `default` — the template;
* `comment` — the template plus a comment (the A/A candidate);
* `bad`     — the template with `learning_rate` at the bottom of its range (0.0005), the
  incumbent of the power test, whose candidate is `default`.

Seeds 0..N-1 each. A trial of the keep rule uses two training seeds (the default
`repeats`); every pair of the N seeds is one trial (N (N-1) / 2 trials; they share
seeds, so they are not independent — N = 10 gives 45 trials from 10 runs per version).
Then

* **A/A false keeps**: incumbent `default`, candidate `comment` on the same seeds;
* **A/A′ (fresh trajectories)**: incumbent `default` on a pair of the first N/2 seeds,
  candidate `default` on a pair of the other N/2 (every combination): the null of a
  change that does not help but sends training down another trajectory (what a no-op
  hyperparameter change does);
* **power**: incumbent `bad`, candidate `default`, same seeds;

each decided by `robo_agent.core.research_round.record_round` exactly as the runner does
(pooled seed noise from the rows of that trial). **Load**: `default` on seeds
0..L-1 again while one unrelated process keeps a core busy (`python -c 'while True:
pass'`); the ratio of mean scores, CPU seconds and wall seconds, busy / not busy, within
this one run.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _sources() -> dict[str, str]:
    from robo_agent.core.research_source import apply_values

    default = (ROOT / "autoresearch" / "train.py").read_text()
    return {
        "default": default,
        "comment": default + "\n# an A/A candidate: identical but for this comment\n",
        "bad": apply_values(default, {"learning_rate": 0.0005}),
    }


def _runs(name: str, source: str, seeds: list[int], root: Path, parallel: int,
          reuse: dict[tuple[str, int], dict], eval_base: int) -> list[dict]:
    from robo_agent.autoresearch.execute import Job, run_jobs_locally

    from robo_agent.core.research_config import ResearchConfig

    cfg = ResearchConfig(task="robo_agent/PandaReach-v0", budget_seconds=_budget())
    out: list[dict] = [reuse[(name, s)] for s in seeds if (name, s) in reuse]
    seeds = [s for s in seeds if (name, s) not in reuse]
    for first in range(0, len(seeds), parallel):
        chunk = seeds[first : first + parallel]
        jobs = [Job(trial=s, commit="", source=source, task=cfg.task,
                    budget_seconds=cfg.budget_seconds, budget_steps=cfg.budget_steps,
                    grace_seconds=cfg.grace_seconds, wall_factor=cfg.wall_factor,
                    train_seeds=[s], eval_seed_base=eval_base,
                    eval_episodes=cfg.eval_episodes) for s in chunk]  # fmt: skip
        folders = [root / f"{name}-{s}-{time.monotonic_ns()}" for s in chunk]
        for s, res in zip(chunk, run_jobs_locally(jobs, folders), strict=True):
            r = res.repeats[0]
            rec = {"config": name, "seed": s, "status": r.status, "score": r.score,
                   "final_distance": r.final_distance, "cpu_seconds": r.cpu_seconds,
                   "wall_seconds": r.train_seconds, "env_steps": r.env_steps,
                   "load_avg": os.getloadavg()[0]}  # fmt: skip
            print(json.dumps(rec), flush=True)
            out.append(rec)
    return sorted(out, key=lambda r: r["seed"])


def _budget() -> float:
    from robo_agent.autoresearch.workspace import DEFAULT_BUDGET

    return DEFAULT_BUDGET


def _decide(inc: list[dict], cand: list[dict], z: float | None = None) -> dict:
    from robo_agent.core.research_config import ResearchConfig
    from robo_agent.core.research_decision import detectable_gain
    from robo_agent.core.research_round import Outcome, Rules, record_round, seed_noise

    cfg = ResearchConfig(task="robo_agent/PandaReach-v0", budget_seconds=_budget())
    z = cfg.z if z is None else z
    rules = Rules(cfg.eval_episodes, z, cfg.min_margin, cfg.min_cpu_gain)

    def outcome(trial: int, runs: list[dict]) -> Outcome:
        return Outcome(trial=trial, commit="", parent="", proposer="bench", description="",
                       status="ok", scores=[r["score"] for r in runs], repeats=len(runs),
                       cpu_seconds=statistics.mean(r["cpu_seconds"] for r in runs))  # fmt: skip

    history = record_round([outcome(0, inc)], [], rules, baseline=True)
    row = record_round([outcome(1, cand)], history, rules, baseline=False)[0]
    noise = seed_noise(history, [[r["score"] for r in cand]])
    mde = detectable_gain(history[0].score, noise, len(cand), cfg.eval_episodes, z,
                          cfg.min_margin)  # fmt: skip
    return {"keep": row.status == "keep", "incumbent": row.incumbent, "candidate": row.score,
            "margin": row.margin, "detectable_gain": mde, "reason": row.description}  # fmt: skip


def _subsets(seeds: list[int], n: int) -> list[tuple[int, ...]]:
    return list(itertools.combinations(seeds, n))


def _trials(inc_runs: list[dict], cand_runs: list[dict], fresh: bool = False, n: int = 2,
            z: float | None = None) -> list[dict]:  # fmt: skip
    """One trial per n-subset of the seeds (n = repeats). Same seeds for both sides, or
    with `fresh` the incumbent's subset from the first half of the seeds and the
    candidate's from the second half (every combination)."""
    inc_by = {r["seed"]: r for r in inc_runs}
    cand_by = {r["seed"]: r for r in cand_runs}
    seeds = sorted(set(inc_by) & set(cand_by))
    if fresh:
        half = len(seeds) // 2
        combos = [(p, q) for p in _subsets(seeds[:half], n) for q in _subsets(seeds[half:], n)]
    else:
        combos = [(p, p) for p in _subsets(seeds, n)]
    return [_decide([inc_by[s] for s in p], [cand_by[s] for s in q], z) for p, q in combos]


def _race(inc: list[dict], cand: list[dict], z: float | None = None) -> dict:
    """One trial exactly as the runner runs it with racing: the incumbent has scores on
    all `max_repeats` seeds, the candidate trains seed by seed while
    `wants_more_seeds` says so (same pooled noise as the runner), then the decision."""
    from robo_agent.core.research_config import ResearchConfig
    from robo_agent.core.research_decision import detectable_gain, wants_more_seeds
    from robo_agent.core.research_round import Outcome, Rules, record_round, seed_noise

    cfg = ResearchConfig(task="robo_agent/PandaReach-v0", budget_seconds=_budget())
    z = cfg.z if z is None else z
    rules = Rules(cfg.eval_episodes, z, cfg.min_margin, cfg.min_cpu_gain)
    base = Outcome(0, "", "", "bench", "", "ok", scores=[r["score"] for r in inc],
                   repeats=len(inc), cpu_seconds=statistics.mean(r["cpu_seconds"] for r in inc))
    history = record_round([base], [], rules, baseline=True)
    scores: list[float] = []
    for r in cand:
        scores.append(r["score"])
        if not wants_more_seeds(scores, history[0].scores, [history[0].scores], cfg.eval_episodes,
                                cfg.repeats, cfg.max_repeats, z, cfg.min_margin):  # fmt: skip
            break
    used = cand[: len(scores)]
    out = Outcome(1, "", "", "bench", "", "ok", scores=scores, repeats=len(scores),
                  cpu_seconds=statistics.mean(r["cpu_seconds"] for r in used))
    row = record_round([out], history, rules, baseline=False)[0]
    mde = detectable_gain(history[0].score, seed_noise(history), cfg.repeats, cfg.eval_episodes,
                          z, cfg.min_margin)  # fmt: skip
    return {"keep": row.status == "keep", "seeds": len(scores), "margin": row.margin,
            "gain": row.score - row.incumbent, "detectable_gain": mde}  # fmt: skip


def _race_trials(inc_runs: list[dict], cand_runs: list[dict], fresh: bool,
                 z: float | None = None) -> list[dict]:  # fmt: skip
    """Racing trials over 4-seed subsets: same seeds for both sides, or (`fresh`) the
    incumbent's from the first half of the seeds, the candidate's from the second
    half in each of 4 rotations."""
    inc_by = {r["seed"]: r for r in inc_runs}
    cand_by = {r["seed"]: r for r in cand_runs}
    seeds = sorted(set(inc_by) & set(cand_by))
    if fresh:
        half = len(seeds) // 2
        combos = [(p, q[k:] + q[:k]) for p in _subsets(seeds[:half], 4)
                  for q in _subsets(seeds[half:], 4) for k in range(4)]  # fmt: skip
    else:
        combos = [(p, p) for p in _subsets(seeds, 4)]
    return [_race([inc_by[s] for s in p], [cand_by[s] for s in q], z) for p, q in combos]


def _grid(runs: dict[str, list[dict]]) -> list[dict]:
    """False-keep rate (fresh trajectories) and power for other repeats and z, from the
    same runs (subsets of the seeds), to choose the defaults by measurement."""
    out = []
    for n in (2, 3, 4):
        for z in (1.0, 1.645, 2.0):
            fresh = _trials(runs["default"], runs["default"], True, n, z)
            power = _trials(runs["bad"], runs["default"], False, n, z) if "bad" in runs else []
            if not fresh:
                continue
            rec = {"repeats": n, "z": z, "aa_fresh_rate": statistics.mean(t["keep"] for t in fresh),
                   "aa_fresh_trials": len(fresh),
                   "power": statistics.mean(t["keep"] for t in power) if power else None,
                   "power_trials": len(power),
                   "median_detectable_gain": statistics.median(t["detectable_gain"]
                                                               for t in fresh)}  # fmt: skip
            print(f"repeats {n}, z {z}: A/A' keeps {100 * rec['aa_fresh_rate']:.1f}% of "
                  f"{len(fresh)}, power {rec['power']}, detectable gain "
                  f"{rec['median_detectable_gain']:.3f}", flush=True)  # fmt: skip
            out.append(rec)
    for z in (1.0, 1.645, 2.0):
        fresh = _race_trials(runs["default"], runs["default"], True, z)
        power = _race_trials(runs["bad"], runs["default"], False, z) if "bad" in runs else []
        rec = {"repeats": "race 2-4", "z": z,
               "aa_fresh_rate": statistics.mean(t["keep"] for t in fresh),
               "aa_fresh_trials": len(fresh),
               "power": statistics.mean(t["keep"] for t in power) if power else None,
               "power_trials": len(power),
               "mean_seeds_aa_fresh": statistics.mean(t["seeds"] for t in fresh),
               "mean_seeds_power": statistics.mean(t["seeds"] for t in power) if power else None}
        print(f"racing 2-4, z {z}: A/A' keeps {100 * rec['aa_fresh_rate']:.1f}% of "
              f"{len(fresh)} ({rec['mean_seeds_aa_fresh']:.2f} seeds), power {rec['power']} "
              f"({rec['mean_seeds_power']} seeds)", flush=True)  # fmt: skip
        out.append(rec)
    return out


def _summary(name: str, trials: list[dict]) -> dict:
    kept = sum(t["keep"] for t in trials)
    out = {"trials": len(trials), "kept": kept, "rate": kept / len(trials),
           "median_margin": statistics.median(t["margin"] for t in trials),
           "median_detectable_gain": statistics.median(t["detectable_gain"]
                                                       for t in trials)}  # fmt: skip
    print(f"{name}: kept {kept} of {len(trials)} trials ({100 * out['rate']:.0f}%), median "
          f"margin {out['median_margin']:.3f}, median detectable gain "
          f"{out['median_detectable_gain']:.3f}", flush=True)  # fmt: skip
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--load-seeds", type=int, default=4)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--configs", default="default,bad,comment")
    parser.add_argument("--comment-seeds", type=int, default=7,
                        help="seeds of the A/A candidate (7: 35 racing trials)")
    parser.add_argument("--bad-seeds", type=int, default=10,
                        help="seeds of the power test's incumbent (10: 210 racing trials)")
    parser.add_argument("--json", default=None)
    parser.add_argument("--reuse", default=None, help="a log of an interrupted run of this "
                        "script (same commit): its run records are reused, not re-run")
    parser.add_argument("--analyse", default=None, help="recompute the figures of a saved "
                        "JSON record (no training); rewrites it with the figures")
    args = parser.parse_args()
    if args.analyse:
        result = json.loads(Path(args.analyse).read_text())
        result["analysed_with_commit"] = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        analyse(result)
        Path(args.analyse).write_text(json.dumps(result, indent=2, default=float) + "\n")
        return 0
    reuse: dict[tuple[str, int], dict] = {}
    if args.reuse:
        for line in Path(args.reuse).read_text().splitlines():
            if line.startswith('{"config"'):
                rec = json.loads(line)
                reuse[(rec["config"], rec["seed"])] = rec
    sources = _sources()
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()  # fmt: skip
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    seeds = list(range(args.seeds))
    # one secret set of held-out episodes for every run (as in one workspace): paired
    from robo_agent.core.research_config import draw_eval_seed_base

    eval_base = draw_eval_seed_base()
    runs: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name in args.configs.split(","):
            cap = {"comment": args.comment_seeds, "bad": args.bad_seeds}.get(name, args.seeds)
            some = seeds[:cap]
            runs[name] = _runs(name, sources[name], some, root, args.parallel, reuse,
                               eval_base)
        loaded: list[dict] = []
        if args.load_seeds > 0:  # 0: no load part (e.g. when the machine is shared anyway)
            busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            try:
                loaded = _runs("default+busy", sources["default"], seeds[: args.load_seeds],
                               root, args.parallel, reuse, eval_base)  # fmt: skip
            finally:
                busy.kill()
                busy.wait()
    result: dict = {"commit": commit, "started_utc": started,
                    "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "machine": f"{os.cpu_count()} CPUs, shared with other engineers' jobs",
                    "runs": runs, "loaded_runs": loaded}  # fmt: skip
    analyse(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, default=float) + "\n")
    return 0


def analyse(result: dict) -> None:
    """The figures, from the run records (also for `--analyse` of a saved record)."""
    runs, loaded = result["runs"], result["loaded_runs"]
    if loaded:
        _load_figures(result, runs, loaded)
    _aa_power(result, runs)  # the runner's rule at the default settings (racing 2-4 seeds)


def _load_figures(result: dict, runs: dict[str, list[dict]], loaded: list[dict]) -> None:
    load_seeds = {r["seed"] for r in loaded}
    quiet = [r for r in runs["default"] if r["seed"] in load_seeds]
    same = sum(a["score"] == b["score"] and a["env_steps"] == b["env_steps"]
               for a, b in zip(quiet, loaded, strict=True))  # fmt: skip

    def m(rs: list[dict], k: str) -> float:
        return statistics.mean(r[k] for r in rs)

    result["load"] = {
        "score_not_busy": m(quiet, "score"), "score_busy": m(loaded, "score"),
        "score_difference": m(loaded, "score") - m(quiet, "score"),
        "identical_runs": same, "runs": len(loaded),
        "cpu_ratio_busy_over_not": m(loaded, "cpu_seconds") / m(quiet, "cpu_seconds"),
        "wall_ratio_busy_over_not": m(loaded, "wall_seconds") / m(quiet, "wall_seconds"),
    }  # fmt: skip
    print("load:", json.dumps(result["load"]))


def _aa_power(result: dict, runs: dict[str, list[dict]]) -> None:
    if "comment" in runs:
        result["aa"] = _summary("A/A (comment only)",
                                _race_trials(runs["default"], runs["comment"], False))
    fresh = _race_trials(runs["default"], runs["default"], True)
    result["aa_fresh"] = _summary("A/A' (fresh trajectories)", fresh)
    if "bad" in runs:
        result["power"] = _summary("power (lr 0.0005 -> 0.003)",
                                   _race_trials(runs["bad"], runs["default"], False))
    result["grid"] = _grid(runs)
    scores = [r["score"] for r in runs["default"]]
    result["default_baseline"] = {"mean": statistics.mean(scores), "sd": statistics.stdev(scores)}
    print(f"default train.py over {len(scores)} seeds: mean {statistics.mean(scores):.3f}, "
          f"sd {statistics.stdev(scores):.3f}")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
