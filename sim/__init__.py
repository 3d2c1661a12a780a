"""PyBullet simulation: facade, robots, tasks, Gymnasium envs, vector env.

Importing this package registers the Gymnasium ids in `ENV_IDS`
(`robo_agent/PandaReach-v0`, ...) without importing pybullet; only
`robo_agent.sim.facade` imports it.
"""

from robo_agent.sim.registry import ENV_IDS, TASK_ROBOTS, env_id, make_env, register_envs
from robo_agent.sim.rewards import compute_reward

register_envs()

__all__ = ["ENV_IDS", "TASK_ROBOTS", "compute_reward", "env_id", "make_env", "register_envs"]
