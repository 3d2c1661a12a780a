"""Whole-arm collision checks with the real Pinocchio kinematics of every robot.

The spheres must contain each moving link's collision mesh wherever the arm is, and the
envelope must refuse a path on which any link (not only the end effector) enters a
keep-out box or goes below the table, naming the link.
"""

from __future__ import annotations

import time

import numpy as np
import pinocchio as pin
import pytest

from robo_agent.core.audit import AuditLog
from robo_agent.core.collision import Zones, first_violation
from robo_agent.core.robot_spec import load_robot
from robo_agent.core.safety import SafetyEnvelope
from robo_agent.core.safety_policy import parse_policy
from robo_agent.core.tools import ToolError
from robo_agent.kinematics import Kinematics
from robo_agent.kinematics.spheres import surface_points

ROBOTS = ["panda", "iiwa", "xarm6"]


@pytest.mark.parametrize("name", ROBOTS)
def test_spheres_contain_every_moving_links_mesh(name: str) -> None:
    kin = Kinematics.for_robot(load_robot(name))
    sm = kin.spheres
    geom = pin.buildGeomFromUrdf(kin.model, str(kin.urdf), pin.GeometryType.COLLISION,
                                 package_dirs=[str(kin.urdf.parent)])
    tris = {kin.model.frames[o.parentFrame].name: o.geometry for o in geom.geometryObjects}
    data = kin.model.createData()
    rng = np.random.default_rng(2)
    for q in [kin.home, *rng.uniform(kin.lower, kin.upper, size=(2, kin.dof))]:
        centers = kin.sphere_centers(q)[0]
        full = pin.neutral(kin.model)
        full[kin._iq] = q
        pin.forwardKinematics(kin.model, data, full)
        for link, parts in sm.link_points.items():
            for jid, pts in parts:
                # A finer surface sampling (4 mm) than the fit used, placed by pinocchio,
                # inside the spheres of its own link.
                geo = tris[link]
                n = geo.num_vertices
                tri = np.array([[t[0], t[1], t[2]] for t in
                                (geo.tri_indices(i) for i in range(geo.num_tris))])
                copies = len(pts) // n  # finger meshes: one copy per end of their range
                fine = np.concatenate([surface_points(pts[k * n:(k + 1) * n], tri, 0.004)
                                       for k in range(copies)])
                world = fine @ np.array(data.oMi[jid].rotation).T + data.oMi[jid].translation
                own = np.array([n == link for n in sm.links])
                d = np.linalg.norm(world[:, None, :] - centers[own][None], axis=2)
                assert np.all(np.any(d <= sm.radii[own][None] + 1e-9, axis=1)), link


@pytest.mark.parametrize("name", ROBOTS)
def test_sphere_centres_follow_pinocchio(name: str) -> None:
    kin = Kinematics.for_robot(load_robot(name))
    qs = np.random.default_rng(4).uniform(kin.lower, kin.upper, size=(20, kin.dof))
    batch = kin.sphere_centers(qs)
    for q, c in zip(qs, batch, strict=True):
        np.testing.assert_allclose(c[kin.ee_sphere], kin.ee_pose(q)[0], atol=1e-12)
    assert kin.sphere_links[kin.ee_sphere] == kin.spec.ee_link
    bound = kin.sweep_bound  # m per rad of each joint: the base joint moves the most
    assert bound.shape == (kin.dof,) and np.all(bound > 0.0) and 0.5 < bound[0] < 2.0
    # link_support is exact: the extreme mesh vertex placed by pinocchio, along any axis.
    data = kin.model.createData()
    for q in qs[:3]:
        full = pin.neutral(kin.model)
        full[kin._iq] = q
        pin.forwardKinematics(kin.model, data, full)
        for link, parts in kin.spheres.link_points.items():
            world = np.concatenate([pts @ np.array(data.oMi[j].rotation).T
                                    + data.oMi[j].translation for j, pts in parts])
            for d in np.vstack([np.eye(3), -np.eye(3)]):
                assert kin.link_support(q, link, d)[0] == pytest.approx(
                    float(np.max(world @ d)), abs=1e-9)


def envelope(name: str, keep_out: list[dict] | None = None) -> SafetyEnvelope:
    spec = load_robot(name)
    policy = parse_policy({"hard_limits": {"keep_out": keep_out or []}})
    return SafetyEnvelope(spec, policy, AuditLog(None), kinematics=Kinematics.for_robot(spec))


@pytest.mark.parametrize("name", ROBOTS)
def test_home_motions_are_allowed(name: str) -> None:
    env = envelope(name)
    home = env.spec.home_array
    goal = home.copy()
    goal[0] += 0.5
    env.plan_joint_motion("move_joints", home, goal)
    assert env.check_stream_command("policy", home, home, dt=0.002) == pytest.approx(home)


def test_elbow_through_keep_out_is_refused_with_the_link_named() -> None:
    spec = load_robot("panda")
    kin = Kinematics.for_robot(spec)
    start = spec.home_array
    goal = start.copy()
    goal[0] += 1.2  # swing about the vertical axis
    mid = 0.5 * (start + goal)
    elbow = kin.link_positions(mid)["panda_link4"]
    box = {"name": "shelf", "min": (elbow - 0.03).tolist(), "max": (elbow + 0.03).tolist()}
    # The end effector stays at least 15 cm from the box all along the path ...
    path = np.linspace(start, goal, 200)
    ee = np.array([kin.ee_pose(q)[0] for q in path])
    gap = np.linalg.norm(np.maximum(np.maximum(np.array(box["min"]) - ee, 0.0),
                                    ee - np.array(box["max"])), axis=1)
    assert gap.min() > 0.15
    # ... so an end-effector-only check lets it through, the whole-arm check does not.
    env = envelope("panda", [box])
    with pytest.raises(ToolError) as err:
        env.plan_joint_motion("move_joints", start, goal)
    msg = err.value.message
    assert "keep-out box 'shelf'" in msg and ("panda_link4" in msg or "panda_link3" in msg)
    assert env.audit.records[-1]["limit"] == "keep_out.shelf"
    assert env.audit.records[-1]["details"]["link"] in ("panda_link3", "panda_link4")
    # The same zone refuses a streamed command that moves the elbow into it.
    with pytest.raises(ToolError, match="shelf"):
        q = start
        for _ in range(40):
            q = env.check_stream_command("policy", q, goal, dt=0.05)
    # Without the box the motion is allowed.
    envelope("panda").plan_joint_motion("move_joints", start, goal)


def test_link_below_the_table_is_refused_while_the_ee_stays_above() -> None:
    spec = load_robot("panda")
    kin = Kinematics.for_robot(spec)
    qs = np.random.default_rng(0).uniform(spec.lower + 0.1, spec.upper - 0.1, (5000, spec.dof))
    # Configurations whose end effector is high but some other link's collision mesh dips
    # 2 cm below z = 0 (exactly, on its hull) ...
    down = np.array([0.0, 0.0, -1.0])
    lowest = np.min([-kin.link_support(qs, link, down) for link in set(kin.sphere_links)
                     if link != spec.ee_link], axis=0)
    ee_z = kin.sphere_centers(qs)[:, kin.ee_sphere, 2]
    candidates = qs[(ee_z > 0.2) & (lowest < -0.02)]
    assert len(candidates) > 10
    env = envelope("panda")
    refusals = []
    for q in candidates:
        with pytest.raises(ToolError) as err:
            env.plan_joint_motion("move_joints", spec.home_array, q)
        refusals.append(err.value.message)
    # ... are all refused, at least some for a link below the table (others may meet the
    # base column or the workspace first on the way there).
    table = [m for m in refusals if "below the table plane z = 0.0 m" in m]
    assert table and all(m.startswith("link panda_") for m in table)


def test_stream_check_cost() -> None:
    env = envelope("panda", [{"name": "shelf", "min": [0.5, 0.3, 0.0], "max": [0.7, 0.5, 0.4]}])
    q = env.spec.home_array
    times = []
    for i in range(300):
        t0 = time.perf_counter()
        env.check_stream_command("policy", q, q + 0.001 * np.sin(i), dt=0.002)
        times.append(time.perf_counter() - t0)
    # Typically ~0.1 ms here; a loose bound on a shared 2-core machine (bench/kinematics.py
    # measures it properly).
    assert float(np.median(times)) < 1e-3


def dense_violations(kin: Kinematics, zones: Zones, qs: np.ndarray, inflate: float = 0.0
                     ) -> np.ndarray:
    """(M,) whether any zone rule is broken at each configuration, by brute force: every
    link's exact hull against the six workspace faces, the spheres against the keep-out
    boxes (the end-effector point against `end_effector` boxes)."""
    bad = np.zeros(len(qs), dtype=bool)
    for link in set(kin.sphere_links):
        for a in range(3):
            d = np.zeros(3)
            d[a] = 1.0
            bad |= kin.link_support(qs, link, d) + inflate > zones.ws_max[a]
            bad |= kin.link_support(qs, link, -d) + inflate > -zones.ws_min[a]
    c = kin.sphere_centers(qs)
    for lo, hi, ee_only in zip(zones.ko_min, zones.ko_max, zones.ee_only, strict=True):
        idx = [kin.ee_sphere] if ee_only else slice(None)
        gap = np.linalg.norm(np.maximum(np.maximum(lo - c[:, idx], 0.0), c[:, idx] - hi), axis=2)
        bad |= np.any(gap <= kin.sphere_radii[idx] + inflate, axis=1)
    return bad


# 150 random paths, each also checked densely (1-4 s per robot): the xArm6 stays in the
# quick loop, the Panda and the iiwa are `slow`.
@pytest.mark.parametrize("name", [pytest.param("panda", marks=pytest.mark.slow),
                                  pytest.param("iiwa", marks=pytest.mark.slow), "xarm6"])
def test_refined_check_misses_nothing_a_dense_check_finds(name: str) -> None:
    # The coarse pass refines only around its flagged samples, and only up to the first
    # one that breaks a rule outright: any path on which a 400-sample brute-force check
    # finds a broken rule is still refused.
    env = envelope(name, [{"name": "shelf", "min": [0.35, -0.2, 0.0], "max": [0.6, 0.2, 0.35]}])
    kin, zones = env.kinematics, env._zones
    rng = np.random.default_rng(11)
    checked = broken = 0
    for _ in range(150):
        q0 = np.clip(env.spec.home_array + rng.uniform(-0.5, 0.5, kin.dof), env.lower, env.upper)
        q1 = np.clip(q0 + rng.uniform(-1.0, 1.0, kin.dof) * rng.uniform(0.2, 1.2), env.lower,
                     env.upper)
        if dense_violations(kin, zones, q0[None], inflate=0.06)[0]:
            continue  # starts in or near a zone: the leaving rule applies (tested elsewhere)
        dense = dense_violations(kin, zones, np.linspace(q0, q1, 400))
        found = first_violation(kin, zones, q0, q1)
        checked += 1
        if dense.any():
            broken += 1
            assert found is not None, (q0.tolist(), q1.tolist())
    assert checked > 40 and broken > 5


@pytest.mark.parametrize("name", ROBOTS)
def test_sweep_bound_holds(name: str) -> None:
    # Per joint, no sphere centre moves faster than the bound per rad of it (the whole
    # swept-volume argument rests on it), measured by finite differences.
    kin = Kinematics.for_robot(load_robot(name))
    qs = np.random.default_rng(8).uniform(kin.lower, kin.upper, (1000, kin.dof))
    c0 = kin.sphere_centers(qs)
    for j in range(kin.dof):
        dq = np.zeros(kin.dof)
        dq[j] = 1e-6
        speed = np.linalg.norm(kin.sphere_centers(qs + dq) - c0, axis=2).max() / 1e-6
        assert speed <= kin.sweep_bound[j] + 1e-6
        assert speed > 0.5 * kin.sweep_bound[j]  # and it is not wildly loose
