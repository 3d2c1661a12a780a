"""The frozen evaluator: scores a policy artifact on held-out seeds, in its own process.

    python -m robo_agent.autoresearch.evaluate --artifact DIR --task ID \\
        --seed-base 1000000000 --episodes 100 [--domain-randomization]

It loads ONLY the artifact (onnxruntime + JSON, sha256 checked) — never `train.py` or
anything it wrote besides the artifact — runs one deterministic episode per seed
`seed_base + i`, and prints `key: value` summary lines:

    score           success rate: fraction of episodes whose final step reports
                    info["is_success"]
    final_distance  mean distance between achieved and desired goal at episode end
    smoothness      mean L2 norm of the change of the action between consecutive steps
                    (normalised action units; lower is smoother)
    episodes        number of episodes run
    eval_seconds    wall-clock of the evaluation loop

Exit status 0 on success, 2 when the artifact is invalid or does not fit the task.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from robo_agent.core.artifact import ArtifactError


def _make_env(task: str, domain_randomization: bool):
    import gymnasium as gym
    import robo_agent.sim  # noqa: F401  (registers robo_agent/* ids)

    try:
        import panda_gym  # noqa: F401  (benchmarks compare on panda-gym tasks)
    except ImportError:
        pass
    if domain_randomization:
        try:
            return gym.make(task, domain_randomization=True)
        except TypeError as err:
            raise ArtifactError(
                f"task {task} does not support domain randomisation: {err}"
            ) from None
    return gym.make(task)


def evaluate(
    artifact: str | Path,
    task: str,
    seeds: list[int],
    domain_randomization: bool = False,
) -> dict[str, float]:
    """Run one episode per seed with the artifact's deterministic policy; summary dict."""
    from robo_agent.autoresearch.onnx_policy import OnnxPolicy

    policy = OnnxPolicy(artifact)
    if policy.spec.task != task:
        raise ArtifactError(f"artifact was trained on {policy.spec.task}, not {task}")
    env = _make_env(task, domain_randomization)
    act_dim = int(env.action_space.shape[0])
    if act_dim != policy.spec.action_dim:
        raise ArtifactError(f"artifact has {policy.spec.action_dim} actions, task has {act_dim}")
    start = time.perf_counter()
    successes, distances, jerks = 0, [], []
    try:
        for seed in seeds:
            obs, info = env.reset(seed=int(seed))
            previous = None
            while True:
                action = policy.act(obs).astype(np.float32)
                if previous is not None:
                    jerks.append(float(np.linalg.norm(action - previous)))
                previous = action
                obs, _, terminated, truncated, info = env.step(action)
                if terminated or truncated:
                    break
            successes += bool(info.get("is_success", False))
            distances.append(float(np.linalg.norm(obs["achieved_goal"] - obs["desired_goal"])))
    finally:
        env.close()
    return {
        "score": successes / len(seeds),
        "final_distance": float(np.mean(distances)),
        "smoothness": float(np.mean(jerks)) if jerks else 0.0,
        "episodes": float(len(seeds)),
        "eval_seconds": time.perf_counter() - start,
    }


def format_summary(summary: dict[str, float]) -> str:
    lines = []
    for key, value in summary.items():
        text = str(int(value)) if float(value).is_integer() and key != "score" else f"{value:.6g}"
        lines.append(f"{key}: {text}")
    return "\n".join(lines)


def parse_summary(text: str) -> dict[str, float]:
    """The `key: value` lines of a summary (later lines win; other lines ignored)."""
    found: dict[str, float] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().isidentifier():
            try:
                found[key.strip()] = float(value.strip())
            except ValueError:
                continue
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Score a policy artifact on held-out seeds.")
    parser.add_argument("--artifact", required=True)
    parser.add_argument("--task", required=True)
    parser.add_argument("--seed-base", type=int, required=True)
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--domain-randomization", action="store_true")
    args = parser.parse_args(argv)
    if args.episodes < 1:
        print("evaluate: --episodes must be at least 1", file=sys.stderr)
        return 2
    seeds = list(range(args.seed_base, args.seed_base + args.episodes))
    try:
        summary = evaluate(args.artifact, args.task, seeds, args.domain_randomization)
    except ArtifactError as err:
        print(f"evaluate: {err}", file=sys.stderr)
        return 2
    print(format_summary(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
