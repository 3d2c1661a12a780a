"""Research trials/hour on a real Ray cluster of 1 node vs 2 nodes, measured in one run.

    python bench/ray_cluster.py [--budget 6] [--trials 4] [--rounds 1] [--cpus-per-node 1]
                                [--no-record]

Both clusters are `ray start --block` nodes on this machine (see
`robo_agent.autoresearch.ray_cluster`), `--cpus-per-node` CPUs each; the research runs as
a user would run it, `robo-agent research run --backend ray --address ... --parallel 2`,
from copies of one workspace whose baseline was trained once beforehand (so both sides
time the same `--trials` random-proposer candidates and nothing else). The 1-node run is
the reference measured in the same run, in the order 1, 2, 2, 1 nodes (`--rounds` times),
so a load that rises or falls steadily during the run hits both sides alike; prints
trials/hour for both, the ratio and the trials' statuses (a timeout under load shows
there), and writes a record under docs/benchmarks/ (with the git commit).

With a wall-clock budget a trial takes about the same time on either cluster, so the
ratio says how many trials the second node adds at the same budget; on a 2-core machine
shared with other jobs the two nodes also share the same two cores.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from record import write_record  # bench/record.py (the script's folder is on sys.path)

TASK = "robo_agent/PandaReach-v0"


def _cli(*args: str, env: dict[str, str] | None = None, timeout: float = 1800) -> float:
    """Run `robo-agent ...`; returns its wall time in seconds (raises on failure)."""
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "robo_agent.cli", *args], env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(f"robo-agent {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return time.monotonic() - start


def _statuses(ws: Path) -> list[str]:
    from robo_agent.autoresearch.workspace import Workspace

    return [r.status for r in Workspace(ws).ledger.rows() if r.proposer != "baseline"]


def _timed_run(ws: Path, nodes: int, args: argparse.Namespace) -> float:
    from robo_agent.autoresearch.ray_cluster import LoopbackCluster

    root = tempfile.mkdtemp(prefix="rb", dir="/tmp")  # short: Ray's socket paths < 108 bytes
    try:
        with LoopbackCluster(root, cpus_per_node=args.cpus_per_node) as cluster:
            cluster.head()
            for _ in range(nodes - 1):
                cluster.add_node()
            wall = _cli("research", "run", str(ws), "--quiet", "--trials", str(args.trials),
                        "--parallel", str(nodes * args.cpus_per_node), "--proposer", "random",
                        "--seed", "0", "--backend", "ray", "--address", cluster.address,
                        env=cluster.env)  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--budget", type=float, default=6.0, help="training seconds per trial")
    ap.add_argument("--trials", type=int, default=4, help="trials timed on each cluster")
    ap.add_argument("--episodes", type=int, default=20, help="held-out episodes per trial")
    ap.add_argument("--rounds", type=int, default=1, help="repeats of the 1, 2, 2, 1 order")
    ap.add_argument("--cpus-per-node", type=int, default=1)
    ap.add_argument("--no-record", action="store_true", help="do not write a record")
    args = ap.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-ray-") as tmp:
        base = Path(tmp) / "base"
        _cli("research", "init", str(base), "--task", TASK, "--budget", str(args.budget),
             "--repeats", "1", "--episodes", str(args.episodes), "--device", "cpu")  # fmt: skip
        _cli("research", "run", str(base), "--quiet", "--trials", "0")  # the baseline, locally
        walls: dict[int, list[float]] = {1: [], 2: []}
        statuses: dict[int, list[str]] = {1: [], 2: []}
        for k, nodes in enumerate([1, 2, 2, 1] * args.rounds):
            ws = Path(tmp) / f"run{k}"
            shutil.copytree(base, ws, symlinks=True)
            wall = _timed_run(ws, nodes, args)
            walls[nodes].append(wall)
            statuses[nodes] += _statuses(ws)
            print(f"{nodes} node(s) x {args.cpus_per_node} CPU: {args.trials} trials in "
                  f"{wall:.1f} s = {args.trials / wall * 3600:.0f} trials/hour "
                  f"(load {os.getloadavg()[0]:.2f})", flush=True)  # fmt: skip
    rate = {n: len(w) * args.trials / sum(w) * 3600 for n, w in walls.items()}
    results = {n: (sum(walls[n]) / len(walls[n]), rate[n]) for n in walls}
    for n in (1, 2):
        counts = {st: statuses[n].count(st) for st in sorted(set(statuses[n]))}
        print(f"{n} node(s): {rate[n]:.0f} trials/hour over {len(walls[n])} runs; {counts}")
    scaling = results[2][1] / results[1][1]
    print(f"2 nodes / 1 node: {scaling:.2f}x trials/hour (budget {args.budget:g} s, "
          f"load average {load_before[0]:.2f} -> {os.getloadavg()[0]:.2f}, "
          f"{os.cpu_count()} cores)")  # fmt: skip
    if args.no_record:
        return
    figures = {
        "budget_s": args.budget, "trials": args.trials, "cpus_per_node": args.cpus_per_node,
        "runs_per_side": 2 * args.rounds,
        "nodes_1_not_ok": sum(st not in ("keep", "discard") for st in statuses[1]),
        "nodes_2_not_ok": sum(st not in ("keep", "discard") for st in statuses[2]),
        "nodes_1_wall_s": round(results[1][0], 1), "nodes_2_wall_s": round(results[2][0], 1),
        "nodes_1_trials_per_hour": round(results[1][1], 1),
        "nodes_2_trials_per_hour": round(results[2][1], 1), "scaling": round(scaling, 3),
    }  # fmt: skip
    rows = [{
        "id": "ray 1",
        "goal": "research trials/hour on a 2-node Ray cluster vs 1 node (loopback, same run)",
        "measured": "{nodes_1_trials_per_hour:.0f} → {nodes_2_trials_per_hour:.0f} trials/h "
                    "= **{scaling:.2f}×** ({trials} trials × {runs_per_side} runs per side, "
                    "budget {budget_s:g} s, {cpus_per_node} CPU per node)",
    }]  # fmt: skip
    path = write_record("ray", figures, rows, load_before=load_before)
    print(f"record: {path}")


if __name__ == "__main__":
    main()
