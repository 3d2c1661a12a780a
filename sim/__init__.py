"""PyBullet simulation: facade, robots, tasks, Gymnasium envs, vector env.

Importing this package registers the Gymnasium ids in `ENV_IDS`
(`robo_agent/PandaReach-v0`, ...) without importing pybullet; only
`robo_agent.sim.facade` imports it. The classes below load lazily on first use.

    from robo_agent.sim import ENV_IDS, make_env, env_id, compute_reward
    from robo_agent.sim import RoboAgentEnv, SimVectorEnv, Randomization, EndEffectorActions
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from robo_agent.sim.registry import ENV_IDS, TASK_ROBOTS, env_id, make_env, register_envs
from robo_agent.sim.rewards import compute_reward

register_envs()

_LAZY = {
    "RoboAgentEnv": "robo_agent.sim.env",
    "SimVectorEnv": "robo_agent.sim.vector",
    "make_vec_env": "robo_agent.sim.vector",
    "Randomization": "robo_agent.sim.randomization",
    "EndEffectorActions": "robo_agent.sim.wrappers",
    "PyBullet": "robo_agent.sim.facade",
    "SimRobot": "robo_agent.sim.robot",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'robo_agent.sim' has no attribute {name!r}")


__all__ = ["ENV_IDS", "TASK_ROBOTS", "compute_reward", "env_id", "make_env", "register_envs",
           *_LAZY]
