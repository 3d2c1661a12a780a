"""Gymnasium ids for robot/task pairs, registered by `import robo_agent.sim` (once gymnasium
is imported: this module imports it only inside the functions that need it).

Which robots get which task:

| task          | robots              | why                                                   |
|---------------|---------------------|-------------------------------------------------------|
| Reach         | panda, iiwa, xarm6  | any arm can move its end effector to a point          |
| Push          | panda               | pushes with its closed gripper; see below for iiwa    |
| PickAndPlace  | panda               | needs a gripper; iiwa and xarm6 descriptions have none|

The iiwa and xarm6 have no gripper or pusher tool in their descriptions (bare flanges),
so Push is registered for the Panda only; `make_env("iiwa", "push")` still builds the
env for experiments (the flange pushes the cube), it is just not a registered benchmark.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import gymnasium as gym

NAMESPACE = "robo_agent"
ROBOT_DISPLAY = {"panda": "Panda", "iiwa": "Iiwa", "xarm6": "XArm6"}
TASK_DISPLAY = {"reach": "Reach", "push": "Push", "pick_and_place": "PickAndPlace"}
TASK_ROBOTS: dict[str, list[str]] = {
    "reach": ["panda", "iiwa", "xarm6"],
    "push": ["panda"],
    "pick_and_place": ["panda"],
}
#: episode length of each task (its TimeLimit); joint-space Push/PickAndPlace need more
MAX_EPISODE_STEPS = {"reach": 50, "push": 100, "pick_and_place": 100}
ENTRY_POINT = "robo_agent.sim.env:RoboAgentEnv"
#: `gymnasium.make_vec(id, num_envs)` builds a SimVectorEnv (worker processes, shared memory)
VECTOR_ENTRY_POINT = "robo_agent.sim.vector:SimVectorEnv"


def canonical_task(name: str) -> str:
    """"reach", "push" or "pick_and_place" for a task name (case/dash-insensitive)."""
    key = str(name).lower().replace("-", "_")
    key = {"pickandplace": "pick_and_place", "pick_place": "pick_and_place"}.get(key, key)
    if key not in TASK_DISPLAY:
        raise ValueError(f"unknown task '{name}' (known: {', '.join(TASK_DISPLAY)})")
    return key


def env_id(robot: str, task: str) -> str:
    """Gymnasium id for a robot/task pair, e.g. ("panda", "reach") -> robo_agent/PandaReach-v0."""
    t = canonical_task(task)
    r = ROBOT_DISPLAY.get(robot, robot[:1].upper() + robot[1:])
    return f"{NAMESPACE}/{r}{TASK_DISPLAY[t]}-v0"


ENV_IDS: list[str] = [env_id(r, t) for t, robots in TASK_ROBOTS.items() for r in robots]


def register_envs() -> None:
    """Register every id in `ENV_IDS` (idempotent)."""
    import gymnasium as gym

    for task, robots in TASK_ROBOTS.items():
        steps = MAX_EPISODE_STEPS[task]
        for robot in robots:
            eid = env_id(robot, task)
            if eid not in gym.registry:
                gym.register(id=eid, entry_point=ENTRY_POINT, max_episode_steps=steps,
                             kwargs={"robot": robot, "task": task},
                             vector_entry_point=VECTOR_ENTRY_POINT)


def make_env(robot: str, task: str, **kwargs: Any) -> gym.Env:
    """A time-limited env for any robot/task pair (registered or not, e.g. a user's robot).

    Registered pairs go through `gymnasium.make` (with its checkers and `TimeLimit`);
    others get the same wrappers around a directly built `RoboAgentEnv`.
    """
    import gymnasium as gym

    eid = env_id(robot, task)
    if eid in gym.registry:
        return gym.make(eid, **kwargs)
    from gymnasium.wrappers import OrderEnforcing, TimeLimit
    from robo_agent.sim.env import RoboAgentEnv

    max_steps = kwargs.pop("max_episode_steps", MAX_EPISODE_STEPS[canonical_task(task)])
    return TimeLimit(OrderEnforcing(RoboAgentEnv(robot=robot, task=task, **kwargs)), max_steps)
