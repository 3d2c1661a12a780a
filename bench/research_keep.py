"""Keep-rule benchmark: load robustness, A/A false keeps and power at the default settings.

    python bench/research_keep.py [--seeds 30] [--bad-seeds 10] [--comment-seeds 7] \
        [--load-seeds 4] [--parallel 2] [--json docs/benchmarks/detail/research_keep.json]

Real runs of the research path (`execute.run_jobs_locally`: train.py in its own process
with the default `research.yaml` budget, then the frozen evaluator on the default 100
held-out episodes, one secret set of them for the whole bench as in one workspace), one
training seed per run, for four versions of `train.py`:

* `default` — the template, on seeds 0..N-1;
* `comment` — the template plus a comment (the A/A candidate), on the first seeds;
* `good`    — the template with the tunables the default research run kept (`TUNED`): a
  known improvement, the power test's candidate;
* `bad`     — `good` with `learning_rate` at the bottom of its range (0.0005): one
  tunable at a bad value, the power test's incumbent.

A trial is decided exactly as the runner decides at the start of a run: the incumbent
has scores on 4 seeds (`max_repeats`), the candidate races (2 seeds, one more at a time
while `wants_more_seeds` says so), and `record_round` applies the rule with the seed
noise pooled over the two rows (few degrees of freedom: later in a run the ledger has
more). Trials share runs, so they are not independent; the number of runs behind each
figure is in the record.

* **A/A false keeps**: incumbent `default`, candidate `comment` on the same 4 seeds
  (every 4-subset);
* **A/A′ (fresh trajectories)**: incumbent and candidate both `default`, on two
  disjoint sets of 4 seeds drawn at random from all N (`NULL_DRAWS` draws): the null of a
  change that does not help but sends training down other trajectories, which any real
  code change does — the false-keep rate that matters;
* **power**: incumbent `bad`, candidate `good`, same seeds (every 4-subset); and the
  gain the default run finds, incumbent `default`, candidate `good` (`power_found`).

**Load** (`--load-seeds L`): `default` on seeds 0..L-1 again while one unrelated process
keeps a core busy (`python -c 'while True: pass'`); mean scores, CPU seconds and wall
seconds, busy / not busy, within this one run. Writes the detail JSON and a record
(rows research 7 and 8, and research 6 with the load part).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from record import write_record  # noqa: E402

ROWS = [
    {"id": "research 6", "goal": "load-robust budget: mean baseline score with one core kept "
                                 "busy vs not, ≤ 0.10 apart",
     "measured": "**{score_difference:.3f}** ({score_not_busy} vs {score_busy}; "
                 "{identical_runs} of {load_runs} runs bit-identical; budget = "
                 "{budget_steps} env steps under a CPU-s cap)",
     "check": ["score_difference", "<=", 0.1], "needs": "score_difference"},
    {"id": "research 7", "goal": "A/A false keeps ≤ 5 % over ≥ 20 trials",
     "measured": "comment-only A/A **{aa_kept} of {aa_trials}**; fresh-trajectory A/A′ "
                 "**{aa_fresh_kept} of {aa_fresh_trials}** ({aa_fresh_rate:.1%}; random "
                 "disjoint 4-seed sets from {default_seeds} seeds of the default "
                 "train.py, racing as the runner does; trials share runs); with the "
                 "incumbent on seeds 0-3 as in the default run: {aa_run_seeds_kept} of "
                 "{aa_run_seeds_trials}",
     "check": ["false_keep_rate", "<=", 0.05]},
    {"id": "research 8", "goal": "power ≥ 80 % for a known improvement at the default compute",
     "measured": "**{power_rate:.0%}** ({power_kept} of {power_trials}, {bad_seeds} seeds; "
                 "incumbent: a tuned train.py ({good_mean}) with `learning_rate` 0.0005 "
                 "({bad_mean}), candidate: the tuned one); the default train.py as "
                 "incumbent, the tuned one as candidate (+{found_gain} on average): "
                 "{power_found_kept} of {power_found_trials}; "
                 "smallest detectable gain at the default baseline ({baseline_mean} ± "
                 "{baseline_sd}, 2 seeds, racing to 4) **{detectable_gain}** with the noise "
                 "of a run's start (4 baseline seeds), {detectable_gain_known_noise} once "
                 "the noise is well known",
     "check": ["power_rate", ">=", 0.8], "met_note": "(large gains only)"},
]


def _sources() -> dict[str, str]:
    from robo_agent.core.research_source import apply_values

    default = (ROOT / "autoresearch" / "train.py").read_text()
    good = apply_values(default, TUNED)
    return {
        "default": default,
        "comment": default + "\n# an A/A candidate: identical but for this comment\n",
        "good": good,
        "bad": apply_values(good, {"learning_rate": 0.0005}),
    }


#: the tunables of the candidate `robo-agent research run --seed 0` keeps at the default
#: settings (its trial 1; record research-main-job-20261208T033508Z, seed 0): a known
#: improvement on the default `train.py` at the default budget, the power test's candidate
TUNED = {"learning_rate": 0.002588, "gamma": 0.943, "tau": 0.09439, "batch_size": 308,
         "updates_per_step": 0.8126, "her_ratio": 0.7644, "learning_starts": 1223,
         "init_alpha": 0.3737, "policy_ema": 0.007285}


def _power_pair(runs: dict[str, list[dict]]) -> tuple[list[dict], list[dict]] | None:
    """The power test's incumbent and candidate runs: `bad` (one tunable at a bad value)
    against `good` (the same train.py with the good value), or against `default` in
    records made before `good` existed (where `bad` was the default with that value)."""
    if "bad" not in runs:
        return None
    return runs["bad"], runs["good"] if "good" in runs else runs["default"]


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
    from robo_agent.core.research_round import Outcome, Rules, record_round, seed_dof, seed_noise

    cfg = ResearchConfig(task="robo_agent/PandaReach-v0", budget_seconds=_budget())
    z = cfg.z if z is None else z
    rules = Rules(cfg.eval_episodes, z, cfg.min_margin, cfg.min_cpu_gain)  # one look

    def outcome(trial: int, runs: list[dict]) -> Outcome:
        return Outcome(trial=trial, commit="", parent="", proposer="bench", description="",
                       status="ok", scores=[r["score"] for r in runs], repeats=len(runs),
                       cpu_seconds=statistics.mean(r["cpu_seconds"] for r in runs))  # fmt: skip

    history = record_round([outcome(0, inc)], [], rules, baseline=True)
    row = record_round([outcome(1, cand)], history, rules, baseline=False)[0]
    extra = [[r["score"] for r in cand]]
    mde = detectable_gain(history[0].score, seed_noise(history, extra), len(cand),
                          cfg.eval_episodes, z, cfg.min_margin, seed_dof(history, extra))
    return {"keep": row.status == "keep", "incumbent": row.incumbent, "candidate": row.score,
            "margin": row.margin, "detectable_gain": mde, "reason": row.description}  # fmt: skip


def _subsets(seeds: list[int], n: int) -> list[tuple[int, ...]]:
    return list(itertools.combinations(seeds, n))


#: A/A' trials: random draws of two disjoint seed sets (fixed RNG: the same draws for
#: every rule compared in one run)
NULL_DRAWS = 2000


def _null_draws(seeds: list[int], n: int) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """Incumbent and candidate seed tuples of `n` each, disjoint, drawn at random from
    all the seeds: an exchangeable null (no half of the seeds is special)."""
    rng = random.Random(0)
    out = []
    for _ in range(NULL_DRAWS):
        pick = rng.sample(seeds, 2 * n)
        out.append((tuple(pick[:n]), tuple(pick[n:])))
    return out


def _trials(inc_runs: list[dict], cand_runs: list[dict], fresh: bool = False, n: int = 2,
            z: float | None = None) -> list[dict]:  # fmt: skip
    """One trial per n-subset of the seeds (n = repeats), same seeds for both sides; or
    with `fresh` disjoint random draws (`_null_draws`)."""
    inc_by = {r["seed"]: r for r in inc_runs}
    cand_by = {r["seed"]: r for r in cand_runs}
    seeds = sorted(set(inc_by) & set(cand_by))
    if fresh:
        combos = _null_draws(seeds, n)
    else:
        combos = [(p, p) for p in _subsets(seeds, n)]
    return [_decide([inc_by[s] for s in p], [cand_by[s] for s in q], z) for p, q in combos]


def _race(inc: list[dict], cand: list[dict], z: float | None = None) -> dict:
    """One trial exactly as the runner runs it with racing: the incumbent has scores on
    all `max_repeats` seeds, the candidate trains seed by seed while
    `wants_more_seeds` says so (same pooled noise as the runner), then the decision."""
    from robo_agent.core.research_config import ResearchConfig
    from robo_agent.core.research_decision import detectable_gain, wants_more_seeds
    from robo_agent.core.research_round import Outcome, Rules, record_round, seed_dof, seed_noise

    cfg = ResearchConfig(task="robo_agent/PandaReach-v0", budget_seconds=_budget())
    z = cfg.z if z is None else z
    rules = Rules(cfg.eval_episodes, z, cfg.min_margin, cfg.min_cpu_gain, cfg.racing_looks)
    base = Outcome(0, "", "", "bench", "", "ok", scores=[r["score"] for r in inc],
                   repeats=len(inc), cpu_seconds=statistics.mean(r["cpu_seconds"] for r in inc))
    history = record_round([base], [], rules, baseline=True)
    scores: list[float] = []
    for r in cand:
        scores.append(r["score"])
        if not wants_more_seeds(scores, history[0].scores, [history[0].scores], cfg.eval_episodes,
                                cfg.repeats, cfg.max_repeats, z, cfg.min_margin,
                                cfg.racing_looks):  # fmt: skip
            break
    used = cand[: len(scores)]
    out = Outcome(1, "", "", "bench", "", "ok", scores=scores, repeats=len(scores),
                  cpu_seconds=statistics.mean(r["cpu_seconds"] for r in used))
    row = record_round([out], history, rules, baseline=False)[0]
    mde = detectable_gain(history[0].score, seed_noise(history), cfg.repeats, cfg.eval_episodes,
                          z, cfg.min_margin, seed_dof(history), cfg.racing_looks)  # fmt: skip
    return {"keep": row.status == "keep", "seeds": len(scores), "margin": row.margin,
            "gain": row.score - row.incumbent, "detectable_gain": mde}  # fmt: skip


def _race_trials(inc_runs: list[dict], cand_runs: list[dict], fresh: bool,
                 z: float | None = None) -> list[dict]:  # fmt: skip
    """Racing trials over 4-seed subsets: same seeds for both sides, or (`fresh`)
    disjoint random draws of 4 seeds each (`_null_draws`)."""
    inc_by = {r["seed"]: r for r in inc_runs}
    cand_by = {r["seed"]: r for r in cand_runs}
    seeds = sorted(set(inc_by) & set(cand_by))
    if fresh:
        combos = _null_draws(seeds, 4)
    else:
        combos = [(p, p) for p in _subsets(seeds, 4)]
    return [_race([inc_by[s] for s in p], [cand_by[s] for s in q], z) for p, q in combos]


def _fixed_incumbent_trials(runs: list[dict]) -> list[dict]:
    """A/A' as the default run meets it: the incumbent on the training seeds it always
    uses (0-3), the candidate on 4 of the other seeds drawn at random (`NULL_DRAWS`)."""
    by = {r["seed"]: r for r in runs}
    inc = [by[s] for s in range(4)]
    rest = sorted(s for s in by if s >= 4)
    rng = random.Random(0)
    return [_race(inc, [by[s] for s in rng.sample(rest, 4)]) for _ in range(NULL_DRAWS)]


def _grid(runs: dict[str, list[dict]]) -> list[dict]:
    """False-keep rate (fresh trajectories) and power for other repeats and z, from the
    same runs (subsets of the seeds), to choose the defaults by measurement."""
    out = []
    for n in (2, 3, 4):
        for z in (1.0, 1.282, 1.645, 2.0):
            fresh = _trials(runs["default"], runs["default"], True, n, z)
            pair = _power_pair(runs)
            power = _trials(*pair, False, n, z) if pair else []
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
    for z in (1.0, 1.282, 1.645, 2.0):
        fresh = _race_trials(runs["default"], runs["default"], True, z)
        pair = _power_pair(runs)
        power = _race_trials(*pair, False, z) if pair else []
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
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--load-seeds", type=int, default=4)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--configs", default="default,good,bad,comment")
    parser.add_argument("--comment-seeds", type=int, default=7,
                        help="seeds of the A/A candidate (7: 35 racing trials)")
    parser.add_argument("--bad-seeds", type=int, default=10,
                        help="seeds of the power test's incumbent and candidate (10: 210 "
                        "racing trials)")
    parser.add_argument("--json", default=None)
    parser.add_argument("--reuse", default=None, help="a log of an interrupted run of this "
                        "script (same commit): its run records are reused, not re-run")
    parser.add_argument("--analyse", default=None, help="recompute the figures of a saved "
                        "JSON record (no training); rewrites it with the figures")
    args = parser.parse_args()
    load_before = os.getloadavg()
    if args.analyse:
        result = json.loads(Path(args.analyse).read_text())
        result["analysed_with_commit"] = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        analyse(result)
        Path(args.analyse).write_text(json.dumps(result, indent=2, default=float) + "\n")
        _record(result, load_before, f"the runs of {args.analyse} (commit "
                f"{result['commit'][:12]}, {result['started_utc']}) decided by this commit's "
                "rule; scores do not depend on the machine's load (fixed env steps)")
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
            cap = {"comment": args.comment_seeds, "bad": args.bad_seeds,
                   "good": args.bad_seeds}.get(name, args.seeds)
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
    _record(result, load_before, "scores do not depend on the machine's load (fixed env "
            f"steps); per-run detail in {args.json or '(not saved: no --json)'}")
    return 0


def _record(result: dict, load_before: tuple[float, float, float], notes: str) -> None:
    figures = record_figures(result)
    rows = [{k: v for k, v in row.items() if k != "needs"} for row in ROWS
            if row.get("needs", "aa_rate") in figures]  # fmt: skip
    path = write_record("research-keep", figures, rows, load_before=load_before, notes=notes)
    print(f"wrote {path}")


def record_figures(result: dict) -> dict[str, float | int]:
    """The flat figures the summary rows quote."""
    from robo_agent.core.research_config import ResearchConfig
    from robo_agent.core.research_decision import detectable_gain

    runs = result["runs"]
    f: dict[str, float | int] = {}
    if "load" in result:
        ld = result["load"]
        f.update(score_not_busy=round(ld["score_not_busy"], 4),
                 score_busy=round(ld["score_busy"], 4),
                 score_difference=round(abs(ld["score_difference"]), 4),
                 identical_runs=ld["identical_runs"], load_runs=ld["runs"])
    aa = result.get("aa", {"trials": 0, "kept": 0, "rate": 0.0})
    fresh = result["aa_fresh"]
    f.update(aa_trials=aa["trials"], aa_kept=aa["kept"], aa_rate=round(aa["rate"], 4),
             aa_fresh_trials=fresh["trials"], aa_fresh_kept=fresh["kept"],
             aa_fresh_rate=round(fresh["rate"], 4),
             false_keep_rate=round(max(aa["rate"], fresh["rate"]), 4),
             default_seeds=len(runs["default"]))
    if "power" in result:
        pw = result["power"]
        f.update(power_trials=pw["trials"], power_kept=pw["kept"], power_rate=round(pw["rate"], 4),
                 bad_seeds=len(runs["bad"]),
                 bad_mean=round(statistics.mean(r["score"] for r in runs["bad"]), 3))
    if "good" in runs and "power_found" in result:
        pf = result["power_found"]
        f.update(good_mean=round(statistics.mean(r["score"] for r in runs["good"]), 3),
                 power_found_rate=round(pf["rate"], 4), power_found_trials=pf["trials"],
                 power_found_kept=pf["kept"])
        f["found_gain"] = round(f["good_mean"] - statistics.mean(
            r["score"] for r in runs["default"]), 3)
    f["budget_steps"] = runs["default"][0]["env_steps"]
    if "aa_fresh_run_seeds" in result:
        fx = result["aa_fresh_run_seeds"]
        f.update(aa_run_seeds_kept=fx["kept"], aa_run_seeds_trials=fx["trials"],
                 aa_run_seeds_rate=round(fx["rate"], 4))
    scores = [r["score"] for r in runs["default"]]
    cfg = ResearchConfig(task="robo_agent/PandaReach-v0", budget_seconds=_budget())
    mean, sd = statistics.mean(scores), statistics.stdev(scores)
    f.update(baseline_mean=round(mean, 3), baseline_sd=round(sd, 3),
             detectable_gain=round(fresh["median_detectable_gain"], 3),
             detectable_gain_known_noise=round(detectable_gain(
                 mean, sd, cfg.repeats, cfg.eval_episodes, cfg.z, cfg.min_margin,
                 len(scores) - 1, cfg.racing_looks), 3))
    return f


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
    result["aa_fresh_run_seeds"] = _summary(
        "A/A' with the incumbent on seeds 0-3 (the default run's baseline)",
        _fixed_incumbent_trials(runs["default"]))
    pair = _power_pair(runs)
    if pair:
        result["power"] = _summary("power (one tunable: lr 0.0005 -> its good value)",
                                   _race_trials(*pair, False))
    if "good" in runs:  # the improvement the default run finds: default -> tuned
        result["power_found"] = _summary("power (default train.py -> tuned)",
                                         _race_trials(runs["default"], runs["good"], False))
    result["grid"] = _grid(runs)
    scores = [r["score"] for r in runs["default"]]
    result["default_baseline"] = {"mean": statistics.mean(scores), "sd": statistics.stdev(scores)}
    print(f"default train.py over {len(scores)} seeds: mean {statistics.mean(scores):.3f}, "
          f"sd {statistics.stdev(scores):.3f}")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
