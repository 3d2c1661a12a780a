"""The clear-region shortcut of the streaming check (`core/clearance.py`), with the real
Pinocchio kinematics: it may only ever settle a path that the full whole-arm check
(`first_violation`, itself checked against a brute-force pass) finds clear."""

from __future__ import annotations

import numpy as np
import pytest
from test_kinematics_collision import dense_violations, envelope

from robo_agent.core.clearance import ClearRegion, clearance
from robo_agent.core.collision import first_violation
from robo_agent.core.tools import ToolError

SHELF = {"name": "shelf", "min": [0.35, -0.2, 0.0], "max": [0.6, 0.2, 0.35]}


@pytest.mark.parametrize("name", ["panda", "xarm6"])
def test_gap_is_a_lower_bound_on_the_true_gap(name: str) -> None:
    # Wherever the gap is positive, the arm (spheres and exact hulls) is clear of every
    # zone even inflated by nearly the gap; wherever a rule is broken, the gap is <= 0.
    env = envelope(name, [SHELF])
    kin, zones = env.kinematics, env._zones
    rng = np.random.default_rng(3)
    qs = np.clip(env.spec.home_array + rng.uniform(-1.2, 1.2, (300, kin.dof)), env.lower,
                 env.upper)
    gaps = np.array([clearance(kin, zones, q) for q in qs])
    assert (gaps > 0).sum() > 50 and (gaps <= 0).sum() > 20  # both kinds are exercised
    for q, gap in zip(qs, gaps, strict=True):
        if gap > 0:
            assert not dense_violations(kin, zones, q[None], inflate=0.999 * gap)[0]
        if dense_violations(kin, zones, q[None])[0]:
            assert gap <= 0


@pytest.mark.parametrize("name", ["panda", "xarm6"])
def test_a_covered_path_is_one_the_full_check_finds_clear(name: str) -> None:
    env = envelope(name, [SHELF])
    kin, zones = env.kinematics, env._zones
    region = ClearRegion(kin, zones)
    rng = np.random.default_rng(5)
    covered = refused_nearby = 0
    for _ in range(200):
        center = np.clip(env.spec.home_array + rng.uniform(-1.0, 1.0, kin.dof), env.lower,
                         env.upper)
        gap = region.move_to(center)
        for _ in range(5):
            # paths from a bit inside to a bit outside the region's reach
            scale = rng.uniform(0.2, 2.0) * max(gap, 0.01)
            q0 = center + rng.uniform(-1, 1, kin.dof) * scale / kin.sweep_bound.sum()
            q1 = q0 + rng.uniform(-1, 1, kin.dof) * scale / kin.sweep_bound.sum()
            if region.covers(q0, q1):
                covered += 1
                assert first_violation(kin, zones, q0, q1) is None
                assert not dense_violations(kin, zones, np.linspace(q0, q1, 50)).any()
            elif first_violation(kin, zones, q0, q1) is not None:
                refused_nearby += 1
    assert covered > 200 and refused_nearby > 0  # paths near zones are among them


def test_no_region_where_a_sphere_is_in_a_zone() -> None:
    env = envelope("panda", [SHELF])
    region = ClearRegion(env.kinematics, env._zones)
    assert not region.covers(env.spec.home_array, env.spec.home_array)  # nothing measured
    # the elbow inside a keep-out box: gap <= 0, and nothing is covered
    q = env.spec.home_array
    elbow = env.kinematics.link_positions(q)["panda_link4"]
    box = {"name": "around_elbow", "min": (elbow - 0.02).tolist(), "max": (elbow + 0.02).tolist()}
    env = envelope("panda", [box])
    region = ClearRegion(env.kinematics, env._zones)
    assert region.move_to(q) <= 0
    assert not region.covers(q, q)


def test_streaming_into_a_box_is_refused_exactly_as_without_the_shortcut() -> None:
    # A policy that drives the arm straight at a keep-out box, one small step a tick:
    # the envelope with the shortcut refuses at the same tick as the full check alone.
    spec_home = envelope("panda").spec.home_array
    goal = spec_home.copy()
    goal[0] += 2.5  # swing about the vertical axis into a box where the elbow will be
    kin = envelope("panda").kinematics
    elbow = kin.link_positions(spec_home + 0.6 * (goal - spec_home))["panda_link4"]
    box = {"name": "shelf", "min": (elbow - 0.03).tolist(), "max": (elbow + 0.03).tolist()}
    env = envelope("panda", [box])
    q, refused_at, covered = spec_home, None, 0
    for tick in range(400):
        target = q + np.clip(goal - q, -0.004, 0.004)
        full = first_violation(env.kinematics, env._zones, q, target)
        was_covered = env._clear.covers(q, target)
        covered += was_covered
        try:
            out = env.check_stream_command("policy", q, target, dt=0.01)
        except ToolError as err:
            assert full is not None and "shelf" in err.message
            refused_at = tick
            break
        assert full is None and np.allclose(out, target)  # not clipped: the same path
        q = out
    assert refused_at is not None and covered > 20
