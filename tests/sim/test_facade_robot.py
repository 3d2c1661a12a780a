"""Facade and SimRobot against real PyBullet (no mocks), with the Pinocchio kinematics."""

from __future__ import annotations

import numpy as np
import pytest
from robo_agent.sim.facade import PyBullet
from robo_agent.sim.robot import SimRobot

from robo_agent.core.robot_spec import load_robot
from robo_agent.kinematics import Kinematics

pytestmark = pytest.mark.sim


@pytest.fixture
def panda_sim():
    with PyBullet() as sim:
        robot = SimRobot(sim, load_robot("panda"))
        robot.reset()
        yield sim, robot


def test_timing_and_close_is_idempotent() -> None:
    sim = PyBullet(timestep=1 / 240, n_substeps=4)
    assert sim.dt == pytest.approx(4 / 240)
    sim.close()
    sim.close()
    assert not sim.connected


@pytest.mark.parametrize("kw", [{"render_mode": "window"}, {"timestep": 0.0}, {"n_substeps": 0}])
def test_bad_constructor_arguments(kw: dict) -> None:
    with pytest.raises(ValueError):
        PyBullet(**kw)


def test_names_resolve_and_unknown_names_are_named(panda_sim) -> None:
    sim, _robot = panda_sim
    idx = sim.joint_indices("robot", ["panda_joint2", "panda_joint1"])
    assert idx.tolist() == [1, 0]
    with pytest.raises(ValueError, match=r"no joint.*nope"):
        sim.joint_indices("robot", ["panda_joint1", "nope"])
    with pytest.raises(ValueError, match="no link 'nolink'"):
        sim.link_index("robot", "nolink")
    with pytest.raises(ValueError, match="unknown body 'ghost'"):
        sim.get_base_pose("ghost")
    with pytest.raises(ValueError, match="already exists"):
        sim.create_box("robot", (0.1, 0.1, 0.1), 1.0, (0, 0, 0))


def test_position_control_reaches_targets(panda_sim) -> None:
    sim, robot = panda_sim
    target = robot.spec.home_array + np.array([0.3, 0.2, -0.2, 0.3, 0.2, -0.3, 0.2])
    robot.set_joint_targets(target)
    for _ in range(30):
        sim.step()
    assert np.allclose(robot.joint_positions(), target, atol=0.02)
    robot.set_gripper_width(0.02)
    for _ in range(10):
        sim.step()
    assert robot.gripper_width() == pytest.approx(0.02, abs=0.002)


def test_bad_commands_leave_state_unchanged(panda_sim) -> None:
    sim, robot = panda_sim
    before = robot.joint_targets
    q_before = robot.joint_positions()
    for bad in (np.zeros(6), np.full(7, np.nan), [0, 0, 0, 0, 0, 0, np.inf], "abc"):
        with pytest.raises(ValueError):
            robot.set_joint_targets(bad)
    with pytest.raises(ValueError, match="outside the joint limits"):
        robot.reset(np.full(7, 10.0))
    with pytest.raises(ValueError):
        robot.set_gripper_width(float("nan"))
    assert np.array_equal(robot.joint_targets, before)
    assert np.array_equal(robot.joint_positions(), q_before)
    with pytest.raises(ValueError):
        sim.reset_joints("robot", np.array([0, 1]), np.array([0.0, np.nan]))
    assert np.array_equal(robot.joint_positions(), q_before)


def test_robot_without_gripper_says_so() -> None:
    with PyBullet() as sim:
        robot = SimRobot(sim, load_robot("iiwa"))
        robot.reset()
        assert robot.gripper_width() is None
        with pytest.raises(ValueError, match="has no gripper"):
            robot.set_gripper_width(0.01)


def test_save_restore_state(panda_sim) -> None:
    sim, _robot = panda_sim
    sim.create_box("cube", (0.02, 0.02, 0.02), 0.1, (0.5, 0.0, 0.5))
    state = sim.save_state()
    for _ in range(5):
        sim.step()
    moved = sim.get_base_pose("cube")[0]
    sim.restore_state(state)
    assert sim.get_base_pose("cube")[0][2] == pytest.approx(0.5)
    for _ in range(5):
        sim.step()
    assert np.allclose(sim.get_base_pose("cube")[0], moved)


def test_pinocchio_ik_drives_the_sim_arm_there(panda_sim) -> None:
    sim, robot = panda_sim
    goal = np.array([0.45, 0.1, 0.25])
    sol = Kinematics.for_robot(robot.spec).ik(goal, orientation=[1, 0, 0, 0])
    assert sol.converged
    robot.set_joint_targets(sol.q)
    for _ in range(80):
        sim.step()
    assert np.linalg.norm(robot.ee_pose()[0] - goal) < 0.01


@pytest.mark.parametrize("name", ["panda", "iiwa", "xarm6"])
def test_ee_pose_is_in_the_base_frame_wherever_the_base_is(name: str) -> None:
    """REP-105: a shifted, rotated base gives the same base-frame pose as the robot's FK."""
    spec = load_robot(name)
    moved = spec.model_copy(update={"base_position": (0.3, -0.2, 0.1),
                                    "base_orientation": (0.0, 0.0, 0.38268343, 0.92387953)})
    kin = Kinematics.for_robot(spec)
    q = np.clip(spec.home_array + 0.3, spec.lower, spec.upper)
    with PyBullet() as sim:
        robot = SimRobot(sim, moved)
        robot.reset(q)
        pos, orn = robot.ee_pose()
        world = sim.get_link_pose(robot.body, robot.ee_link)[0]
        p2, o2, v = robot.ee_state()
    ref_pos, ref_orn = kin.ee_pose(q)
    assert np.linalg.norm(world - ref_pos) > 0.1  # the world frame differs ...
    np.testing.assert_allclose(pos, ref_pos, atol=1e-5)  # ... the base frame does not
    np.testing.assert_allclose(orn * np.sign(np.dot(orn, ref_orn)), ref_orn, atol=1e-6)
    np.testing.assert_allclose(p2, pos)
    np.testing.assert_allclose(o2, orn)
    np.testing.assert_allclose(v, 0.0, atol=1e-6)


def test_camera_image_shape(panda_sim) -> None:
    sim, _ = panda_sim
    img = sim.render_rgb(64, 48, target=(0.3, 0, 0.2))
    assert img.shape == (48, 64, 3) and img.dtype == np.uint8
    assert img.std() > 0  # the robot is in view, not a blank image
    assert sim.renderer in ("egl", "tiny")


def test_no_rendering_restores_on_error(panda_sim) -> None:
    sim, _ = panda_sim
    with pytest.raises(RuntimeError), sim.no_rendering():
        raise RuntimeError("boom")
    assert sim.connected


def test_gui_without_display_is_a_clear_error(monkeypatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(RuntimeError, match="needs a display"):
        PyBullet("gui")


def test_pybullet_c_chatter_goes_to_the_debug_log(caplog, capfd) -> None:
    import logging

    with caplog.at_level(logging.DEBUG, logger="robo_agent.sim.facade"), PyBullet() as sim:
        SimRobot(sim, load_robot("xarm6"))  # its URDF makes PyBullet warn about inertia
    assert "Bad inertia" in caplog.text
    assert "Bad inertia" not in capfd.readouterr().out
