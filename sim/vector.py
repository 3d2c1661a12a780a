"""Vectorised sim env that scales with cores: worker processes stepping batches in shared memory.

`SimVectorEnv(robot, task, num_envs, num_workers)` splits `num_envs` envs into contiguous
slices, one per worker process. Actions, observations, rewards and flags live in shared
memory; per step the parent writes the actions, sends each worker one short "step"
message and waits for one short reply, so the per-step IPC cost does not grow with the
observation size and workers run in parallel (unlike gymnasium's AsyncVectorEnv, which
pickles every observation through a pipe).

Gymnasium `VectorEnv` API with dict observations batched as arrays and autoreset in
SAME_STEP mode, laid out as gymnasium 1.x does: when an env's episode ends at a step,
the observation returned for it is the first of the next episode; the terminal one is
`infos["final_obs"][i]` (an object array of obs dicts, None where the episode goes on,
mask `infos["_final_obs"]`), also batched as `infos["final_obs_batch"]` (dict of arrays,
rows valid under the mask), and its `is_success` is `infos["final_info"]["is_success"]`.

`compute_reward` works on batches without touching a worker (for HER relabelling).
A worker that dies raises a `RuntimeError` naming it and its exit code.

Workers die with the process that made them (Linux `PR_SET_PDEATHSIG`): a forked
worker inherits its own pipe's parent end, so it would never read EOF and would sleep
for good as an orphan after its owner is killed (`kill -9`, a Ray node dying). The
signal follows the *thread* that created the env: build it in a thread that outlives it.
"""

from __future__ import annotations

import ctypes
import itertools
import multiprocessing as mp
import os
import signal
import sys
import traceback
from multiprocessing.connection import Connection
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space
from robo_agent.sim.tasks import compute_reward, task_class

_OBS_KEYS = ("observation", "achieved_goal", "desired_goal")


class WorkerError(RuntimeError):
    """A worker process failed or died."""


def _buffers(ctx: Any, n: int, n_obs: int, n_act: int) -> dict[str, Any]:
    """Raw shared arrays, created in the parent and inherited by the workers."""
    f32, f64, u8 = ctypes.c_float, ctypes.c_double, ctypes.c_uint8
    spec = {
        "actions": (f32, n * n_act), "rewards": (f64, n), "terminated": (u8, n),
        "truncated": (u8, n), "success": (u8, n), "final_mask": (u8, n),
        "final_success": (u8, n),
    }
    for prefix in ("", "final_"):
        spec[prefix + "observation"] = (f32, n * n_obs)
        spec[prefix + "achieved_goal"] = (f32, n * 3)
        spec[prefix + "desired_goal"] = (f32, n * 3)
    return {k: ctx.RawArray(t, size) for k, (t, size) in spec.items()}


def _views(raw: dict[str, Any], n: int, n_obs: int, n_act: int) -> dict[str, np.ndarray]:
    shapes = {"actions": (n, n_act), "observation": (n, n_obs), "final_observation": (n, n_obs),
              "achieved_goal": (n, 3), "desired_goal": (n, 3), "final_achieved_goal": (n, 3),
              "final_desired_goal": (n, 3)}
    dtypes = {ctypes.c_float: np.float32, ctypes.c_double: np.float64, ctypes.c_uint8: np.uint8}
    out = {}
    for k, arr in raw.items():
        view = np.frombuffer(arr, dtype=dtypes[arr._type_])
        out[k] = view.reshape(shapes.get(k, (n,)))
    for k in ("terminated", "truncated", "success", "final_mask", "final_success"):
        out[k] = out[k].view(np.bool_)
    return out


_PR_SET_PDEATHSIG = 1


def _die_with_owner(owner_pid: int) -> None:
    """SIGKILL this worker when its parent exits, and exit now if the owner is gone.

    The parent is the owner (fork, spawn) or the owner's forkserver, which exits when the
    owner does; the check after `prctl` closes the race of an owner dying first.
    """
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass
    try:
        os.kill(owner_pid, 0)
    except ProcessLookupError:
        os._exit(0)


def _worker(
    index: int, conn: Connection, start: int, stop: int, robot: str, task: str,
    env_kwargs: dict[str, Any], max_steps: int, raw: dict[str, Any], n: int, n_obs: int,
    n_act: int, owner_pid: int,
) -> None:
    """Own envs [start, stop): step them on command, write results into shared memory."""
    _die_with_owner(owner_pid)
    from robo_agent.sim.env import RoboAgentEnv

    # Ctrl-C goes to the whole process group: let the parent handle it and close us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    envs: list[RoboAgentEnv] = []
    try:
        buf = _views(raw, n, n_obs, n_act)
        envs = [RoboAgentEnv(robot=robot, task=task, **env_kwargs) for _ in range(start, stop)]
        elapsed = np.zeros(stop - start, dtype=np.int64)
        obs_b, ach_b, des_b = buf["observation"], buf["achieved_goal"], buf["desired_goal"]
        f_obs, f_ach, f_des = (buf["final_observation"], buf["final_achieved_goal"],
                               buf["final_desired_goal"])
        actions, rewards = buf["actions"], buf["rewards"]
        term_b, trunc_b, succ_b = buf["terminated"], buf["truncated"], buf["success"]
        f_mask, f_succ = buf["final_mask"], buf["final_success"]

        def write(i: int, obs: dict[str, np.ndarray], success: bool) -> None:
            obs_b[i] = obs["observation"]
            ach_b[i] = obs["achieved_goal"]
            des_b[i] = obs["desired_goal"]
            succ_b[i] = success

        conn.send(("ready", None))
        while True:
            cmd, payload = conn.recv()
            if cmd == "step":
                for k, env in enumerate(envs):
                    i = start + k
                    obs, reward, terminated, _, info = env.step(actions[i])
                    elapsed[k] += 1
                    truncated = elapsed[k] >= max_steps
                    rewards[i] = reward
                    term_b[i], trunc_b[i] = terminated, truncated
                    done = terminated or truncated
                    f_mask[i] = done
                    if done:
                        f_obs[i] = obs["observation"]
                        f_ach[i] = obs["achieved_goal"]
                        f_des[i] = obs["desired_goal"]
                        f_succ[i] = info["is_success"]
                        obs, info = env.reset()
                        elapsed[k] = 0
                    write(i, obs, info["is_success"])
                conn.send(("ok", None))
            elif cmd == "reset":
                seeds, options = payload
                for k, env in enumerate(envs):
                    obs, info = env.reset(seed=seeds[start + k], options=options)
                    elapsed[k] = 0
                    write(start + k, obs, info["is_success"])
                    f_mask[start + k] = False
                conn.send(("ok", None))
            elif cmd == "call":
                name, args, kwargs = payload
                try:  # a bad call is the caller's error, not the worker's: keep running
                    results = []
                    for env in envs:
                        attr = getattr(env, name)
                        results.append(attr(*args, **kwargs) if callable(attr) else attr)
                    conn.send(("ok", results))
                except Exception as err:
                    conn.send(("call_error", f"{type(err).__name__}: {err}"))
            elif cmd == "close":
                conn.send(("ok", None))
                return
            else:
                raise ValueError(f"unknown command {cmd!r}")
    except (KeyboardInterrupt, EOFError, BrokenPipeError):
        return
    except Exception as err:  # report, then exit: the parent raises with this text
        try:
            conn.send(("error", f"{type(err).__name__}: {err}\n{traceback.format_exc()}"))
        except (BrokenPipeError, OSError):
            pass
    finally:
        for env in envs:
            env.close()


class SimVectorEnv(VectorEnv):
    """`num_envs` copies of a robo_agent env stepped by `num_workers` processes.

    Args:
        robot, task: as for `RoboAgentEnv` / `make_env`.
        num_envs: total number of envs.
        num_workers: worker processes (default: min(num_envs, CPU cores)).
        max_episode_steps: truncation horizon (default: the task's, as registered).
        context: multiprocessing start method (default "forkserver": safe with torch
            threads in the parent, faster than "spawn" since modules are preloaded). As
            with "spawn", a script that builds one must guard its entry point with
            `if __name__ == "__main__":`.
        **env_kwargs: passed to every `RoboAgentEnv` (reward_type, n_substeps, ...).
    """

    def __init__(
        self, robot: str, task: str, num_envs: int, num_workers: int | None = None,
        max_episode_steps: int | None = None, context: str | None = "forkserver",
        **env_kwargs: Any,
    ) -> None:
        if int(num_envs) != num_envs or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        workers = min(num_envs, os.cpu_count() or 1) if num_workers is None else num_workers
        if int(workers) != workers or not 1 <= workers <= num_envs:
            raise ValueError(
                f"num_workers must be in 1..num_envs ({num_envs}), got {num_workers!r}"
            )
        self.task_cls = task_class(task)
        if max_episode_steps is None:
            max_episode_steps = self.task_cls.max_episode_steps
        if int(max_episode_steps) != max_episode_steps or max_episode_steps < 1:
            raise ValueError(f"max_episode_steps must be >= 1, got {max_episode_steps!r}")
        self.robot, self.task = robot, task
        self.num_envs = int(num_envs)
        self.num_workers = int(workers)
        self.max_episode_steps = int(max_episode_steps)
        self.reward_type = env_kwargs.get("reward_type", "sparse")
        self.distance_threshold = float(env_kwargs.get("distance_threshold", 0.05))
        self.metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}
        self.render_mode = None
        self.closed = False
        self._procs: list[mp.process.BaseProcess] = []
        self._call_errors: list[str] = []
        self._conns: list[Connection] = []

        # Build one env here only to learn the spaces and layouts, then drop it.
        from robo_agent.sim.env import RoboAgentEnv

        probe = RoboAgentEnv(robot=robot, task=task, **env_kwargs)
        self.single_observation_space = probe.observation_space
        self.single_action_space = probe.action_space
        self.observation_layout = list(probe.observation_layout)
        self.action_layout = list(probe.action_layout)
        self.control_dt = probe.control_dt
        self._deployment_spec = probe.deployment_spec()
        probe.close()
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        n_obs = self.single_observation_space["observation"].shape[0]
        n_act = self.single_action_space.shape[0]
        self._n_act = n_act

        ctx = mp.get_context(context)
        if context == "forkserver":
            ctx.set_forkserver_preload(["robo_agent.sim.env", "robo_agent.sim.vector"])
        raw = _buffers(ctx, self.num_envs, n_obs, n_act)
        self._buf = _views(raw, self.num_envs, n_obs, n_act)
        bounds = np.linspace(0, self.num_envs, self.num_workers + 1).round().astype(int)
        self.slices = [(int(a), int(b)) for a, b in itertools.pairwise(bounds)]
        try:
            for w, (a, b) in enumerate(self.slices):
                parent, child = ctx.Pipe()
                proc = ctx.Process(
                    target=_worker, name=f"robo_agent-sim-worker-{w}", daemon=True,
                    args=(w, child, a, b, robot, task, env_kwargs, self.max_episode_steps, raw,
                          self.num_envs, n_obs, n_act, os.getpid()),
                )
                proc.start()
                child.close()
                self._procs.append(proc)
                self._conns.append(parent)
            self._gather()
        except BaseException:
            self.close(terminate=True)
            raise
        self._needs_reset = True

    # -- IPC ------------------------------------------------------------------------------
    def _recv(self, w: int) -> Any:
        conn, proc = self._conns[w], self._procs[w]
        while not conn.poll(1.0):
            if not proc.is_alive():
                self.close(terminate=True)
                raise WorkerError(f"sim worker {w} (pid {proc.pid}) died with exit code "
                                  f"{proc.exitcode}")
        try:
            status, payload = conn.recv()
        except (EOFError, ConnectionResetError):
            proc.join(timeout=1.0)
            self.close(terminate=True)
            raise WorkerError(f"sim worker {w} (pid {proc.pid}) died with exit code "
                              f"{proc.exitcode}") from None
        if status == "error":
            self.close(terminate=True)
            raise WorkerError(f"sim worker {w} failed: {payload}")
        if status == "call_error":
            self._call_errors.append(payload)
        return payload

    def _send_all(self, cmd: str, payload: Any = None) -> None:
        if self.closed:
            raise RuntimeError("SimVectorEnv is closed")
        for w, conn in enumerate(self._conns):
            try:
                conn.send((cmd, payload))
            except (BrokenPipeError, OSError):
                self._recv(w)  # raises a WorkerError naming the dead worker
                raise

    def _gather(self) -> list[Any]:
        return [self._recv(w) for w in range(len(self._conns))]

    # -- VectorEnv API ----------------------------------------------------------------------
    def _obs(self, prefix: str = "") -> dict[str, np.ndarray]:
        return {k: self._buf[prefix + k].copy() for k in _OBS_KEYS}

    def reset(self, *, seed: int | list[int | None] | None = None,
              options: dict[str, Any] | None = None):
        """Reset every env; an int seed gives env i the seed `seed + i`."""
        if seed is None:
            seeds: list[int | None] = [None] * self.num_envs
        elif isinstance(seed, (int, np.integer)):
            seeds = [int(seed) + i for i in range(self.num_envs)]
        else:
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"expected {self.num_envs} seeds, got {len(seeds)}")
        self._send_all("reset", (seeds, options))
        self._gather()
        self._needs_reset = False
        success = self._buf["success"].copy()
        return self._obs(), {"is_success": success, "_is_success": np.ones(self.num_envs, bool)}

    def step(self, actions: Any):
        """Step every env with `actions` of shape (num_envs, action_dim)."""
        if self._needs_reset:
            raise RuntimeError("call reset() before step()")
        try:
            a = np.asarray(actions, dtype=np.float32)
        except (TypeError, ValueError):
            raise ValueError(f"actions must be numbers, got {actions!r}") from None
        if a.shape != (self.num_envs, self._n_act):
            raise ValueError(
                f"actions must have shape ({self.num_envs}, {self._n_act}), got {a.shape}"
            )
        if not np.all(np.isfinite(a)):
            bad = sorted({int(i) for i in np.argwhere(~np.isfinite(a))[:, 0]})
            raise ValueError(f"actions of envs {bad} contain NaN or inf")
        self._buf["actions"][:] = a
        self._send_all("step")
        self._gather()
        b = self._buf
        mask = b["final_mask"].copy()
        ones = np.ones(self.num_envs, bool)
        infos: dict[str, Any] = {"is_success": b["success"].copy(), "_is_success": ones}
        if mask.any():
            # As gymnasium's SAME_STEP: an object array of per-env obs dicts (None where
            # the episode goes on); the same rows batched are in "final_obs_batch".
            batch = self._obs("final_")
            final = np.full(self.num_envs, None, dtype=object)
            for i in np.flatnonzero(mask):
                final[i] = {k: v[i] for k, v in batch.items()}
            infos["final_obs"] = final
            infos["_final_obs"] = mask
            infos["final_obs_batch"] = batch
            infos["final_info"] = {"is_success": b["final_success"] & mask, "_is_success": mask}
            infos["_final_info"] = mask
        return (self._obs(), b["rewards"].copy(), b["terminated"].copy(),
                b["truncated"].copy(), infos)

    def compute_reward(self, achieved_goal: np.ndarray, desired_goal: np.ndarray,
                       info: Any = None) -> np.ndarray:
        """Batched reward with the envs' reward type and threshold (no worker involved)."""
        return compute_reward(achieved_goal, desired_goal, self.reward_type,
                              self.distance_threshold)

    def call(self, name: str, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        """Call a method (or read an attribute) on every env; results in env order."""
        self._call_errors: list[str] = []
        self._send_all("call", (name, args, kwargs))
        chunks = self._gather()
        if self._call_errors:
            raise RuntimeError(f"call {name!r} failed in the envs: {self._call_errors[0]}")
        return tuple(r for chunk in chunks for r in chunk)

    def get_attr(self, name: str) -> tuple[Any, ...]:
        """An attribute of every env, in env order."""
        return self.call(name)

    def deployment_spec(self) -> dict[str, Any]:
        """The envs' `RoboAgentEnv.deployment_spec()` (all envs share it)."""
        return dict(self._deployment_spec)

    def close_extras(self, terminate: bool = False, **kwargs: Any) -> None:
        """Ask the workers to close their envs and exit; `terminate` kills them."""
        for conn, proc in zip(self._conns, self._procs, strict=False):
            if not terminate and proc.is_alive():
                try:
                    conn.send(("close", None))
                    if conn.poll(5.0):
                        conn.recv()
                except (BrokenPipeError, EOFError, OSError):
                    pass
            proc.join(timeout=0 if terminate else 5.0)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=2.0)
            conn.close()
        self._conns, self._procs = [], []

    def close(self, **kwargs: Any) -> None:
        """Stop the workers and release shared memory (idempotent)."""
        if self.closed:
            return
        self.close_extras(**kwargs)
        self.closed = True

    def __del__(self) -> None:
        try:
            if not getattr(self, "closed", True):
                self.close(terminate=True)
        except Exception:
            pass


def make_vec_env(robot: str, task: str, num_envs: int, num_workers: int | None = None,
                 **kwargs: Any) -> SimVectorEnv:
    """`SimVectorEnv` for a robot/task pair (or a registered id's robot/task)."""
    return SimVectorEnv(robot, task, num_envs, num_workers, **kwargs)


def make_vec_from_id(env_id: str, num_envs: int, **kwargs: Any) -> SimVectorEnv:
    """`SimVectorEnv` for a registered id such as 'robo_agent/PandaReach-v0'."""
    spec = gym.spec(env_id)
    kw = dict(spec.kwargs)
    robot, task = kw.pop("robot"), kw.pop("task")
    kwargs.setdefault("max_episode_steps", spec.max_episode_steps)
    return SimVectorEnv(robot, task, num_envs, **kw, **kwargs)
