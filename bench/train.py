"""Training wall-clock until 95% success on 50 held-out episodes: ours vs SB3 SAC+HER.

    python bench/train.py                  # both, CPU here (CUDA if available)
    python bench/train.py --skip-sb3       # ours only

* **ours**: `autoresearch/train.py` (the research baseline) on `robo_agent/PandaReach-v0`,
  run as a subprocess with `--keep-checkpoints true --checkpoint-seconds C`; afterwards
  every checkpoint artifact is scored by the frozen evaluator (onnxruntime) on 50
  held-out seeds. Reported time = training wall-clock from the first env step to that
  checkpoint, time spent saving excluded (imports and env start-up are listed apart).
* **SB3**: stable-baselines3 SAC + HerReplayBuffer on the **same env** (`--task`; panda-gym
  ids such as `PandaReachJoints-v3` work for both too) with rl-baselines3-zoo-style
  settings (gamma 0.95, lr 1e-3, batch 256, buffer 1e6,
  learning_starts 1000, tau 0.05, HER future with 4 goals, net [256, 256]); a callback
  snapshots the actor every `--sb3-every` steps (snapshot time excluded) and the
  snapshots are scored the same way afterwards (deterministic actions, 50 seeds).

Both run in this one process tree on this machine, one after the other; the ratio
ours / SB3 is printed at the end. Evaluation time is never counted.
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


def first_reaching(points: list[tuple[float, int, object]], score_fn, episodes: int):
    """Scan (seconds, steps, policy) in order; the first scoring >= TARGET, and the curve."""
    curve = []
    for seconds, steps, policy in points:
        score = score_fn(policy, episodes)
        curve.append((round(seconds, 2), steps, score))
        print(f"  {seconds:7.2f} s  {steps:7d} steps  success {score:.2f}", flush=True)
        if score >= TARGET:
            return seconds, steps, curve
    return None, None, curve


def run_ours(args: argparse.Namespace, work: Path) -> dict:
    from robo_agent.autoresearch.evaluate import evaluate

    # train.py registers only the robo_agent/* ids; for panda-gym's tasks (the same-env
    # comparison) this runner registers them before running it as __main__
    launcher = ([sys.executable, args.train_py] if args.task.startswith("robo_agent/") else
                [sys.executable, "-c", "import sys, runpy, panda_gym; sys.argv = sys.argv[1:]; "
                 "runpy.run_path(sys.argv[0], run_name='__main__')", args.train_py])  # fmt: skip
    cmd = [
        *launcher,
        "--task", args.task, "--seed", str(args.seed),
        "--budget-seconds", str(args.budget), "--out", str(work),
        "--keep-checkpoints", "true", "--checkpoint-seconds", str(args.checkpoint_seconds),
        "--log-seconds", "1000",
    ]  # fmt: skip
    started = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"train.py failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    index = [json.loads(x) for x in (work / "checkpoints" / "index.jsonl").read_text().splitlines()]
    seeds = list(range(SEED_BASE, SEED_BASE + args.episodes))

    def score(artifact: str, _n: int) -> float:
        return evaluate(artifact, args.task, seeds)["score"]

    points = [(r["train_seconds"], r["env_steps"], r["artifact"]) for r in index]
    print(f"ours: {args.task}, {len(points)} checkpoints, process wall {wall:.1f} s")
    seconds, steps, curve = first_reaching(points, score, args.episodes)
    startup = index[0]["process_seconds"] - index[0]["train_seconds"]
    return {"seconds": seconds, "steps": steps, "curve": curve, "startup_seconds": startup}


def run_sb3(args: argparse.Namespace) -> dict:
    import gymnasium as gym
    import panda_gym  # noqa: F401
    import robo_agent.sim  # noqa: F401  (registers robo_agent/* ids)
    import torch
    from stable_baselines3 import SAC, HerReplayBuffer
    from stable_baselines3.common.callbacks import BaseCallback

    env = gym.make(args.task)
    model = SAC(
        "MultiInputPolicy", env,
        replay_buffer_class=HerReplayBuffer,
        replay_buffer_kwargs={"n_sampled_goal": 4, "goal_selection_strategy": "future"},
        gamma=0.95, learning_rate=1e-3, batch_size=256, buffer_size=1_000_000,
        learning_starts=1000, tau=0.05, policy_kwargs={"net_arch": [256, 256]},
        seed=args.seed, device="auto", verbose=0,
    )  # fmt: skip

    class Snapshots(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.start = time.monotonic()
            self.excluded = 0.0
            self.points: list[tuple[float, int, object]] = []

        def _on_step(self) -> bool:
            if self.num_timesteps % args.sb3_every == 0:
                t0 = time.monotonic()
                state = copy.deepcopy(self.model.policy.actor.state_dict())
                seconds = t0 - self.start - self.excluded
                self.points.append((seconds, self.num_timesteps, state))
                self.excluded += time.monotonic() - t0
            return True

    snaps = Snapshots()
    model.learn(total_timesteps=args.sb3_steps, callback=snaps)
    eval_env = gym.make(args.task)

    def score(state: object, episodes: int) -> float:
        model.policy.actor.load_state_dict(state)
        wins = 0
        for i in range(episodes):
            obs, info = eval_env.reset(seed=SEED_BASE + i)
            done = False
            while not done:
                action, _ = model.predict(obs, deterministic=True)
                obs, _, terminated, truncated, info = eval_env.step(action)
                done = terminated or truncated
            wins += bool(info.get("is_success", False))
        return wins / episodes

    print(
        f"sb3: {args.task}, torch threads {torch.get_num_threads()}, device {model.device}"
    )
    seconds, steps, curve = first_reaching(snaps.points, score, args.episodes)
    return {"seconds": seconds, "steps": steps, "curve": curve}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", default="robo_agent/PandaReach-v0")
    parser.add_argument("--budget", type=float, default=40.0, help="our training budget, s")
    parser.add_argument("--checkpoint-seconds", type=float, default=1.0)
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sb3-steps", type=int, default=8000)
    parser.add_argument("--sb3-every", type=int, default=500)
    parser.add_argument("--skip-sb3", action="store_true")
    parser.add_argument(
        "--train-py", default=str(ROOT / "autoresearch" / "train.py"),
        help="our trainer script (default: autoresearch/train.py; another for A/B runs)",
    )  # fmt: skip
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()
    load_before = os.getloadavg()
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"device: {device}")
    with tempfile.TemporaryDirectory() as tmp:
        ours = run_ours(args, Path(tmp))
    result = {"device": device, "ours": ours}
    if not args.skip_sb3:
        result["sb3"] = run_sb3(args)
    print("\n# summary (training wall-clock to >= 95% on 50 held-out episodes)")
    o = ours["seconds"]
    print(
        f"ours: {o if o is None else round(o, 1)} s ({ours['steps']} steps; "
        f"+{ours['startup_seconds']:.1f} s imports/start-up not counted)"
    )
    if "sb3" in result:
        s = result["sb3"]["seconds"]
        print(f"sb3:  {s if s is None else round(s, 1)} s ({result['sb3']['steps']} steps)")
        if o is not None and s is not None:
            result["ratio"] = o / s
            print(f"ratio ours/sb3: {o / s:.3f} (goal <= 0.25)")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, default=float))
    if "sb3" in result:
        _record(args, result, load_before)
    return 0


def _record(args: argparse.Namespace, result: dict, load_before: tuple) -> None:
    """One benchmark record (row `research 1`): both trainers on the same env, one run."""
    sys.path.insert(0, str(ROOT / "bench"))
    from record import write_record

    def fig(x: float | None) -> float | str:
        return "not reached" if x is None else round(x, 1)

    o, s = result["ours"]["seconds"], result["sb3"]["seconds"]
    curve = result["sb3"]["curve"]  # (seconds, steps, success) per snapshot
    figures = {"task": args.task, "seed": args.seed, "ours_s": fig(o), "sb3_s": fig(s),
               "ours_steps": result["ours"]["steps"], "sb3_steps": result["sb3"]["steps"],
               "sb3_step_cap": args.sb3_steps,
               "sb3_trained_s": round(curve[-1][0], 1) if curve else 0.0,
               "sb3_best": max((c[2] for c in curve), default=0.0),
               "ratio": round(result["ratio"], 3) if "ratio" in result else "n/a"}
    settings = ("SB3 settings: gamma 0.95, lr 1e-3, batch 256, tau 0.05, learning_starts "
                "1000, HER future 4, net [256, 256] (rl-zoo style)")
    row = {"id": "research 1",
           "goal": "time to 95 % held-out success ≤ 0.25× SB3 SAC+HER on the same env, same run"}
    if "ratio" in result:
        row["measured"] = ("`{task}`, seed {seed}: ours {ours_s} s ({ours_steps} steps) vs SB3 "
                           "{sb3_s} s ({sb3_steps} steps) → **{ratio}**; " + settings)
        row["check"] = ["ratio", "<=", 0.25]
    else:
        row["measured"] = ("`{task}`, seed {seed}: ours {ours_s} s ({ours_steps} steps); SB3 "
                           "{sb3_s} within its {sb3_step_cap} steps ({sb3_trained_s} s of "
                           "training, best snapshot {sb3_best}): no ratio; " + settings)
        row["met"] = "✘ (a trainer did not reach 95 %)"
    path = write_record("train", figures, [row], load_before=load_before,
                        notes="wall-clock training time to the first checkpoint/snapshot "
                              "scoring >= 0.95 on 50 held-out episodes; evaluation and "
                              "snapshot time not counted")
    print(f"record: {path}")


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    sys.exit(main())
