"""Sandbox overhead per trial: the same train.py run sandboxed and not, in one invocation.

    python bench/sandbox.py [--budget 10] [--pairs 2] [--json docs/benchmarks/detail/sandbox.json]

Figures, each from pairs measured back to back (sandboxed, then not; the order
alternates per pair, so load from other jobs on the machine hits both sides alike):

* launch: wall-clock of `python -c pass` in the sandbox minus the same outside it —
  the cost of building the namespaces and mounts, `RLIMIT_DATA` and the filtered
  environment — median over 20 pairs; plus the runner's
  own per-process work (`Sandbox()`, `wrap`, `env`, `finish`: temp dir, argument list,
  output sanitising), mean over 20. Their sum is what the sandbox adds to every trial
  repeat, since each runs one sandboxed process tree;
* import: seconds to `import torch, robo_agent.sim`, timed inside the process (so the
  launch is not counted twice), sandboxed minus plain, median over 6 pairs: the cost of
  reading Python and its packages through the read-only binds, which train.py pays out
  of its budget (its budget counts from its own start);
* per trial: wall-clock of `execute.train_once` (the runner's real launch path: write
  train.py, start the process tree, poll memory at 10 Hz, wait, sanitise the output,
  verify the artifact) with `sandbox='bwrap'` and with `sandbox='none'` at the given
  budget, and the env steps each side managed in that budget. On a loaded machine these
  full trials vary by seconds from run to run, far more than the sandbox costs; they are
  printed as a check that training behaves the same, not used for the overhead.

Also, for choosing the memory limit: the peak VmSize (address space, what `RLIMIT_AS`
would cap), VmData (heap and private writable mappings, what `RLIMIT_DATA` caps) and
VmRSS of each process of a plain baseline train.py run at the budget, sampled at 5 Hz.

Overhead per trial repeat = launch + runner side + import, reported in seconds and as a
percentage of the budget (goal <= 3 %).
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
IMPORT = (
    "import time; t = time.perf_counter(); import torch, robo_agent.sim; "
    "print(time.perf_counter() - t)"
)
ROOT = Path(__file__).resolve().parents[1]


def _launch(folder: Path, mode: str, code: str) -> tuple[float, float]:
    """(wall of `python -c code` in `mode`, the float the code printed, or 0)."""
    from robo_agent.autoresearch.execute import _child_env
    from robo_agent.autoresearch.sandbox import Sandbox

    box = Sandbox(mode, folder, 8192)
    cmd = box.wrap([sys.executable, "-c", code])
    t0 = time.perf_counter()
    out = subprocess.run(cmd, env=box.env(_child_env(1)), preexec_fn=box.preexec(), check=True,
                         cwd=folder, capture_output=True, text=True).stdout  # fmt: skip
    wall = time.perf_counter() - t0
    box.finish()
    return wall, float(out.strip() or 0.0)


def _runner_side(folder: Path, rounds: int = 20) -> float:
    """Mean seconds of the runner's own sandbox work per process (no process started)."""
    from robo_agent.autoresearch.execute import _child_env
    from robo_agent.autoresearch.sandbox import Sandbox

    (folder / "artifact").mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    for _ in range(rounds):
        box = Sandbox("bwrap", folder, 8192)
        box.wrap([sys.executable, "train.py"])
        box.env(_child_env(1))
        box.finish()
    return (time.perf_counter() - t0) / rounds


def _pairs(root: Path, code: str, n: int) -> dict[str, list[tuple[float, float]]]:
    found: dict[str, list[tuple[float, float]]] = {"bwrap": [], "none": []}
    for i in range(n):
        for mode in ("bwrap", "none") if i % 2 == 0 else ("none", "bwrap"):
            found[mode].append(_launch(root, mode, code))
    return found


def _median_diff(found: dict[str, list[tuple[float, float]]], k: int) -> tuple[float, float, float]:
    box = statistics.median(x[k] for x in found["bwrap"])
    plain = statistics.median(x[k] for x in found["none"])
    return box, plain, box - plain


def _trial(folder: Path, mode: str, budget: float, seed: int) -> tuple[float, int, str]:
    from robo_agent.autoresearch.execute import Job, train_once

    job = Job(trial=0, commit="", source=(ROOT / "autoresearch" / "train.py").read_text(),
              task=TASK, budget_seconds=budget, grace_seconds=30.0, train_seeds=[seed],
              eval_seed_base=0, eval_episodes=1, device="cpu", sandbox=mode)  # fmt: skip
    t0 = time.perf_counter()
    result = train_once(job, seed, folder)
    return time.perf_counter() - t0, result.env_steps, result.status


def _memory_peaks(folder: Path, budget: float) -> list[dict[str, int]]:
    """Peak VmSize/VmData/VmRSS (MB) per process of one plain train.py run."""
    import psutil

    folder.mkdir(parents=True)
    (folder / "train.py").write_text((ROOT / "autoresearch" / "train.py").read_text())
    cmd = [sys.executable, "train.py", "--task", TASK, "--seed", "0",
           "--budget-seconds", str(budget), "--out", ".", "--device", "cpu"]  # fmt: skip
    quiet = subprocess.DEVNULL
    proc = subprocess.Popen(cmd, cwd=folder, stdout=quiet, stderr=quiet)
    peaks: dict[int, dict[str, int]] = {}
    while proc.poll() is None:
        try:
            tree = [proc.pid] + [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
        except psutil.Error:
            break
        for pid in tree:
            try:
                status = Path(f"/proc/{pid}/status").read_text().splitlines()
            except OSError:
                continue
            fields = dict(line.split(":", 1) for line in status if ":" in line)
            now = {k: int(fields[k].split()[0]) // 1024 for k in ("VmSize", "VmData", "VmRSS")}
            old = peaks.get(pid, {})
            peaks[pid] = {k: max(v, old.get(k, 0)) for k, v in now.items()}
        time.sleep(0.2)
    return list(peaks.values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget", type=float, default=10.0)
    parser.add_argument("--pairs", type=int, default=2)
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
        launch = _pairs(root, "pass", 20)
        lw = _median_diff(launch, 0)
        side = _runner_side(root / "side")
        imports = _pairs(root, IMPORT, 6)
        imp = _median_diff(imports, 1)
        print(
            f"launch `python -c pass`: sandboxed {lw[0]:.3f} s, plain {lw[1]:.3f} s -> "
            f"{lw[2]:+.3f} s (median of 20 pairs)"
        )
        print(f"runner side per process (Sandbox, wrap, env, finish): {side * 1000:.1f} ms")
        print(
            f"import torch + robo_agent.sim inside the process: sandboxed {imp[0]:.3f} s, "
            f"plain {imp[1]:.3f} s -> {imp[2]:+.3f} s (median of 6 pairs)"
        )
        trials: dict[str, list[tuple[float, int, str]]] = {"bwrap": [], "none": []}
        for i in range(args.pairs):
            for mode in ("bwrap", "none") if i % 2 == 0 else ("none", "bwrap"):
                folder = root / f"{mode}{i}"
                trials[mode].append(_trial(folder, mode, args.budget, seed=i))
                wall, steps, status = trials[mode][-1]
                print(f"pair {i} {mode:5s}: train_once {wall:.2f} s, {steps} env steps, {status}")
        memory = _memory_peaks(root / "memory", args.budget)
        for i, peak in enumerate(memory):
            print(f"memory, plain train.py process {i}: VmSize {peak['VmSize']} MB, VmData "
                  f"{peak['VmData']} MB, VmRSS {peak['VmRSS']} MB (peaks)")  # fmt: skip
    overhead = lw[2] + side + imp[2]
    percent = 100 * overhead / args.budget
    wall = {m: statistics.mean(t[0] for t in v) for m, v in trials.items()}
    steps = {m: statistics.mean(t[1] for t in v) for m, v in trials.items()}
    print(
        f"full trials at a {args.budget:g} s budget (mean of {args.pairs}): sandboxed "
        f"{wall['bwrap']:.2f} s / {steps['bwrap']:.0f} env steps, plain {wall['none']:.2f} s / "
        f"{steps['none']:.0f} env steps"
    )
    print(
        f"sandbox overhead per trial repeat: {overhead:.3f} s = {percent:.2f} % of the "
        f"{args.budget:g} s budget (goal <= 3 %)"
    )
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
        "launch_pass": {
            "sandboxed_wall": lw[0],
            "plain_wall": lw[1],
            "overhead_wall": lw[2],
            "pairs": 20,
        },
        "runner_side_seconds": side,
        "import_torch_sim_in_process": {
            "sandboxed": imp[0],
            "plain": imp[1],
            "overhead": imp[2],
            "pairs": 6,
        },
        "full_trials": {
            m: [{"wall": w, "env_steps": s, "status": st} for w, s, st in v]
            for m, v in trials.items()
        },
        "overhead_seconds_per_trial": overhead,
        "overhead_percent_of_budget": percent,
        "goal_percent": 3.0,
        "memory_peaks_mb_per_process": memory,
    }
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
