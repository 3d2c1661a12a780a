"""Pinocchio kinematics on its own (no simulator): Jacobian, velocity, IK, frames, threads."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from robo_agent.core.robot_spec import load_robot
from robo_agent.kinematics import IkResult, Kinematics

ROBOTS = ["panda", "iiwa", "xarm6"]


@pytest.fixture(params=ROBOTS)
def kin(request) -> Kinematics:
    return Kinematics.for_robot(load_robot(request.param))


def test_jacobian_matches_finite_differences(kin: Kinematics) -> None:
    q = np.random.default_rng(3).uniform(kin.lower, kin.upper)
    jac = kin.jacobian(q)
    assert jac.shape == (6, kin.dof)
    h = 1e-6
    for i in range(kin.dof):
        dq = np.zeros(kin.dof)
        dq[i] = h
        dp = (kin.ee_pose(q + dq)[0] - kin.ee_pose(q - dq)[0]) / (2 * h)
        np.testing.assert_allclose(jac[:3, i], dp, atol=1e-6)
    qd = np.linspace(-0.5, 0.5, kin.dof)
    np.testing.assert_allclose(kin.ee_velocity(q, qd), jac[:3] @ qd)


def test_ik_round_trip(kin: Kinematics) -> None:
    rng = np.random.default_rng(11)
    for _ in range(10):
        # targets reachable by construction, away from the joint limits
        q = rng.uniform(0.7 * kin.lower + 0.3 * kin.upper, 0.3 * kin.lower + 0.7 * kin.upper)
        pos, orn = kin.ee_pose(q)
        sol = kin.ik(pos, orn)
        assert sol.converged, sol
        assert sol.position_error <= 1e-4 and sol.orientation_error <= 1e-3
        assert np.all(sol.q >= kin.lower) and np.all(sol.q <= kin.upper)
        np.testing.assert_allclose(kin.ee_pose(sol.q)[0], pos, atol=1e-4)
        pos_only = kin.ik(pos, q0=kin.home)
        assert pos_only.converged and pos_only.orientation_error == 0.0


def test_ik_unreachable_reports_residual_and_is_deterministic(kin: Kinematics) -> None:
    far = [3.0, 0.0, 0.5]
    a, b = kin.ik(far), kin.ik(far)
    assert isinstance(a, IkResult) and not a.converged
    assert a.position_error > 1.5
    np.testing.assert_array_equal(a.q, b.q)


def test_bad_input_is_refused(kin: Kinematics) -> None:
    with pytest.raises(ValueError, match="needs"):
        kin.ee_pose(np.zeros(kin.dof + 1))
    with pytest.raises(ValueError, match="finite"):
        kin.ik([0.3, np.nan, 0.3])
    with pytest.raises(ValueError, match="zero norm"):
        kin.ik([0.3, 0.0, 0.3], [0.0, 0.0, 0.0, 0.0])


def test_ee_pose_fast_path_keeps_every_check(kin: Kinematics) -> None:
    # ee_pose skips the conversion for a float64 vector of the right length; every other
    # input still goes through the full check, and gives the same pose when it is valid.
    q = np.random.default_rng(5).uniform(kin.lower, kin.upper)
    pos, quat = kin.ee_pose(q)
    q32 = q.astype(np.float32)
    np.testing.assert_array_equal(kin.ee_pose(q32)[0], kin.ee_pose(q32.astype(np.float64))[0])
    for same in (list(q), tuple(q), q.reshape(1, -1),
                 np.repeat(q[:, None], 2, axis=1)[:, 1]):  # a strided view
        p2, q2 = kin.ee_pose(same)
        np.testing.assert_allclose(p2, pos, atol=1e-12)
        np.testing.assert_allclose(q2, quat, atol=1e-12)
    for bad in (np.nan, np.inf, -np.inf):
        with pytest.raises(ValueError, match="finite"):
            kin.ee_pose(np.r_[q[:-1], bad])
    with pytest.raises(ValueError, match=f"needs {kin.dof} values, got {kin.dof - 1}"):
        kin.ee_pose(q[:-1])
    assert kin.ee_pose(np.full(kin.dof, 1e200))[0].shape == (3,)  # finite (its sum is not)
    kin.ee_pose(kin.home)  # a later call leaves an earlier result alone (no shared buffer)
    np.testing.assert_array_equal(pos, kin.ee_pose(q)[0])


def test_missing_urdf_or_meshes_say_what_to_do(tmp_path, monkeypatch) -> None:
    from robo_agent.core.robot_spec import RobotSpecError
    from robo_agent.kinematics import model, pybullet_data_dir

    spec = load_robot("panda")
    monkeypatch.setattr(model, "pybullet_data_dir", lambda: None)  # no pybullet_data here
    with pytest.raises(RobotSpecError, match="ROBO_AGENT_URDF_DIR to a folder holding "
                                             "franka_panda/"):
        Kinematics.for_robot(spec)
    monkeypatch.undo()
    monkeypatch.setenv("ROBO_AGENT_URDF_DIR", str(tmp_path))
    with pytest.raises(RobotSpecError, match=r"no URDF file at .*franka_panda/panda\.urdf"):
        Kinematics.for_robot(spec)
    # The URDF alone, without the meshes it names: said at construction of the envelope's
    # geometry, not as pinocchio's bare "could not be found".
    monkeypatch.delenv("ROBO_AGENT_URDF_DIR")
    (tmp_path / "franka_panda").mkdir()
    (tmp_path / "franka_panda" / "panda.urdf").write_bytes(
        (pybullet_data_dir() / "franka_panda" / "panda.urdf").read_bytes())
    monkeypatch.setenv("ROBO_AGENT_URDF_DIR", str(tmp_path))
    kin = Kinematics.for_robot(spec)
    with pytest.raises(RobotSpecError, match=r"collision meshes are not.*mesh files it names"):
        kin.sphere_radii  # noqa: B018


def test_link_positions(kin: Kinematics) -> None:
    links = kin.link_positions(kin.home)
    assert kin.spec.ee_link in links and kin.spec.base_frame in links
    np.testing.assert_allclose(links[kin.spec.base_frame], 0.0, atol=1e-12)
    np.testing.assert_allclose(links[kin.spec.ee_link], kin.ee_pose(kin.home)[0])


def test_base_frame_whatever_the_base_pose() -> None:
    # REP-105: the base pose in the world does not change base-frame results.
    spec = load_robot("panda")
    moved = spec.model_copy(update={"base_position": (1.0, -2.0, 0.5),
                                    "base_orientation": (0.0, 0.0, 0.7071068, 0.7071068)})
    q = spec.home_array
    a, b = Kinematics.for_robot(spec).ee_pose(q), Kinematics.for_robot(moved).ee_pose(q)
    np.testing.assert_allclose(a[0], b[0])
    np.testing.assert_allclose(a[1], b[1])


def test_one_instance_shared_by_threads() -> None:
    kin = Kinematics.for_robot(load_robot("panda"))
    qs = np.random.default_rng(5).uniform(kin.lower, kin.upper, size=(200, kin.dof))
    expected = [kin.ee_pose(q)[0] for q in qs]
    errors: list[float] = []

    def work() -> None:
        for q, p in zip(qs, expected, strict=True):
            errors.append(float(np.linalg.norm(kin.ee_pose(q)[0] - p)))
            kin.jacobian(q)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == 800 and max(errors) == 0.0
