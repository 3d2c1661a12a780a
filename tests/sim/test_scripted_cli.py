"""Every registered task is solvable through its joint-space actions; `robo-agent sim` works."""

from __future__ import annotations

import gymnasium as gym
import pytest
from robo_agent.sim import ENV_IDS
from robo_agent.sim.scripted import ScriptedController

from robo_agent.cli import main

pytestmark = pytest.mark.sim


@pytest.mark.parametrize("eid", ENV_IDS)
def test_scripted_controller_solves_every_registered_task(eid: str) -> None:
    env = gym.make(eid)
    controller = ScriptedController(env.unwrapped)
    try:
        for seed in (0, 1):
            obs, _ = env.reset(seed=seed)
            controller.reset()
            done, info = False, {}
            while not done:
                obs, _, terminated, truncated, info = env.step(controller.act(obs))
                done = terminated or truncated
            assert info["is_success"], f"{eid} seed {seed}: scripted controller failed"
    finally:
        controller.close()
        env.close()


def test_sim_command_prints_success_and_speed(capsys) -> None:
    assert main(["sim", "--robot", "xarm6", "--task", "reach", "--episodes", "2"]) == 0
    out = capsys.readouterr().out
    assert "success 2/2" in out and "env steps/s" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--robot", "ur99"], "unknown robot 'ur99'"),
        (["--task", "juggle"], "unknown task 'juggle'"),
        (["--robot", "iiwa", "--task", "pick_and_place"], "needs a gripper"),
        (["--episodes", "0"], "--episodes must be >= 1"),
    ],
)
def test_sim_command_bad_input(argv: list[str], message: str, capsys) -> None:
    assert main(["sim", *argv]) == 2
    assert message in capsys.readouterr().err
