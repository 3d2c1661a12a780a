"""PyBullet simulation: facade, robots, tasks, Gymnasium envs, vector env.

Importing this package registers the Gymnasium ids in `ENV_IDS`
(`robo_agent/PandaReach-v0`, ...) without importing pybullet or gymnasium: at once if
gymnasium is already imported, else the moment it is (an import hook), so the robot path,
whose `robo-agent mcp/chat/deploy` parse arguments through this package's `cli`, loads
neither. Only `robo_agent.sim.facade` imports pybullet. The classes below load lazily.

    from robo_agent.sim import ENV_IDS, make_env, env_id, compute_reward
    from robo_agent.sim import RoboAgentEnv, SimVectorEnv, Randomization, EndEffectorActions
"""

from __future__ import annotations

import sys
from importlib import import_module
from importlib.abc import MetaPathFinder
from typing import Any

from robo_agent.sim.registry import ENV_IDS, TASK_ROBOTS, env_id, make_env, register_envs
from robo_agent.sim.rewards import compute_reward


class _RegisterOnGymnasiumImport(MetaPathFinder):
    """Registers the ids right after `gymnasium` itself is first imported, then leaves."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "gymnasium":
            return None
        sys.meta_path.remove(self)
        for finder in sys.meta_path:
            spec = getattr(finder, "find_spec", lambda *a: None)(name, path, target)
            if spec is not None and spec.loader is not None:
                run = spec.loader.exec_module

                def exec_module(module: Any, _run: Any = run) -> None:
                    _run(module)
                    register_envs()

                spec.loader.exec_module = exec_module  # type: ignore[method-assign]
                return spec
        return None


if "gymnasium" in sys.modules:
    register_envs()
elif not any(isinstance(f, _RegisterOnGymnasiumImport) for f in sys.meta_path):
    sys.meta_path.insert(0, _RegisterOnGymnasiumImport())

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
