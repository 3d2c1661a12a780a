"""Robot descriptions: the shipped ones load, and bad ones fail naming file, key and problem."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from robo_agent.core.paths import robots_dir
from robo_agent.core.robot_spec import RobotSpecError, list_robots, load_robot, robot_names

PANDA = robots_dir() / "panda.yaml"


def _write(tmp_path: Path, name: str, data: object) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def _panda_data() -> dict:
    return yaml.safe_load(PANDA.read_text())


def test_shipped_robots_load() -> None:
    assert robot_names() == ["iiwa", "panda", "xarm6"]
    dofs = {spec.name: spec.dof for spec in list_robots()}
    assert dofs == {"iiwa": 7, "panda": 7, "xarm6": 6}


def test_panda_views() -> None:
    spec = load_robot("panda")
    assert spec.joint_names[0] == "panda_joint1"
    assert spec.lower.shape == spec.upper.shape == spec.home_array.shape == (7,)
    assert np.all(spec.lower < spec.upper)
    assert spec.controllers.trajectory_topic == "/arm_controller/joint_trajectory"
    assert spec.controllers.position_topic == "/position_controller/commands"
    assert spec.controllers.gripper_topic == "/gripper_controller/commands"
    assert spec.gripper is not None
    assert spec.gripper.joint_positions(0.08) == [0.04, 0.04]
    assert spec.gripper.width([0.02, 0.02]) == pytest.approx(0.04)
    assert spec.urdf_path("/data") == Path("/data/franka_panda/panda.urdf")


def test_robots_without_gripper_have_no_gripper_topic() -> None:
    for name in ("iiwa", "xarm6"):
        spec = load_robot(name)
        assert spec.gripper is None and spec.controllers.gripper_topic is None


def test_user_robot_in_own_directory(tmp_path: Path) -> None:
    data = _panda_data()
    data["name"] = "myarm"
    data["urdf"] = "myarm.urdf"
    _write(tmp_path, "myarm", data)
    spec = load_robot("myarm", directory=tmp_path)
    assert spec.urdf_path() == tmp_path / "myarm.urdf"
    assert load_robot(tmp_path / "myarm.yaml").name == "myarm"


def test_unknown_robot_lists_known() -> None:
    with pytest.raises(RobotSpecError, match=r"unknown robot 'ur5'.*panda"):
        load_robot("ur5")


def test_malformed_yaml_names_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "broken", "name: broken\njoints: [unclosed\n")
    with pytest.raises(RobotSpecError, match=r"broken\.yaml: malformed YAML"):
        load_robot(path)


@pytest.mark.parametrize(
    ("mutate", "key", "message"),
    [
        (lambda d: d["joints"][1].update(lower=2.0, upper=1.0), "joints.1", "must be below upper"),
        (lambda d: d["joints"][0].pop("velocity"), "joints.0.velocity", "Field required"),
        (lambda d: d["joints"][0].update(velocity=-1), "joints.0.velocity", "greater than 0"),
        (lambda d: d.update(home=[0.0] * 3), "<top level>", "home has 3 values"),
        (lambda d: d.update(home=[9.0, *d["home"][1:]]), "<top level>", "outside"),
        (lambda d: d.update(colour="red"), "colour", "Extra inputs"),
        (lambda d: d.pop("ee_link"), "ee_link", "Field required"),
        (lambda d: d["joints"].append(dict(d["joints"][0])), "joints", "duplicate joint names"),
    ],
)
def test_invalid_descriptions_name_key(tmp_path: Path, mutate, key: str, message: str) -> None:
    data = _panda_data()
    mutate(data)
    path = _write(tmp_path, "panda", data)
    with pytest.raises(RobotSpecError) as err:
        load_robot(path)
    text = str(err.value)
    assert str(path) in text and f"key '{key}'" in text and message in text


def test_name_must_match_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "other", _panda_data())
    with pytest.raises(RobotSpecError, match="key 'name' is 'panda'"):
        load_robot(path)


def test_top_level_must_be_mapping(tmp_path: Path) -> None:
    path = _write(tmp_path, "panda", "- just\n- a list\n")
    with pytest.raises(RobotSpecError, match="expected a mapping"):
        load_robot(path)
