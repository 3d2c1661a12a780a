"""GPU figures in one run (called by bench/gpu.sh, which bounds it to 8 minutes).

    bash bench/gpu.sh [--quick] [--record-dir DIR] [--no-record]

1. training throughput of `autoresearch/train.py`: env steps/s and gradient updates/s
   over the same wall-clock budget on the CPU and on CUDA (the default settings, and on
   CUDA also a GPU-sized batch), ratio CUDA / CPU measured in this run;
2. time to 95 % held-out success on CUDA (`bench/train.py --skip-sb3`, checkpoints
   scored by the frozen evaluator);
3. research trials/hour with `--parallel` = the core count (random proposer, one seed).

Without a usable GPU it says so, skips the CUDA parts and still runs the rest on the CPU
(that is how it was tested: no GPU was available to the session that wrote it).
Writes a record under docs/benchmarks/ unless --no-record.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from record import RECORDS, write_record  # bench/record.py (the script's folder is on sys.path)

ROOT = Path(__file__).resolve().parent.parent
TRAIN = ROOT / "autoresearch" / "train.py"


def _summary(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(": ")
        if sep and key in ("env_steps", "updates", "train_seconds"):
            out[key] = float(value)
    return out


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b > 0 else None


def throughput(device: str, seconds: float, tmp: Path, extra: list[str]) -> dict[str, float]:
    """Run train.py for `seconds` on `device`; env steps/s and updates/s over its whole wall
    time (start-up included, the same few seconds on either device)."""
    out = tmp / f"train-{device}-{len(extra)}"
    cmd = [sys.executable, str(TRAIN), "--device", device, "--budget-seconds", str(seconds),
           "--out", str(out), "--log-seconds", "1000", *extra]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120, check=False)
    s = _summary(proc.stdout)
    if proc.returncode != 0 or "train_seconds" not in s:
        tail = proc.stdout[-2000:] + proc.stderr[-2000:]
        raise SystemExit(f"train.py on {device} failed:\n{tail}")
    wall = s["train_seconds"]
    return {"env_steps_per_s": s["env_steps"] / wall, "updates_per_s": s["updates"] / wall,
            "wall_s": wall}  # fmt: skip


def time_to_95(budget: float, tmp: Path) -> float | None:
    out = tmp / "t95.json"
    cmd = [sys.executable, str(ROOT / "bench" / "train.py"), "--skip-sb3", "--budget", str(budget),
           "--json", str(out)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=budget + 300, check=False)
    if proc.returncode != 0 or not out.exists():
        raise SystemExit(f"bench/train.py failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return json.loads(out.read_text())["ours"]["seconds"]


def research_rate(parallel: int, trials: int, tmp: Path) -> float:
    def cli(*args: str) -> float:
        start = time.monotonic()
        cmd = [sys.executable, "-m", "robo_agent.cli", "research", *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1200, check=False)
        if proc.returncode != 0:
            raise SystemExit(f"research {args[0]} failed:\n{proc.stdout[-2000:]}{proc.stderr}")
        return time.monotonic() - start

    ws = tmp / "ws"
    cli("init", str(ws), "--repeats", "1", "--device", "auto")
    cli("run", str(ws), "--quiet", "--trials", "0")  # baseline, not timed
    wall = cli("run", str(ws), "--quiet", "--trials", str(trials), "--parallel", str(parallel),
               "--proposer", "random", "--seed", "0")  # fmt: skip
    return trials / wall * 3600


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="short budgets (a check, not figures)")
    ap.add_argument("--record-dir", default=str(RECORDS))
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    from robo_agent.autoresearch.devices import cuda_devices, describe

    load_before = os.getloadavg()
    cores = os.cpu_count() or 1
    seconds, t95_budget = (15.0, 15.0) if args.quick else (30.0, 30.0)
    gpu = bool(cuda_devices())
    print(f"machine: {cores} cores; {describe()}", flush=True)
    if not gpu:
        print("NO GPU: torch sees no CUDA device here, so the CUDA figures are skipped; "
              "the CPU parts run so the script is checked end to end.", flush=True)  # fmt: skip
    figures: dict[str, float | int | str | None] = {"cores": cores, "gpu": describe(),
                                                    "train_seconds": seconds}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-gpu-") as tmpdir:
        tmp = Path(tmpdir)
        cpu = throughput("cpu", seconds, tmp, [])
        print(f"1. cpu : {cpu['env_steps_per_s']:.0f} env steps/s, "
              f"{cpu['updates_per_s']:.0f} updates/s (train.py defaults)", flush=True)  # fmt: skip
        figures.update(cpu_env_steps_per_s=round(cpu["env_steps_per_s"], 1),
                       cpu_updates_per_s=round(cpu["updates_per_s"], 1))  # fmt: skip
        if gpu:
            big = ["--batch-size", "1024", "--updates-per-step", "1.0", "--n-envs", "16"]
            for name, extra in (("cuda", []), ("cuda_big_batch", big)):
                r = throughput("cuda", seconds, tmp, extra)
                steps_x = _ratio(r["env_steps_per_s"], cpu["env_steps_per_s"])
                updates_x = _ratio(r["updates_per_s"], cpu["updates_per_s"])
                print(f"1. {name}: {r['env_steps_per_s']:.0f} env steps/s ({steps_x}x cpu), "
                      f"{r['updates_per_s']:.0f} updates/s ({updates_x}x cpu) {' '.join(extra)}",
                      flush=True)  # fmt: skip
                figures[f"{name}_env_steps_per_s"] = round(r["env_steps_per_s"], 1)
                figures[f"{name}_updates_per_s"] = round(r["updates_per_s"], 1)
                figures[f"{name}_steps_ratio"] = steps_x
                figures[f"{name}_updates_ratio"] = updates_x
        t95 = time_to_95(t95_budget, tmp)
        where = "cuda" if gpu else "cpu (no GPU)"
        print(f"2. time to 95 % held-out success on {where}: "
              f"{'not reached' if t95 is None else f'{t95:.1f} s'} (budget {t95_budget:g} s)",
              flush=True)  # fmt: skip
        figures["t95_device"] = where
        figures["t95_s"] = t95
        figures["t95_budget_s"] = t95_budget
        figures["t95_text"] = "not reached" if t95 is None else f"{t95:.1f} s"
        trials = 2 * cores if not args.quick else cores
        rate = research_rate(cores, trials, tmp)
        print(f"3. research --parallel {cores}: {trials} trials, {rate:.0f} trials/hour "
              f"(device auto = {'cuda' if gpu else 'cpu'})", flush=True)  # fmt: skip
        figures.update(parallel=cores, research_trials=trials,
                       research_trials_per_hour=round(rate, 1))  # fmt: skip
    print(f"load average {load_before[0]:.2f} -> {os.getloadavg()[0]:.2f}")
    if args.no_record:
        return
    if gpu:
        rows = [{"id": "gpu 1", "goal": "train.py on CUDA vs CPU, same budget (bench/gpu.sh)",
                 "measured": "env steps/s **{cuda_steps_ratio:.2f}×**, updates/s "
                             "**{cuda_updates_ratio:.2f}×** CPU (defaults); batch 1024: "
                             "{cuda_big_batch_updates_ratio:.2f}× updates/s; {gpu}"},
                {"id": "gpu 2", "goal": "time to 95 % held-out success on CUDA",
                 "measured": "**{t95_text}** (budget {t95_budget_s:g} s)"},
                {"id": "gpu 3", "goal": "research trials/hour, `--parallel` = cores, on a GPU box",
                 "measured": "**{research_trials_per_hour:.0f}** trials/h (--parallel {parallel})"}]
    else:
        rows = [{"id": "gpu 1", "goal": "train.py on CUDA vs CPU (bench/gpu.sh)",
                 "measured": "not measured: no GPU was available ({gpu}); the script ran on "
                             "the CPU only", "met": "—"}]  # fmt: skip
    command = "bash bench/gpu.sh" + (" --quick" if args.quick else "")
    path = write_record("gpu", figures, rows, command=command, load_before=load_before,
                        out_dir=Path(args.record_dir))  # fmt: skip
    print(f"record: {path}")


if __name__ == "__main__":
    main()
