"""SAC + HER for goal-conditioned robot tasks: the one file the research loop edits.

A single, self-contained trainer in the cleanrl style: the config dataclass first, the
algorithm below. It trains on CUDA when available and on CPU otherwise, stops when its
time budget runs out, checkpoints periodically, and saves the deterministic policy as an
ONNX policy artifact (observation normaliser inside the graph) in `--out`.

    python train.py --task robo_agent/PandaReach-v0 --budget-seconds 30 --seed 0 --out run/

The budget is a number of env steps (`--budget-steps`) under a cap of **CPU seconds**
(`--budget-seconds`: user + system of this process and its sim worker processes, from
process start, imports included). Neither counts time the machine spends on other
people's work; the CPU cap stops a candidate that buys a better score with much more
compute per step.

Algorithm (Haarnoja et al. 2018; Andrychowicz et al. 2017):
* `n_envs` environments step in lock-step (gymnasium vector env, same-step autoreset);
  finished episodes go into an episode-aware replay buffer. robo_agent tasks use the
  sim's shared-memory `SimVectorEnv` (`n_workers` worker processes) and, with
  `async_env`, the physics of step t runs in the workers while this process does the
  gradient updates due at step t (see `PipelinedEnv`): both cores busy, same data.
* Sampled transitions have their goal replaced, with probability `her_ratio`, by an
  achieved goal from later in the same episode ("future" strategy); rewards are
  recomputed with the env's own vectorised `compute_reward`.
* Twin Q critics are one batched ensemble (a single bmm per layer), the actor is a
  tanh-squashed Gaussian, the temperature is tuned to a target entropy of -|A|.
* Inputs are normalised by running mean/std, clipped to +-5, exactly as the exported
  ONNX graph does it; the exported actor is a Polyak average of the trained one.

What this script prints about its own success is informational only: the research
runner scores the saved artifact with its own frozen evaluator on seeds it never sees.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import multiprocessing as mp
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

_START = time.monotonic()  # wall-clock start, for logs (the budget is CPU time, see CpuClock)

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import psutil  # noqa: E402
import robo_agent.sim  # noqa: E402, F401  (registers the robo_agent/* Gymnasium ids)
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from robo_agent.autoresearch.onnx_policy import (  # noqa: E402
    build_mlp_model,
    spec_fields_from_env,
    write_artifact,
)
from torch import nn  # noqa: E402


@dataclass
class Config:
    """Everything a run needs. Set by the runner: task, seed, budget, out, device."""

    task: str = "robo_agent/PandaReach-v0"
    """Gymnasium id of a goal-conditioned task (dict observation, compute_reward)."""
    seed: int = 0
    """training seed (seeds torch, numpy and the training environments)"""
    budget_steps: int = 0
    """env steps (transitions summed over the envs) to train for; 0: until the CPU budget.
    The research runner sets it: a fixed amount of experience per run makes a run
    repeatable (same seed, same steps, same policy) whatever else the machine is doing"""
    budget_seconds: float = 30.0
    """CPU-seconds budget of this process tree (sim workers too), start-up and saving
    included; the runner kills the tree when it runs far past it"""
    out: str = "run"
    """folder for the policy artifact and checkpoints"""
    device: str = "auto"
    """auto (cuda if available, else cpu), cpu or cuda"""
    torch_threads: int = 1
    """CPU threads for torch; 1 is fastest for these small networks on a 2-core machine"""
    save_reserve_seconds: float = 1.0
    """stop training this many CPU seconds before the budget ends, to write the artifact"""
    checkpoint_seconds: float = 15.0
    """write the artifact (and a weights-only checkpoint) at this interval"""
    buffer_size: int = 300_000
    """replay capacity in transitions"""
    log_seconds: float = 5.0
    """print progress at this interval"""
    n_workers: int = 1
    """sim worker processes for robo_agent tasks (0: in-process SyncVectorEnv); 1 leaves
    the other core of a 2-core machine to the learner"""
    async_env: bool = True
    """step the envs in the background while the gradient updates of that step run"""

    # >>> tunable: proposers edit only the values in this block (ranges in the comments;
    # a box around values measured to learn Reach fast on a 2-core CPU)
    learning_rate: float = 0.003  # log[0.0005, 0.01]
    gamma: float = 0.95  # float[0.85, 0.98]
    tau: float = 0.05  # float[0.01, 0.15]
    batch_size: int = 128  # int[64, 512]
    hidden: int = 64  # choice[32, 64, 128]
    n_envs: int = 8  # choice[4, 8, 16]
    updates_per_step: float = 0.25  # float[0.1, 1.0]
    her_ratio: float = 0.8  # float[0.5, 1.0]
    learning_starts: int = 500  # int[200, 2000]
    init_alpha: float = 0.1  # log[0.01, 0.5]
    policy_ema: float = 0.02  # log[0.005, 1.0]
    # <<< tunable


def _as_bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


def parse_config() -> Config:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for f in dataclasses.fields(Config):
        flag = "--" + f.name.replace("_", "-")
        kind = _as_bool if isinstance(f.default, bool) else type(f.default)
        parser.add_argument(flag, type=kind, default=f.default)
    return Config(**vars(parser.parse_args()))


# -- networks -------------------------------------------------------------------------------
class EnsembleLinear(nn.Module):
    """`n` independent linear layers evaluated with one batched matmul."""

    def __init__(self, n: int, fan_in: int, fan_out: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(fan_in)
        self.weight = nn.Parameter(torch.empty(n, fan_in, fan_out).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n, 1, fan_out).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (n, batch, fan_in)
        return torch.baddbmm(self.bias, x, self.weight)


class TwinQ(nn.Module):
    def __init__(self, obs_dim: int, act_dim: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            EnsembleLinear(2, obs_dim + act_dim, hidden),
            nn.ReLU(),
            EnsembleLinear(2, hidden, hidden),
            nn.ReLU(),
            EnsembleLinear(2, hidden, 1),
        )

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:  # -> (2, batch)
        x = torch.cat([obs, act], dim=-1).unsqueeze(0).expand(2, -1, -1)
        return self.net(x).squeeze(-1)


class Actor(nn.Module):
    def __init__(self, obs_dim: int, act_dim: int, hidden: int) -> None:
        super().__init__()
        self.trunk = nn.Sequential(
            nn.Linear(obs_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU()
        )
        self.mean = nn.Linear(hidden, act_dim)
        self.log_std = nn.Linear(hidden, act_dim)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparameterised tanh-Gaussian sample and its log-probability."""
        h = self.trunk(obs)
        mean, log_std = self.mean(h), self.log_std(h).clamp(-5.0, 2.0)
        std = log_std.exp()
        u = mean + std * torch.randn_like(mean)
        action = torch.tanh(u)
        logp = (-0.5 * ((u - mean) / std) ** 2 - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        logp = logp - (2 * (math.log(2) - u - F.softplus(-2 * u))).sum(-1)
        return action, logp

    def deterministic(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.mean(self.trunk(obs)))


class Normalizer:
    """Running mean/std of the policy input (Chan et al. parallel update), clipped to +-5."""

    def __init__(self, dim: int, device: torch.device, clip: float = 5.0) -> None:
        self.sum = np.zeros(dim)
        self.sumsq = np.zeros(dim)
        self.count = 1e-4
        self.clip = clip
        self.device = device
        self.mean_t = torch.zeros(dim, device=device)
        self.std_t = torch.ones(dim, device=device)

    def update(self, x: np.ndarray) -> None:
        self.sum += x.sum(0)
        self.sumsq += (x.astype(np.float64) ** 2).sum(0)
        self.count += x.shape[0]
        mean = self.sum / self.count
        std = np.sqrt(np.maximum(self.sumsq / self.count - mean**2, 1e-4))
        self.mean_t = torch.as_tensor(mean, dtype=torch.float32, device=self.device)
        self.std_t = torch.as_tensor(std, dtype=torch.float32, device=self.device)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return ((x - self.mean_t) / self.std_t).clamp(-self.clip, self.clip)


# -- replay with hindsight relabelling --------------------------------------------------------
class HerBuffer:
    """Flat transition storage; whole episodes are written once they end, so every stored
    transition knows where its episode ends (needed for the 'future' strategy)."""

    def __init__(self, cap: int, dims: dict[str, int], act_dim: int) -> None:
        self.cap, self.pos, self.size = cap, 0, 0
        self.data = {k: np.zeros((cap, d), np.float32) for k, d in dims.items()}
        self.data.update({f"next_{k}": np.zeros((cap, d), np.float32) for k, d in dims.items()})
        self.data["action"] = np.zeros((cap, act_dim), np.float32)
        self.data["terminated"] = np.zeros((cap,), np.float32)
        self.ep_end = np.zeros((cap,), np.int64)  # exclusive end index of the episode

    def add_episode(self, episode: dict[str, np.ndarray]) -> None:
        n = len(episode["action"])
        if n == 0:
            return
        if self.pos + n > self.cap:  # wrap at episode granularity keeps episodes contiguous
            self.size = self.pos
            self.pos = 0
        sl = slice(self.pos, self.pos + n)
        for k, v in episode.items():
            self.data[k][sl] = v
        self.ep_end[sl] = self.pos + n
        self.pos += n
        self.size = max(self.size, self.pos)

    def sample(
        self, batch: int, her_ratio: float, rng: np.random.Generator
    ) -> dict[str, np.ndarray]:
        idx = rng.integers(0, self.size, batch)
        out = {k: v[idx] for k, v in self.data.items()}
        relabel = rng.random(batch) < her_ratio
        end = self.ep_end[idx]
        future = idx + (rng.random(batch) * (end - idx)).astype(np.int64)  # in [idx, end)
        goals = self.data["next_achieved_goal"][future]
        out["desired_goal"] = np.where(relabel[:, None], goals, out["desired_goal"])
        return out


def policy_input(obs: dict[str, np.ndarray], keys: list[str]) -> np.ndarray:
    return np.concatenate([np.asarray(obs[k], np.float32) for k in keys], axis=-1)


def make_env(task: str):
    def thunk() -> gym.Env:
        return gym.make(task)

    return thunk


def make_envs(cfg: Config) -> gym.vector.VectorEnv:
    """The sim's worker-process vector env for robo_agent ids, else an in-process one."""
    if cfg.n_workers > 0 and gym.spec(cfg.task).vector_entry_point is not None:
        # fork (where the OS has it) starts workers in ~0.1 s instead of re-importing this
        # script and torch in each; safe because it happens before any torch/CUDA work
        # and the workers only run the physics
        context = "fork" if "fork" in mp.get_all_start_methods() else "forkserver"
        n_workers = min(cfg.n_workers, cfg.n_envs)
        return gym.make_vec(cfg.task, cfg.n_envs, num_workers=n_workers, context=context)
    return gym.vector.SyncVectorEnv(
        [make_env(cfg.task) for _ in range(cfg.n_envs)], autoreset_mode="SameStep"
    )


class CpuClock:
    """CPU seconds (user + system) of this process since it started, plus its children's.

    The children (the sim workers) are listed once, after they are started; reading
    their /proc counters costs microseconds, so the loop checks the clock every step.
    """

    def __init__(self) -> None:
        self.children: list[psutil.Process] = []
        self.used: dict[int, float] = {}  # last reading per child (kept if it exits)

    def attach_children(self) -> None:
        self.children = psutil.Process().children(recursive=True)

    def __call__(self) -> float:
        own = os.times()
        for child in self.children:
            try:
                times = child.cpu_times()
                self.used[child.pid] = times.user + times.system
            except psutil.Error:
                continue
        return own.user + own.system + sum(self.used.values())


class PipelinedEnv:
    """`step_async(actions)` / `step_wait()` over any vector env.

    `step` of a worker-process vector env mostly waits on its workers (the GIL is
    released while waiting), so one helper thread calls it while the main thread runs
    the gradient updates; then `step_wait` returns that step's results. The caller
    chooses the action for step t+1 only after `step_wait`, from the fresh observation:
    every stored transition is (obs_t, action_t, obs_t+1) of one step, and the only
    difference from the synchronous loop is that step t's updates see the buffer as it
    was before step t (one step of lag). With `enabled=False` it steps synchronously.
    """

    def __init__(self, envs: gym.vector.VectorEnv, enabled: bool) -> None:
        self.envs = envs
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="env-step") if enabled else None
        self.pending = None

    def step_async(self, actions: np.ndarray) -> None:
        if self.pool is None:
            self.pending = actions
        else:
            self.pending = self.pool.submit(self.envs.step, actions)

    def step_wait(self) -> tuple:
        pending, self.pending = self.pending, None
        return self.envs.step(pending) if self.pool is None else pending.result()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)
        self.envs.close()


def main() -> None:
    cfg = parse_config()
    clock = CpuClock()
    stop_at = cfg.budget_seconds - cfg.save_reserve_seconds  # CPU seconds of the tree
    envs = make_envs(cfg)  # first: sim workers are forked before torch does any work
    clock.attach_children()
    envs.action_space.seed(cfg.seed)  # the warm-up's random actions repeat with the seed
    torch.set_num_threads(max(1, cfg.torch_threads))
    if cfg.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(cfg.device)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)

    stepper = PipelinedEnv(envs, cfg.async_env)
    reward_env = gym.make(cfg.task).unwrapped  # its compute_reward relabels sampled goals
    obs, _ = envs.reset(seed=[cfg.seed * 1000 + i for i in range(cfg.n_envs)])
    keys = ["observation", "achieved_goal", "desired_goal"]
    dims = {k: obs[k].shape[-1] for k in keys}
    obs_dim, act_dim = sum(dims.values()), envs.single_action_space.shape[0]

    actor = Actor(obs_dim, act_dim, cfg.hidden).to(device)
    critic = TwinQ(obs_dim, act_dim, cfg.hidden).to(device)
    critic_target = TwinQ(obs_dim, act_dim, cfg.hidden).to(device)
    critic_target.load_state_dict(critic.state_dict())
    # The exported policy is a Polyak average of the actor (`policy_ema` per update; 1.0 =
    # the last iterate): evaluation then sees a smoothed policy instead of whichever
    # noisy iterate the budget happened to end on.
    actor_avg = Actor(obs_dim, act_dim, cfg.hidden).to(device)
    actor_avg.load_state_dict(actor.state_dict())
    actor_opt = torch.optim.Adam(actor.parameters(), lr=cfg.learning_rate)
    critic_opt = torch.optim.Adam(critic.parameters(), lr=cfg.learning_rate)
    log_alpha = torch.tensor(math.log(cfg.init_alpha), device=device, requires_grad=True)
    alpha_opt = torch.optim.Adam([log_alpha], lr=cfg.learning_rate)
    target_entropy = -float(act_dim)
    norm = Normalizer(obs_dim, device)
    buffer = HerBuffer(cfg.buffer_size, dims, act_dim)
    episodes: list[dict[str, list]] = [{} for _ in range(cfg.n_envs)]

    def to_t(x: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(x, dtype=torch.float32, device=device)

    def update() -> None:
        b = buffer.sample(cfg.batch_size, cfg.her_ratio, rng)
        reward = reward_env.compute_reward(b["next_achieved_goal"], b["desired_goal"], {})
        o = norm(to_t(np.concatenate([b["observation"], b["achieved_goal"], b["desired_goal"]], 1)))
        o2 = norm(
            to_t(
                np.concatenate(
                    [b["next_observation"], b["next_achieved_goal"], b["desired_goal"]], 1
                )
            )
        )
        r, a = to_t(np.asarray(reward, np.float32)), to_t(b["action"])
        # A relabelled goal reached in the next state ends the episode in success-terminating
        # tasks; otherwise the stored flag (true only on real terminations) applies.
        done = torch.maximum(to_t(b["terminated"]), (r >= 0).float() * terminates_on_success)
        alpha = log_alpha.exp().detach()
        with torch.no_grad():
            a2, logp2 = actor(o2)
            q_next = critic_target(o2, a2).min(0).values - alpha * logp2
            target = r + cfg.gamma * (1 - done) * q_next
        q_loss = F.mse_loss(critic(o, a), target.expand(2, -1))
        critic_opt.zero_grad(set_to_none=True)
        q_loss.backward()
        critic_opt.step()
        a_new, logp = actor(o)
        actor_loss = (alpha * logp - critic(o, a_new).min(0).values).mean()
        actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        actor_opt.step()
        with torch.no_grad():
            for p, ap in zip(actor.parameters(), actor_avg.parameters(), strict=True):
                ap.lerp_(p, cfg.policy_ema)
        alpha_loss = -(log_alpha * (logp.detach() + target_entropy)).mean()
        alpha_opt.zero_grad(set_to_none=True)
        alpha_loss.backward()
        alpha_opt.step()
        with torch.no_grad():
            for p, tp in zip(critic.parameters(), critic_target.parameters(), strict=True):
                tp.lerp_(p, cfg.tau)

    def save(tag: str) -> None:
        nonlocal save_seconds
        began = time.monotonic()
        layers = [actor_avg.trunk[0], actor_avg.trunk[2], actor_avg.mean]
        model = build_mlp_model(
            [m.weight.detach().cpu().numpy() for m in layers],
            [m.bias.detach().cpu().numpy() for m in layers],
            norm.mean_t.cpu().numpy(),
            norm.std_t.cpu().numpy(),
            clip=norm.clip,
        )
        fields = spec_fields_from_env(reward_env, cfg.task, [(k, dims[k]) for k in keys])
        fields["provenance"] = {
            "training_seconds": clock(),
            # wall-clock since the first env step, time spent saving excluded
            "training_wall_seconds": began - train_start - save_seconds,
            "env_steps": env_steps,
            "updates": updates,
            "algorithm": f"SAC+HER ({tag})",
        }
        write_artifact(out / "artifact", model, fields)
        torch.save(
            {"actor": actor.state_dict(), "actor_avg": actor_avg.state_dict(),
             "critic": critic.state_dict()},
            out / "checkpoint.pt",
        )  # fmt: skip
        save_seconds += time.monotonic() - began

    # Whether reaching the goal ends an episode, as the env says (robo_agent envs have
    # `terminate_on_success`); for other envs it is learned from the first real
    # termination that is a success (panda-gym ends episodes on success).
    declared = getattr(reward_env, "terminate_on_success", None)
    terminates_on_success = float(bool(declared)) if declared is not None else 0.0
    save_seconds = 0.0
    train_start = time.monotonic()
    env_steps, updates, successes, finished = 0, 0, 0, 0
    update_debt = 0.0
    last_ckpt = last_log = time.monotonic()
    step_budget = cfg.budget_steps if cfg.budget_steps > 0 else math.inf
    while env_steps < step_budget and clock() < stop_at:
        x = policy_input(obs, keys)
        norm.update(x)
        if env_steps < cfg.learning_starts:
            action = envs.action_space.sample()
        else:
            with torch.no_grad():
                action = actor(norm(to_t(x)))[0].cpu().numpy()
        stepper.step_async(action)  # physics runs in the workers from here ...
        env_steps += cfg.n_envs
        if env_steps >= cfg.learning_starts and buffer.size >= cfg.batch_size:
            update_debt += cfg.updates_per_step * cfg.n_envs
            while update_debt >= 1.0:  # ... while this process learns
                update()
                updates += 1
                update_debt -= 1.0
        next_obs, _, terminated, truncated, infos = stepper.step_wait()
        done_any = np.logical_or(terminated, truncated)
        final = infos.get("final_obs") if done_any.any() else None
        for i in range(cfg.n_envs):
            real_next = final[i] if done_any[i] else {k: next_obs[k][i] for k in keys}
            ep = episodes[i]
            for k in keys:
                ep.setdefault(k, []).append(obs[k][i])
                ep.setdefault(f"next_{k}", []).append(real_next[k])
            ep.setdefault("action", []).append(action[i])
            ep.setdefault("terminated", []).append(float(terminated[i]))
            if done_any[i]:
                success = bool(
                    infos.get("final_info", {}).get("is_success", np.zeros(cfg.n_envs))[i]
                )
                successes += success
                finished += 1
                if declared is None and terminated[i] and success:
                    terminates_on_success = 1.0
                buffer.add_episode({k: np.asarray(v, np.float32) for k, v in ep.items()})
                episodes[i] = {}
        obs = next_obs
        now = time.monotonic()
        if now - last_ckpt >= cfg.checkpoint_seconds:
            save("checkpoint")
            last_ckpt = now
        if now - last_log >= cfg.log_seconds:
            rate = successes / max(finished, 1)
            print(
                f"t={now - _START:6.1f}s steps={env_steps} updates={updates} "
                f"train_success={rate:.2f} (last {finished} episodes, not trusted)",
                flush=True,
            )
            successes = finished = 0
            last_log = now
    save("final")
    print(f"env_steps: {env_steps}")
    print(f"updates: {updates}")
    print(f"device: {device}")
    print(f"train_seconds: {time.monotonic() - _START:.2f}")
    print(f"cpu_seconds: {clock():.2f}")
    stepper.close()  # stops the sim workers
    reward_env.close()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
