"""Time to 95% success on 50 held-out episodes: ours vs SB3 SAC+HER, on the same env.

    python bench/train.py                  # both, CPU here (CUDA if available)
    python bench/train.py --skip-sb3       # ours only
    python bench/train.py --skip-ours      # SB3 only (a diagnostic run; writes no record)

* **ours**: `autoresearch/train.py` (the research baseline) on `--task` (default
  `robo_agent/PandaReach-v0`), run as a subprocess with `--checkpoint-seconds C` under
  `bench/train_checkpoints.py`, which keeps the artifact of every checkpoint with its
  timings; afterwards every checkpoint artifact is scored by the frozen
  evaluator (onnxruntime) on 50 held-out seeds. Wall time = training wall-clock from the
  first env step to that checkpoint, time spent saving excluded (imports and env
  start-up are listed apart). CPU time = the trainer's own clock at that checkpoint:
  user + system CPU of its process tree (psutil, the sim worker processes included)
  **from process start**, so its imports, start-up and checkpoint saving are counted.
* **SB3**: stable-baselines3 SAC + HerReplayBuffer on the **same env** (panda-gym ids
  such as `PandaReachJoints-v3` work for both too) with rl-baselines3-zoo's settings
  (`SB3_ZOO` below: hyperparams/sac.yml `FetchReach-v1`, the zoo's SAC+HER reach entry;
  its tqc.yml `PandaReach-v1` has the same values), `normalize: True` included, i.e.
  a `VecNormalize` of observations and rewards. A callback scores the current policy
  every `--sb3-every` steps on the same 50 held-out seeds (deterministic action, the
  observation normalised by the VecNormalize statistics of that moment, as the zoo's
  enjoy script does) and stops training at the first score >= 0.95. Wall and CPU time
  (user + system of this process and any children, psutil) count from the start of
  `learn()`; the scoring's own wall and CPU time are subtracted. The scoring stops an
  evaluation as soon as it has more than 2 failures (the score can then no longer
  reach 0.95), so the first snapshot reaching 0.95 is exactly the one a full
  evaluation would find; the training-time success rate (SB3's own `ep_success_buffer`,
  stochastic actions, last 100 episodes) is recorded beside each score as a check.
  SB3 runs with 1 torch thread, as ours (on this 2-core machine 2000 of its training
  steps took 13.2 s with 1 thread, 15.6 s with 2).

Both run in this process tree on this machine, one after the other; ratios ours / SB3
on wall-clock and on CPU time are printed at the end (CPU time is the fairer one when
the machine is shared: it does not count time spent waiting for a core). Load averages
are recorded before, between and after the two runs. Evaluation time is never counted.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SEED_BASE = 2_000_000_000  # held out from both trainers' seeds
TARGET = 0.95
#: rl-baselines3-zoo hyperparams/sac.yml `FetchReach-v1` (= tqc.yml `PandaReach-v1` less
#: TQC's n_critics): n_timesteps 2e4, MultiInputPolicy; the rest are SB3 defaults
#: (tau 0.005, train_freq 1, gradient_steps 1, one env)
SB3_ZOO = {
    "buffer_size": 1_000_000, "ent_coef": "auto", "batch_size": 256, "gamma": 0.95,
    "learning_rate": 1e-3, "learning_starts": 1000, "normalize": True,
    "replay_buffer_kwargs": {"goal_selection_strategy": "future", "n_sampled_goal": 4},
    "policy_kwargs": {"net_arch": [64, 64]},
}  # fmt: skip
SB3_SETTINGS = ("rl-baselines3-zoo sac.yml FetchReach-v1 / tqc.yml PandaReach-v1: gamma "
                "0.95, lr 1e-3, batch 256, buffer 1e6, learning_starts 1000, ent_coef auto, "
                "HER future 4, net [64, 64], VecNormalize (obs + reward); SB3 defaults tau "
                "0.005, 1 env, 1 gradient step per env step")  # fmt: skip


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def run_ours(args: argparse.Namespace, work: Path) -> dict:
    from robo_agent.autoresearch.evaluate import evaluate

    # train.py registers only the robo_agent/* ids; panda-gym's tasks (the same-env
    # comparison) are registered by the wrapper, which also keeps every checkpoint
    register = [] if args.task.startswith("robo_agent/") else ["--register", "panda_gym"]
    launcher = [sys.executable, str(ROOT / "bench" / "train_checkpoints.py"), *register,
                args.train_py]
    cmd = [
        *launcher,
        "--task", args.task, "--seed", str(args.seed),
        "--budget-seconds", str(args.budget), "--out", str(work),
        "--checkpoint-seconds", str(args.checkpoint_seconds),
        "--log-seconds", "1000",
    ]  # fmt: skip
    started = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"train.py failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    index = [json.loads(x) for x in (work / "checkpoints" / "index.jsonl").read_text().splitlines()]
    seeds = list(range(SEED_BASE, SEED_BASE + args.episodes))
    print(f"ours: {args.task}, {len(index)} checkpoints, process wall {wall:.1f} s")
    curve = []
    found = None
    for r in index:
        score = evaluate(r["artifact"], args.task, seeds)["score"]
        point = {"s": round(r["train_seconds"], 2), "cpu_s": round(r["cpu_seconds"], 2),
                 "steps": r["env_steps"], "score": score}  # fmt: skip
        curve.append(point)
        print(f"  {point['s']:7.2f} s  {point['cpu_s']:7.2f} cpu-s  {point['steps']:7d} steps  "
              f"success {score:.2f}", flush=True)  # fmt: skip
        if score >= TARGET:
            found = point
            break
    startup = index[0]["process_seconds"] - index[0]["train_seconds"]
    return {"seconds": found and found["s"], "cpu_seconds": found and found["cpu_s"],
            "steps": found and found["steps"], "curve": curve, "startup_seconds": startup,
            "process_wall_seconds": wall}  # fmt: skip


def process_cpu_seconds() -> float:
    """User + system CPU of this process and its live children (psutil). Not the
    `children_*` counters: those hold finished children (our trainer's run)."""
    import psutil

    me = psutil.Process()
    t = me.cpu_times()
    total = t.user + t.system
    for child in me.children(recursive=True):
        try:
            c = child.cpu_times()
            total += c.user + c.system
        except psutil.Error:
            continue
    return total


def run_sb3(args: argparse.Namespace) -> dict:
    import gymnasium as gym
    import panda_gym  # noqa: F401
    import robo_agent.sim  # noqa: F401  (registers robo_agent/* ids)
    import torch
    from stable_baselines3 import SAC, HerReplayBuffer
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    torch.set_num_threads(args.sb3_threads)
    zoo = copy.deepcopy(SB3_ZOO)  # SB3 adds keys to policy_kwargs
    normalize = zoo.pop("normalize")
    venv = DummyVecEnv([lambda: Monitor(gym.make(args.task), info_keywords=("is_success",))])
    if normalize:  # the zoo's `normalize: True` with the algorithm's gamma
        venv = VecNormalize(venv, gamma=zoo["gamma"])
    model = SAC("MultiInputPolicy", venv, replay_buffer_class=HerReplayBuffer, seed=args.seed,
                device="auto", verbose=args.sb3_verbose, **zoo)  # fmt: skip
    eval_env = gym.make(args.task)
    allowed_failures = int(np.floor(args.episodes * (1 - TARGET) + 1e-9))

    def score() -> tuple[int, int]:
        """(successes, episodes run) of the current policy; stops after too many failures."""
        wins = fails = 0
        for i in range(args.episodes):
            obs, info = eval_env.reset(seed=SEED_BASE + i)
            done = False
            while not done:
                x = venv.normalize_obs(obs) if normalize else obs
                action, _ = model.predict(x, deterministic=True)
                obs, _, terminated, truncated, info = eval_env.step(action)
                done = terminated or truncated
            if info.get("is_success", False):
                wins += 1
            else:
                fails += 1
                if fails > allowed_failures:
                    break
        return wins, wins + fails

    class Scorer(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.curve: list[dict] = []
            self.found: dict | None = None

        def _on_training_start(self) -> None:
            self.wall0, self.cpu0 = time.monotonic(), process_cpu_seconds()
            self.excluded_wall = self.excluded_cpu = 0.0

        def _on_step(self) -> bool:
            if self.num_timesteps % args.sb3_every:
                return True
            w0, c0 = time.monotonic(), process_cpu_seconds()
            wins, n = score()
            buf = self.model.ep_success_buffer
            point = {"s": round(w0 - self.wall0 - self.excluded_wall, 2),
                     "cpu_s": round(c0 - self.cpu0 - self.excluded_cpu, 2),
                     "steps": self.num_timesteps, "wins": wins, "episodes": n,
                     "score": wins / args.episodes if n == args.episodes else None,
                     "train_success": round(float(np.mean(buf)), 2) if buf else None}  # fmt: skip
            self.curve.append(point)
            shown = f"{point['score']:.2f}" if n == args.episodes else f"< {TARGET} ({wins}/{n})"
            print(f"  {point['s']:7.2f} s  {point['cpu_s']:7.2f} cpu-s  {point['steps']:7d} steps"
                  f"  success {shown}  (training-time success {point['train_success']})",
                  flush=True)  # fmt: skip
            self.excluded_wall += time.monotonic() - w0
            self.excluded_cpu += process_cpu_seconds() - c0
            if n == args.episodes and wins / args.episodes >= TARGET:
                self.found = point
                return False
            return True

    print(f"sb3: {args.task}, torch threads {torch.get_num_threads()}, device {model.device}, "
          f"zoo settings {SB3_ZOO}")  # fmt: skip
    scorer = Scorer()
    model.learn(total_timesteps=args.sb3_steps, callback=scorer)
    f = scorer.found
    return {"seconds": f and f["s"], "cpu_seconds": f and f["cpu_s"], "steps": f and f["steps"],
            "curve": scorer.curve, "torch_threads": torch.get_num_threads()}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", default="robo_agent/PandaReach-v0")
    parser.add_argument("--budget", type=float, default=40.0,
                        help="our training budget, CPU s")  # fmt: skip
    parser.add_argument("--checkpoint-seconds", type=float, default=1.0)
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--sb3-steps",
        type=int,
        default=60_000,
        help="SB3's step cap (it stops earlier once a snapshot reaches 95%%)",
    )
    parser.add_argument("--sb3-every", type=int, default=500)
    parser.add_argument(
        "--sb3-threads",
        type=int,
        default=1,
        help="torch threads for SB3 (1, as ours; faster here than 2)",
    )
    parser.add_argument("--sb3-verbose", type=int, default=0)
    parser.add_argument("--skip-sb3", action="store_true")
    parser.add_argument("--skip-ours", action="store_true")
    parser.add_argument(
        "--train-py", default=str(ROOT / "autoresearch" / "train.py"),
        help="our trainer script (default: autoresearch/train.py; another for A/B runs)",
    )  # fmt: skip
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()
    load = {"before": loadavg()}
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"device: {device}, load averages {load['before']}")
    result: dict = {"device": device}
    if not args.skip_ours:
        with tempfile.TemporaryDirectory() as tmp:
            result["ours"] = run_ours(args, Path(tmp))
        load["after_ours"] = loadavg()
    if not args.skip_sb3:
        result["sb3"] = run_sb3(args)
        load["after_sb3"] = loadavg()
    result["load"] = load
    print("\n# summary (training time to >= 95% on 50 held-out episodes)")
    ours, sb3 = result.get("ours"), result.get("sb3")
    if ours:
        print(
            f"ours: {ours['seconds']} s, {ours['cpu_seconds']} CPU s ({ours['steps']} steps; "
            f"+{ours['startup_seconds']:.1f} s wall imports/start-up not in the wall time)"
        )
    if sb3:
        print(f"sb3:  {sb3['seconds']} s, {sb3['cpu_seconds']} CPU s ({sb3['steps']} steps)")
    if ours and sb3 and ours["seconds"] is not None and sb3["seconds"] is not None:
        result["ratio"] = ours["seconds"] / sb3["seconds"]
        result["cpu_ratio"] = ours["cpu_seconds"] / sb3["cpu_seconds"]
        print(
            f"ratio ours/sb3: wall {result['ratio']:.3f}, CPU {result['cpu_ratio']:.3f} "
            f"(goal <= 0.25)"
        )
    print(f"load averages (1/5/15 min): {load}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, default=float))
    if ours and sb3:
        _record(args, result)
    return 0


def _record(args: argparse.Namespace, result: dict) -> None:
    """One benchmark record (row `research 1`): both trainers on the same env, one run."""
    sys.path.insert(0, str(ROOT / "bench"))
    from record import write_record

    def fig(x: float | None) -> float | str:
        return "not reached" if x is None else round(x, 1)

    ours, sb3, load = result["ours"], result["sb3"], result["load"]
    curve = sb3["curve"]
    figures = {"task": args.task, "seed": args.seed,
               "ours_s": fig(ours["seconds"]), "ours_cpu_s": fig(ours["cpu_seconds"]),
               "ours_steps": ours["steps"],
               "sb3_s": fig(sb3["seconds"]), "sb3_cpu_s": fig(sb3["cpu_seconds"]),
               "sb3_steps": sb3["steps"], "sb3_step_cap": args.sb3_steps,
               "sb3_trained_s": curve[-1]["s"] if curve else 0.0,
               "sb3_best": max((c["wins"] / c["episodes"] for c in curve), default=0.0),
               "sb3_torch_threads": sb3["torch_threads"],
               "ratio": round(result["ratio"], 3) if "ratio" in result else "n/a",
               "cpu_ratio": round(result["cpu_ratio"], 3) if "cpu_ratio" in result else "n/a",
               "load_before": load["before"], "load_after_ours": load["after_ours"],
               "load_after_sb3": load["after_sb3"]}  # fmt: skip
    if "ratio" in result:
        figures["worst_ratio"] = max(figures["ratio"], figures["cpu_ratio"])
    row = {
        "id": "research 1",
        "goal": "time to 95 % held-out success ≤ 0.25× SB3 SAC+HER on the same env, same run",
    }
    settings = "SB3: " + SB3_SETTINGS
    if "ratio" in result:
        row["measured"] = ("`{task}`, seed {seed}: ours {ours_s} s / {ours_cpu_s} CPU s "
                           "({ours_steps} steps) vs SB3 {sb3_s} s / {sb3_cpu_s} CPU s "
                           "({sb3_steps} steps) → wall **{ratio}**, CPU **{cpu_ratio}**; "
                           + settings)  # fmt: skip
        row["check"] = ["worst_ratio", "<=", 0.25]
    else:
        row["measured"] = (
            "`{task}`, seed {seed}: ours {ours_s} s ({ours_steps} steps); SB3 "
            "{sb3_s} within its {sb3_step_cap} steps ({sb3_trained_s} s of "
            "training, best snapshot {sb3_best}): no ratio; " + settings
        )
        row["met"] = "✘ (a trainer did not reach 95 %)"
    measured = ["bench/train.py", "autoresearch/train.py", "sim"]
    git = ["git", "-C", str(ROOT), "status", "--porcelain", "--", *measured]
    changed = subprocess.run(git, capture_output=True, text=True, check=False).stdout.strip()
    clean = "" if changed else f"{', '.join(measured)} as committed (+dirty: other files); "
    path = write_record(
        "train", figures, [row], load_before=tuple(load["before"]),
        notes=clean + "time to the first checkpoint/snapshot scoring >= 0.95 on 50 held-out "
              "episodes (seeds 2e9..), evaluation and snapshot time not counted; wall: ours "
              "from its first env step, SB3 from learn(); CPU: process tree user+system, "
              "ours from process start (imports, start-up, saving counted), SB3 from "
              "learn(); load averages are 1/5/15 min")  # fmt: skip
    print(f"record: {path}")


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    sys.exit(main())
