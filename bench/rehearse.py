"""Rehearsal parity figures (issue 7): does a policy do over ROS what it did in the env?

Runs `robo-agent rehearse` (sim_robot + one policy_runner process per episode over real
DDS, and the same goals directly in the Gymnasium env) on one artifact and writes a
benchmark record with the parity (ROS success / direct success, goal >= 0.95), the paired
McNemar p, the median final errors and the added-latency curve.

    # a policy trained here by train.py for a fixed number of env steps
    python bench/rehearse.py --train-steps 16000 --seed 1 --episodes 20 --latency-ms 0 20 50
    # the policy exported from a research workspace (e.g. the default research run)
    python bench/rehearse.py --workspace research-default --episodes 20 --row "deploy 5"

`--train-steps` trains into a temporary folder with `autoresearch/train.py` (bit-repeatable:
the same steps and seed give the same policy on any machine); `--workspace` exports the
workspace's best trial with `robo-agent export` first. The rehearsal itself writes nothing
beside the artifact here (`write=False`).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from record import write_record

from robo_agent.deploy.rehearse import rehearse

ROOT = Path(__file__).resolve().parents[1]


def _train(steps: int, seed: int, out: Path) -> Path:
    subprocess.run([sys.executable, str(ROOT / "autoresearch" / "train.py"),
                    "--budget-steps", str(steps), "--budget-seconds", "600",
                    "--seed", str(seed), "--out", str(out)], check=True)
    return out / "artifact"


def _export(workspace: Path, out: Path) -> Path:
    subprocess.run([sys.executable, "-m", "robo_agent.cli", "export", str(workspace),
                    "--out", str(out)], check=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--train-steps", type=int, help="train a policy for this many env steps")
    src.add_argument("--workspace", type=Path, help="export this research workspace's best")
    src.add_argument("--artifact", type=Path, help="an artifact folder as it is")
    ap.add_argument("--seed", type=int, default=1, help="training seed (--train-steps)")
    ap.add_argument("--episodes", type=int, default=20)
    ap.add_argument("--latency-ms", type=float, nargs="*", default=[0, 20, 50])
    ap.add_argument("--row", default="deploy 4", help="summary row id this record supplies")
    args = ap.parse_args()

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench_rehearse_") as tmp:
        if args.train_steps:
            artifact = _train(args.train_steps, args.seed, Path(tmp) / "train")
            source = f"a train.py policy ({args.train_steps} env steps, seed {args.seed})"
        elif args.workspace:
            artifact = _export(args.workspace, Path(tmp) / "export")
            source = f"the best policy of the research workspace {args.workspace.name}"
        else:
            artifact, source = args.artifact, f"the artifact {args.artifact}"
        result = rehearse(artifact, episodes=args.episodes, latencies_ms=args.latency_ms,
                          write=False)
    curve = result["latency_curve"]
    figures = {
        "episodes": args.episodes, "ros_success": result["ros_success"],
        "direct_success": result["direct_success"], "parity": round(result["parity"], 3),
        "mcnemar_p": round(result["mcnemar_p"], 3),
        "ros_final_error_mm": round(result["final_error_m"] * 1000, 1),
        "direct_final_error_mm": round(result["direct_final_error_m"] * 1000, 1),
        "loop_hz": round(result["loop_rate_hz"], 2), "passed": result["passed"],
        "latency_curve": " / ".join(f"{k} ms: {v:.2f}" for k, v in curve.items()),
    }
    row = {
        "id": args.row,
        "goal": "rehearsal parity (ROS / direct success on the same goals) ≥ 0.95",
        "measured": "**{parity}** on " + source + " ({episodes} goals: ROS {ros_success}, "
                    "direct {direct_success}, McNemar p {mcnemar_p}; median final error "
                    "{ros_final_error_mm} mm vs {direct_final_error_mm} mm; loop {loop_hz} Hz); "
                    "success with added latency: {latency_curve}",
        "check": ["parity", ">=", 0.95],
    }
    path = write_record("rehearse", figures, [row], load_before=load_before,
                        notes="bench/rehearse.py; robo-agent rehearse's own figures")
    print({k: v for k, v in figures.items()}, f"\nrecord: {path}")


if __name__ == "__main__":
    main()
