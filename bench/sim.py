"""Simulation benchmarks: every figure is measured in this run, ratios against references
measured in the same run (interleaved rounds, median), because the machine is shared.

    python bench/sim.py [--seconds 2] [--rounds 3] [--workers N] [--envs-per-worker 4]
                        [--json out.json]

1. env overhead: raw `stepSimulation` steps/s on the same scene vs env steps/s x substeps
   (goal >= 0.90).
2. robo_agent/PandaReach-v0 vs panda-gym PandaReachJoints-v3 at the same timestep and
   substeps, random actions, both through gymnasium.make (goal >= 1.0x).
3. vector env: total steps/s with 1 and N workers at equal envs per worker (goal >= 0.8 N),
   next to N independent single-env processes (the machine's own parallel ceiling) and
   gymnasium's AsyncVectorEnv.
4. memory per env (RSS growth per extra env in one process, and per vector worker).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

SUBSTEPS = 20
TIMESTEP = 1 / 500


def _rate(fn: Callable[[], int], seconds: float) -> float:
    """Calls of `fn` (each returning a count of steps) for `seconds`; steps per second."""
    fn()  # warm-up
    n, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        n += fn()
    return n / elapsed


def _paired(fns: dict[str, Callable[[], int]], seconds: float) -> dict[str, Any]:
    """Alternate short calls of each fn for about `seconds` each; rates and pair ratios.

    Alternating every few tens of ms cancels load changes from other users of the
    machine, which separate one-second windows do not.
    """
    for fn in fns.values():
        fn()  # warm-up
    steps = dict.fromkeys(fns, 0)
    spent = dict.fromkeys(fns, 0.0)
    per_call: dict[str, list[float]] = {k: [] for k in fns}
    start = time.perf_counter()
    while time.perf_counter() - start < seconds * len(fns):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            n = fn()
            dt = time.perf_counter() - t0
            steps[k] += n
            spent[k] += dt
            per_call[k].append(n / dt)
    rates = {k: steps[k] / spent[k] for k in fns}
    first = next(iter(fns))
    ratios = {k: statistics.median(a / b for a, b in zip(per_call[k], per_call[first],
                                                          strict=True))
              for k in fns if k != first}
    return {"rates": rates, "median_pair_ratio_vs_" + first: ratios,
            "calls": len(per_call[first]), "spent": spent}


def _env_stepper(env: Any, dim: tuple[int, ...], batch: int = 25) -> Callable[[], int]:
    rng = np.random.default_rng(0)

    def run() -> int:
        actions = rng.uniform(-1, 1, (batch, *dim)).astype(np.float32)
        for a in actions:
            _, _, terminated, truncated, _ = env.step(a)
            if terminated or truncated:
                env.reset()
        return batch

    return run


def bench_overhead(seconds: float) -> dict[str, Any]:
    """Env vs bare stepSimulation on the same scene doing the same motion.

    The env runs 50-step episodes of fixed random actions from reset(seed=0). The raw
    loop replays the joint targets that produced, on a second identical sim: per control
    step one motor command (needed to make the same motion) and 20 stepSimulation calls,
    nothing else. "holding" is bare stepSimulation with the arm still (less solver work).
    """
    from robo_agent.sim.env import RoboAgentEnv

    env = RoboAgentEnv("panda", "reach", timestep=TIMESTEP, n_substeps=SUBSTEPS)
    actions = np.random.default_rng(1).uniform(-1, 1, (50, 7)).astype(np.float32)
    env.reset(seed=0)
    targets = []
    for a in actions:
        env.step(a)
        targets.append(env.joint_targets)
    raw_env = RoboAgentEnv("panda", "reach", timestep=TIMESTEP, n_substeps=SUBSTEPS)
    raw_env.reset(seed=0)
    start_state = raw_env.sim.save_state()
    sim, robot = raw_env.sim, raw_env.robot

    def env_episode() -> int:  # counted in physics steps (control steps x substeps)
        env.reset(seed=0)
        for a in actions:
            env.step(a)
        return len(actions) * SUBSTEPS

    def raw_replay() -> int:
        sim.restore_state(start_state)
        for q in targets:
            robot.set_targets(q)
            sim.step_physics(SUBSTEPS)
        return len(targets) * SUBSTEPS

    def raw_holding() -> int:
        sim.step_physics(SUBSTEPS * 50)
        return SUBSTEPS * 50

    res = _paired({"raw_same_motion": raw_replay, "env": env_episode,
                   "raw_holding": raw_holding}, seconds)
    env.close()
    raw_env.close()
    r = res["rates"]
    pair = res["median_pair_ratio_vs_raw_same_motion"]
    return {"raw_same_motion": r["raw_same_motion"], "raw_holding": r["raw_holding"],
            "env_steps": r["env"] / SUBSTEPS,
            "ratio_same_motion": r["env"] / r["raw_same_motion"],
            "ratio_same_motion_median_pair": pair["env"],
            "ratio_holding": r["env"] / r["raw_holding"], "episodes": res["calls"]}


def bench_panda_gym(seconds: float) -> dict[str, Any] | None:
    import gymnasium as gym
    import robo_agent.sim  # noqa: F401  (registers our ids)

    try:
        import panda_gym  # noqa: F401  (registers PandaReachJoints-v3)
    except ImportError:
        return None
    ours = gym.make("robo_agent/PandaReach-v0", timestep=TIMESTEP, n_substeps=SUBSTEPS)
    theirs = gym.make("PandaReachJoints-v3")
    pg_sim = theirs.unwrapped.sim
    assert pg_sim.timestep == TIMESTEP and pg_sim.n_substeps == SUBSTEPS, "unequal settings"
    actions = np.random.default_rng(2).uniform(-1, 1, (50, 7)).astype(np.float32)

    def episode(env: Any) -> Callable[[], int]:
        def run() -> int:
            env.reset(seed=0)
            for a in actions:
                env.step(a)
            return len(actions)
        return run

    res = _paired({"panda_gym": episode(theirs), "ours": episode(ours)}, seconds)
    ours.close()
    theirs.close()
    r = res["rates"]
    return {"ours": r["ours"], "panda_gym": r["panda_gym"], "ratio": r["ours"] / r["panda_gym"],
            "ratio_median_pair": res["median_pair_ratio_vs_panda_gym"]["ours"],
            "episodes": res["calls"]}


def _independent(seconds: float, envs: int, start: Any, out: Any, slot: int) -> None:
    """One process stepping `envs` in-process envs round robin (the parallel ceiling)."""
    from robo_agent.sim.env import RoboAgentEnv

    pool = [RoboAgentEnv("panda", "reach") for _ in range(envs)]
    for i, e in enumerate(pool):
        e.reset(seed=i)
    rng = np.random.default_rng(slot)
    actions = rng.uniform(-1, 1, (64, 7))
    start.wait()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for e in pool:
            e.step(actions[n % 64])
        n += 1
    out[slot] = n * envs / (time.perf_counter() - t0)
    for e in pool:
        e.close()


def _parallel_ceiling(workers: int, envs: int, seconds: float) -> float:
    ctx = mp.get_context("forkserver")
    start, out = ctx.Barrier(workers), ctx.Array("d", workers)
    procs = [ctx.Process(target=_independent, args=(seconds, envs, start, out, i))
             for i in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    return float(sum(out))


def _vector_burst(vec: Any, steps: int = 10) -> Callable[[], int]:
    rng = np.random.default_rng(0)
    n = vec.num_envs

    def run() -> int:
        for _ in range(steps):
            vec.step(rng.uniform(-1, 1, (n, 7)).astype(np.float32))
        return steps * n

    return run


def _async_rate(num_envs: int, seconds: float) -> float:
    import gymnasium as gym
    import robo_agent.sim  # noqa: F401

    vec = gym.make_vec("robo_agent/PandaReach-v0", num_envs=num_envs, vectorization_mode="async")
    vec.reset(seed=0)
    rng = np.random.default_rng(0)

    def run() -> int:
        vec.step(rng.uniform(-1, 1, (num_envs, 7)).astype(np.float32))
        return num_envs

    rate = _rate(run, seconds)
    vec.close()
    return rate


def bench_vector(workers: int, per_worker: int, seconds: float, rounds: int) -> dict[str, Any]:
    """1 worker x k envs vs N workers x k envs, both alive, stepped in alternating bursts
    (an idle vector env's workers sleep on their pipe, so they do not disturb the other)."""
    import psutil
    from robo_agent.sim.vector import SimVectorEnv

    one = SimVectorEnv("panda", "reach", per_worker, num_workers=1)
    many = SimVectorEnv("panda", "reach", per_worker * workers, num_workers=workers)
    one.reset(seed=0)
    many.reset(seed=0)

    def worker_cpu(vec: Any) -> float:  # user + system seconds of its worker processes
        return sum(sum(psutil.Process(pr.pid).cpu_times()[:2]) for pr in vec._procs)

    cpu0 = {"one": worker_cpu(one), "many": worker_cpu(many)}
    res = _paired({"one": _vector_burst(one), "many": _vector_burst(many)}, seconds * rounds)
    # Cores the workers actually got while stepping: shows when the machine is the limit.
    cores = {k: (worker_cpu(v) - cpu0[k]) / res["spent"][k]
             for k, v in (("one", one), ("many", many))}
    one.close()
    many.close()
    r = res["rates"]
    out: dict[str, Any] = {
        "vector_1_worker": r["one"], "vector_n_workers": r["many"],
        "scaling": r["many"] / r["one"],
        "scaling_median_pair": res["median_pair_ratio_vs_one"]["many"],
        "worker_cores_used_1": cores["one"], "worker_cores_used_n": cores["many"],
        # steps per worker CPU-second, N workers vs 1: how much CPU the batching/IPC wastes
        "per_cpu_second_ratio": (r["many"] / cores["many"]) / (r["one"] / cores["one"]),
    }
    ceil = []
    for _ in range(rounds):  # the machine's own parallel ceiling, alternating
        c1 = _parallel_ceiling(1, per_worker, seconds)
        cn = _parallel_ceiling(workers, per_worker, seconds)
        ceil.append((c1, cn))
    out["independent_1"] = statistics.median(c for c, _ in ceil)
    out["independent_n"] = statistics.median(c for _, c in ceil)
    out["machine_scaling"] = statistics.median(cn / c1 for c1, cn in ceil)
    out["async_vector_env_1"] = _async_rate(1, seconds)
    out["async_vector_env_n"] = _async_rate(workers, seconds)
    return out | {"workers": workers, "envs_per_worker": per_worker}


def _memory_probe(n_envs: int, out: Any) -> None:
    import psutil
    from robo_agent.sim.env import RoboAgentEnv

    proc = psutil.Process()
    first = RoboAgentEnv("panda", "pick_and_place")
    first.reset(seed=0)
    base = proc.memory_info().rss
    envs = [RoboAgentEnv("panda", "pick_and_place") for _ in range(n_envs)]
    for i, e in enumerate(envs):
        e.reset(seed=i)
        for _ in range(50):
            e.step(e.action_space.sample())
    out[0] = (proc.memory_info().rss - base) / n_envs
    out[1] = proc.memory_info().rss


def bench_memory(n_envs: int = 8) -> dict[str, Any]:
    import psutil
    from robo_agent.sim.vector import SimVectorEnv

    ctx = mp.get_context("forkserver")
    out = ctx.Array("d", 2)
    p = ctx.Process(target=_memory_probe, args=(n_envs, out))
    p.start()
    p.join()
    vec = SimVectorEnv("panda", "pick_and_place", 8, num_workers=2)
    vec.reset(seed=0)
    for _ in range(50):
        vec.step(np.zeros((8, 8), np.float32))
    worker_rss = [psutil.Process(pr.pid).memory_info().rss for pr in vec._procs]
    vec.close()
    return {"rss_per_extra_env_mb": out[0] / 2**20, "process_rss_mb": out[1] / 2**20,
            "probe_envs": n_envs, "vector_worker_rss_mb": [r / 2**20 for r in worker_rss],
            "vector_envs_per_worker": 4}


def plot(res: dict[str, Any], path: str) -> None:
    """Bar charts of the measured figures (matplotlib, headless)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = []
    if "overhead" in res:
        o = res["overhead"]
        panels.append(("physics steps/s (same motion)", {
            "raw stepSimulation": o["raw_same_motion"],
            "env x substeps": o["env_steps"] * SUBSTEPS}))
    if res.get("panda_gym"):
        g = res["panda_gym"]
        panels.append(("env steps/s, PandaReach", {
            "robo_agent": g["ours"], "panda-gym": g["panda_gym"]}))
    if "vector" in res:
        v = res["vector"]
        n = v["workers"]
        panels.append((f"vector steps/s ({v['envs_per_worker']} envs/worker)", {
            "1 worker": v["vector_1_worker"], f"{n} workers": v["vector_n_workers"],
            f"{n} indep. procs": v["independent_n"], f"Async {n} envs": v["async_vector_env_n"]}))
    if not panels:
        return
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.5))
    for ax, (title, bars) in zip(np.atleast_1d(axes), panels, strict=True):
        ax.bar(list(bars), list(bars.values()), color="tab:blue")
        ax.set_title(title, fontsize=10)
        ax.tick_params(axis="x", labelrotation=20, labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    ap.add_argument("--rounds", type=int, default=3, help="vector-env rounds (median)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--envs-per-worker", type=int, default=4)
    ap.add_argument("--json", help="also write the figures to this file")
    ap.add_argument("--plot", help="also draw the figures into this PNG")
    ap.add_argument("--no-record", action="store_true",
                    help="do not write a record to docs/benchmarks/ (written for full runs)")
    ap.add_argument("--skip", nargs="*", default=[],
                    choices=["overhead", "panda_gym", "vector", "memory"])
    args = ap.parse_args()
    from rich.console import Console

    console = Console()
    load_before = os.getloadavg()
    res: dict[str, Any] = {"cpu_count": os.cpu_count(), "timestep": TIMESTEP,
                           "n_substeps": SUBSTEPS, "seconds": args.seconds, "rounds": args.rounds}
    if "overhead" not in args.skip:
        with console.status("1/4 env overhead vs raw stepSimulation"):
            o = res["overhead"] = bench_overhead(args.seconds)
        console.print(
            f"1. raw stepSimulation {o['raw_same_motion']:.0f}/s replaying the env's motion "
            f"({o['raw_holding']:.0f}/s with the arm holding still); PandaReach env "
            f"{o['env_steps']:.0f} steps/s x {SUBSTEPS} = {o['env_steps'] * SUBSTEPS:.0f} "
            f"physics steps/s -> ratio {o['ratio_same_motion']:.3f} at the same motion "
            f"(median per-episode pair {o['ratio_same_motion_median_pair']:.3f}; "
            f"{o['ratio_holding']:.3f} vs holding)   [goal >= 0.90]")
    if "panda_gym" not in args.skip:
        with console.status("2/4 PandaReach-v0 vs panda-gym PandaReachJoints-v3"):
            g = res["panda_gym"] = bench_panda_gym(args.seconds)
        if g is None:
            console.print("2. panda-gym not installed (pip install robo_agent[bench]): skipped")
        else:
            console.print(
                f"2. robo_agent/PandaReach-v0 {g['ours']:.0f} steps/s vs PandaReachJoints-v3 "
                f"{g['panda_gym']:.0f} steps/s -> {g['ratio']:.2f}x (median per-episode pair "
                f"{g['ratio_median_pair']:.2f}x)   [goal >= 1.0x]")
    if "vector" not in args.skip:
        with console.status("3/4 vector env scaling"):
            v = res["vector"] = bench_vector(args.workers, args.envs_per_worker, args.seconds,
                                             args.rounds)
        n, k = args.workers, args.envs_per_worker
        console.print(
            f"3. SimVectorEnv 1 worker x {k} envs {v['vector_1_worker']:.0f} steps/s, {n} "
            f"workers x {k} envs {v['vector_n_workers']:.0f} steps/s -> scaling "
            f"{v['scaling']:.2f} (median burst pair {v['scaling_median_pair']:.2f}; "
            f"= {v['scaling'] / n:.2f} x N)   [goal >= {0.8 * n:.1f}]\n"
            f"   CPU cores the workers got while stepping: {v['worker_cores_used_1']:.2f} "
            f"(1 worker), {v['worker_cores_used_n']:.2f} ({n} workers); steps per worker "
            f"CPU-second {n} workers / 1 worker: {v['per_cpu_second_ratio']:.2f}\n"
            f"   machine ceiling ({n} independent processes, no IPC): "
            f"{v['independent_n']:.0f} vs {v['independent_1']:.0f} steps/s -> "
            f"{v['machine_scaling']:.2f}\n"
            f"   gymnasium AsyncVectorEnv: 1 env {v['async_vector_env_1']:.0f}, {n} envs "
            f"{v['async_vector_env_n']:.0f} steps/s")
    if "memory" not in args.skip:
        with console.status("4/4 memory"):
            m = res["memory"] = bench_memory()
        console.print(
            f"4. memory: {m['rss_per_extra_env_mb']:.1f} MB RSS per extra env in one process "
            f"(PandaPickAndPlace, {m['probe_envs']} envs, process {m['process_rss_mb']:.0f} MB); "
            f"vector workers {', '.join(f'{r:.0f}' for r in m['vector_worker_rss_mb'])} MB "
            f"with {m['vector_envs_per_worker']} envs each")
    res["loadavg_before"], res["loadavg_after"] = load_before, os.getloadavg()
    console.print(f"load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f} "
                  f"({os.cpu_count()} cores)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
    if args.plot:
        plot(res, args.plot)
    if not args.no_record and not args.skip:
        print(f"record: {write_sim_record(res, load_before)}")


def write_sim_record(res: dict[str, Any], load_before: tuple[float, float, float]) -> Any:
    """The figures of a full run as a record (bench/record.py) for docs/BENCHMARKS.md."""
    from record import write_record  # bench/record.py (the script's folder is on sys.path)

    o, g, v, m = res["overhead"], res["panda_gym"], res["vector"], res["memory"]
    n = res["cpu_count"]
    figures = {
        "raw_same_motion": round(o["raw_same_motion"]), "env_steps": round(o["env_steps"]),
        "env_over_raw": round(o["ratio_same_motion"], 3),
        "env_over_raw_median_pair": round(o["ratio_same_motion_median_pair"], 3),
        "ours_steps": round(g["ours"]) if g else None,
        "panda_gym_steps": round(g["panda_gym"]) if g else None,
        "ours_over_panda_gym": round(g["ratio"], 2) if g else None,
        "workers": n, "vector_1_worker": round(v["vector_1_worker"]),
        "vector_n_workers": round(v["vector_n_workers"]), "vector_scaling": round(v["scaling"], 2),
        "vector_scaling_per_n": round(v["scaling"] / n, 2),
        "machine_scaling": round(v["machine_scaling"], 2),
        "rss_per_extra_env_mb": round(m["rss_per_extra_env_mb"], 1),
        "rss_per_worker_mb": round(max(m["vector_worker_rss_mb"])),
    }  # fmt: skip
    rows = [
        {"id": "sim 1",
         "goal": "env steps/s × substeps ≥ 0.90 of raw `stepSimulation` on the same scene",
         "measured": "**{env_over_raw:.3f}** (median pair {env_over_raw_median_pair:.3f}; "
                     "{env_steps} env steps/s × 20 vs {raw_same_motion} raw steps/s)",
         "check": ["env_over_raw", ">=", 0.9]},
        {"id": "sim 3", "goal": "vector env, N = 2 workers ≥ 0.8 × N = 1.6× of 1 worker",
         "measured": "**{vector_scaling:.2f}× = {vector_scaling_per_n:.2f} × N** "
                     "({vector_1_worker} → {vector_n_workers} steps/s; the machine's own "
                     "ceiling in the same run {machine_scaling:.2f}×)",
         "check": ["vector_scaling", ">=", 0.8 * n]},
        {"id": "sim 4", "goal": "peak memory per env",
         "measured": "{rss_per_extra_env_mb} MB per extra headless env; {rss_per_worker_mb} MB "
                     "per vector worker with 4 envs"},
    ]  # fmt: skip
    if g:
        rows.insert(1, {
            "id": "sim 2", "goal": "`robo_agent/PandaReach-v0` ≥ 1.0× panda-gym "
            "`PandaReachJoints-v3` at equal timestep/substeps",
            "measured": "**{ours_over_panda_gym:.2f}×** "
                        "({ours_steps} vs {panda_gym_steps} steps/s)",
            "check": ["ours_over_panda_gym", ">=", 1.0]})  # fmt: skip
    return write_record("sim", figures, rows, load_before=load_before)


if __name__ == "__main__":
    main()
