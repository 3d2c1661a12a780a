"""`colcon build` installs robo_agent as an ament_python package with the ROS 2 layout.

Real colcon (colcon-core + colcon-ros from PyPI), run on a copy of the tracked source
tree in a temporary workspace, so the checkout is never touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.colcon, pytest.mark.slow]


def _tracked_files() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [line for line in out.splitlines() if line and (REPO / line).is_file()]


@pytest.fixture(scope="module")
def colcon_install(tmp_path_factory: pytest.TempPathFactory) -> Path:
    colcon = shutil.which(
        "colcon", path=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"]
    )
    if colcon is None:
        pytest.fail("colcon is not installed: install the dev extra (pip install -e '.[dev]')")
    ws = tmp_path_factory.mktemp("colcon_ws")
    pkg = ws / "src" / "robo_agent"
    for rel in _tracked_files():
        dest = pkg / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, dest)
    result = subprocess.run(
        [colcon, "build", "--event-handlers", "console_direct-"],
        cwd=ws,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, (
        f"colcon build failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    )
    return ws / "install" / "robo_agent"


def test_built_as_ament_python(colcon_install: Path) -> None:
    # colcon-ros adds the ament_prefix_path hook only for ros.ament_python packages; a
    # package.xml that fails catkin_pkg's checks silently demotes it to plain `python`.
    assert (colcon_install / "share" / "robo_agent" / "hook" / "ament_prefix_path.dsv").is_file()


def test_install_tree_layout(colcon_install: Path) -> None:
    share = colcon_install / "share"
    assert (share / "ament_index" / "resource_index" / "packages" / "robo_agent").is_file()
    assert (share / "robo_agent" / "package.xml").is_file()
    for robot in ("panda", "iiwa", "xarm6"):
        assert (share / "robo_agent" / "config" / "robots" / f"{robot}.yaml").is_file()
    for policy in ("default", "unattended"):
        assert (share / "robo_agent" / "config" / "safety" / f"{policy}.yaml").is_file()
    for params in ("sim_robot", "arm_bridge"):
        assert (share / "robo_agent" / "config" / "params" / f"{params}.yaml").is_file()
    for launch in ("sim.launch.xml", "robot.launch.xml"):
        assert (share / "robo_agent" / "launch" / launch).is_file()
    for exe in ("robo-agent", "sim_robot", "arm_bridge", "agent_node"):
        path = colcon_install / "lib" / "robo_agent" / exe
        assert path.is_file() and os.access(path, os.X_OK), (
            f"{exe} not installed where ros2 run looks"
        )
    site = next((colcon_install / "lib").glob("python3*/site-packages"))
    for module in (
        "robo_agent/core",
        "robo_agent/sim",
        "robo_agent/autoresearch",
        "robo_agent/ros",
    ):
        assert (site / module / "__init__.py").is_file()
    assert not (site / "sim").exists(), "no generic top-level 'sim' package may be installed"


def test_installed_cli_finds_share_config(colcon_install: Path) -> None:
    """The installed executable runs from the install tree and reads share/robo_agent/config."""
    site = next((colcon_install / "lib").glob("python3*/site-packages"))
    env = dict(os.environ)
    env["AMENT_PREFIX_PATH"] = str(colcon_install)
    env["PYTHONPATH"] = str(site)
    env.pop("ROBO_AGENT_CONFIG_DIR", None)
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import robo_agent, robo_agent.core.paths as p;"
            "print(robo_agent.__file__); print(p.config_dir())",
        ],
        env=env,
        cwd=colcon_install,  # not the checkout: `python -c` puts the cwd first on sys.path
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert probe[0].startswith(str(site)), probe
    assert probe[1] == str(colcon_install / "share" / "robo_agent" / "config")
    out = subprocess.run(
        [str(colcon_install / "lib" / "robo_agent" / "robo-agent"), "robots"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "panda" in out.stdout and "xarm6" in out.stdout
