"""The robot path imports no simulator or trainer (the lean `robot` install).

Each entry point runs in a fresh interpreter, importing what it imports when it starts
(its module, the modules its handler imports, and for the bridge the kinematics and the
safety envelope at work), and must leave torch, pybullet and gymnasium out of
`sys.modules` even though they are installed here. Add new robot-path entry points to
`ENTRY_POINTS`.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

FORBIDDEN = ("torch", "pybullet", "gymnasium")

_CLI = """
from robo_agent.cli import main
try:
    main([{command!r}, "--help"])
except SystemExit:
    pass
"""

ENTRY_POINTS: dict[str, str] = {
    "arm_bridge": """
import numpy as np
import robo_agent.ros.arm_bridge
import robo_agent.ros.tool_runner
from robo_agent.core.robot_spec import load_robot
from robo_agent.core.safety import SafetyEnvelope
from robo_agent.kinematics import Kinematics
for name in ("panda", "iiwa", "xarm6"):
    spec = load_robot(name)
    kin = Kinematics.for_robot(spec)
    env = SafetyEnvelope(spec, kinematics=kin)
    home = spec.home_array
    env.plan_joint_motion("move_joints", home, home + 0.1)
    env.check_stream_command("policy", home, home + 0.001, 0.002)
    kin.ik(kin.ee_pose(home + 0.05)[0], q0=home)
""",
    "agent_node": "import robo_agent.ros.agent_node\nimport robo_agent.ros.tool_executor\n",
    "policy_runner": """
import numpy as np
import robo_agent.ros.policy_runner
import robo_agent.ros.tool_policies
from robo_agent.core.policy_loop import PolicyLoop
from robo_agent.policy import OnnxPolicy
""",
    "robo-agent deploy": _CLI.format(command="deploy") + "import robo_agent.deploy.cli\n",
    "robo-agent mcp": _CLI.format(command="mcp") + "import robo_agent.agent.mcp_server\n",
    "robo-agent chat": _CLI.format(command="chat")
    + "import robo_agent.agent.llm\nimport robo_agent.agent.session\n",
}


@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_robot_path_loads_no_simulator_or_trainer(name: str) -> None:
    code = ENTRY_POINTS[name] + (
        f"\nimport json, sys\nprint(json.dumps([m for m in {FORBIDDEN!r} if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert loaded == [], f"{name} imports {loaded}"


def test_the_check_can_fail() -> None:
    # The same probe on a sim entry point does see pybullet and gymnasium.
    code = ("import robo_agent.sim.facade, robo_agent.sim.env, sys, json\n"
            f"print(json.dumps([m for m in {FORBIDDEN!r} if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == ["pybullet", "gymnasium"]
