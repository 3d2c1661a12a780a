"""The frozen evaluator: scores a policy artifact on held-out seeds, in its own process.

    python -m robo_agent.autoresearch.evaluate --artifact DIR --task ID \\
        --seed-base N --episodes 100 [--domain-randomization] [--workers 2]
    python -m robo_agent.autoresearch.evaluate --artifact DIR --task ID --wait ...
        (then on stdin: `go N`)

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

#: the perturbations of `--domain-randomization` (robo_agent.sim.randomization fields)
DOMAIN_RANDOMIZATION = {
    "friction": (0.7, 1.3),
    "link_mass": (0.9, 1.1),
    "joint_damping": (0.0, 0.5),
    "observation_noise": 0.002,
    "action_latency": 1,
}


def _make_env(task: str, domain_randomization: bool):
    import gymnasium as gym
    import robo_agent.sim  # noqa: F401  (registers robo_agent/* ids)

    try:
        import panda_gym  # noqa: F401  (benchmarks compare on panda-gym tasks)
    except ImportError:
        pass
    if domain_randomization:
        try:
            return gym.make(task, randomization=DOMAIN_RANDOMIZATION)
        except TypeError as err:
            raise ArtifactError(
                f"task {task} does not support domain randomisation: {err}"
            ) from None
    return gym.make(task)


def _check_action_speed(spec) -> None:
    """A robo_agent artifact must move its joints as fast as the evaluation env does (the
    env's default, set to the robot's safety cap): trained faster, it would score here
    with one speed and be run on the robot with another."""
    if not spec.task.startswith("robo_agent/"):
        return
    from robo_agent.sim.env import DEFAULT_ACTION_SCALE

    from robo_agent.core.observation import trained_action_scale
    from robo_agent.core.robot_spec import load_robot

    scale = trained_action_scale(spec, load_robot(spec.robot))
    if abs(scale - DEFAULT_ACTION_SCALE) > 1e-6 * DEFAULT_ACTION_SCALE:
        raise ArtifactError(
            f"policy.json field action_scale moves the joints at {scale:.4g} of their velocity "
            f"limits; the evaluation env and the robot's safety envelope use "
            f"{DEFAULT_ACTION_SCALE:g}: train in the task's default env")


class Evaluator:
    """The evaluation environment(s), built before the artifact exists (warm start).

    robo_agent tasks with `workers > 1` run batches of episodes on a `SimVectorEnv`
    (physics in `workers` processes, one batched ONNX call per step); other tasks, or
    `workers == 1`, run one in-process env episode by episode. Both give the same
    episodes for the same seeds.
    """

    def __init__(self, task: str, domain_randomization: bool = False, workers: int = 1,
                 batch: int = 25) -> None:  # fmt: skip
        self.task = task
        self.vector = None
        self.env = None
        self.batch = batch
        if workers > 1 and task.startswith("robo_agent/"):
            import robo_agent.sim  # noqa: F401
            from robo_agent.sim.vector import make_vec_from_id

            kwargs = {"randomization": DOMAIN_RANDOMIZATION} if domain_randomization else {}
            self.vector = make_vec_from_id(task, num_envs=batch, num_workers=workers, **kwargs)
            self.act_dim = int(self.vector.single_action_space.shape[0])
        else:
            self.env = _make_env(task, domain_randomization)
            self.act_dim = int(self.env.action_space.shape[0])

    def close(self) -> None:
        if self.vector is not None:
            self.vector.close()
        if self.env is not None:
            self.env.close()

    def run(self, artifact: str | Path, seeds: list[int]) -> dict[str, float]:
        from robo_agent.policy import OnnxPolicy

        policy = OnnxPolicy(artifact)
        if policy.spec.task != self.task:
            raise ArtifactError(f"artifact was trained on {policy.spec.task}, not {self.task}")
        if self.act_dim != policy.spec.action_dim:
            raise ArtifactError(
                f"artifact has {policy.spec.action_dim} actions, task has {self.act_dim}"
            )
        _check_action_speed(policy.spec)
        start = time.perf_counter()
        if self.vector is not None:
            successes, distances, jerks = self._run_vector(policy, seeds)
        else:
            successes, distances, jerks = self._run_single(policy, seeds)
        return {
            "score": successes / len(seeds),
            "final_distance": float(np.mean(distances)),
            "smoothness": float(np.mean(jerks)) if jerks else 0.0,
            "episodes": float(len(seeds)),
            "eval_seconds": time.perf_counter() - start,
        }

    def _run_single(self, policy, seeds):
        env = self.env
        successes, distances, jerks = 0, [], []
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
        return successes, distances, jerks

    def _run_vector(self, policy, seeds):
        env, n = self.vector, self.batch
        successes, distances, jerks = 0, [], []
        for first in range(0, len(seeds), n):
            chunk = [int(s) for s in seeds[first : first + n]]
            real = len(chunk)
            chunk += [chunk[-1]] * (n - real)  # padding envs: run, never counted
            obs, _ = env.reset(seed=chunk)
            done = np.zeros(n, bool)
            done[real:] = True
            previous = None
            while not done.all():
                action = policy.act(obs).astype(np.float32)
                if previous is not None:
                    delta = np.linalg.norm(action - previous, axis=1)
                    jerks.extend(float(d) for d in delta[~done])
                previous = action
                obs, _, terminated, truncated, infos = env.step(action)
                ended = (terminated | truncated) & ~done
                for i in np.flatnonzero(ended):
                    final = infos["final_obs"][i]
                    successes += bool(infos["final_info"]["is_success"][i])
                    distances.append(
                        float(np.linalg.norm(final["achieved_goal"] - final["desired_goal"]))
                    )
                done |= ended
        return successes, distances, jerks


def evaluate(
    artifact: str | Path,
    task: str,
    seeds: list[int],
    domain_randomization: bool = False,
    workers: int = 1,
) -> dict[str, float]:
    """Run one deterministic episode per seed with the artifact's policy; summary dict."""
    evaluator = Evaluator(task, domain_randomization, workers)
    try:
        return evaluator.run(artifact, seeds)
    finally:
        evaluator.close()


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
    parser.add_argument("--seed-base", type=int, default=None,
                        help="first seed; with --wait it comes on stdin ('go N') instead")
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--domain-randomization", action="store_true")
    parser.add_argument("--workers", type=int, default=1, help="sim worker processes")
    parser.add_argument(
        "--wait", action="store_true",
        help="build the environments, print 'ready', then wait for a line on stdin before "
        "reading the artifact (the runner starts the evaluator while training runs)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.episodes < 1 or args.workers < 1:
        print("evaluate: --episodes and --workers must be at least 1", file=sys.stderr)
        return 2
    if args.seed_base is None and not args.wait:
        print("evaluate: --seed-base is required without --wait", file=sys.stderr)
        return 2
    try:
        evaluator = Evaluator(args.task, args.domain_randomization, args.workers)
    except ArtifactError as err:
        print(f"evaluate: {err}", file=sys.stderr)
        return 2
    try:
        if args.wait:
            print("ready", flush=True)
            word, _, base = sys.stdin.readline().strip().partition(" ")
            if word != "go":
                print("evaluate: cancelled", file=sys.stderr)
                return 3
            if base.strip():
                args.seed_base = int(base)  # the runner's secret, never on the command line
            if args.seed_base is None:
                print("evaluate: no seed base given ('go N' on stdin)", file=sys.stderr)
                return 2
        seeds = list(range(args.seed_base, args.seed_base + args.episodes))
        summary = evaluator.run(args.artifact, seeds)
    except ArtifactError as err:
        print(f"evaluate: {err}", file=sys.stderr)
        return 2
    finally:
        evaluator.close()
    print(format_summary(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
