"""Observation assembly: the one function the Gymnasium env and the policy runner both call.

A task's observation is a dict of `observation` (the flat float32 vector laid out as the
env's `observation_layout`), `achieved_goal` and `desired_goal` (3-D positions in the
robot base frame). The env fills the named entries from PyBullet; the policy runner fills
them from `/joint_states` (matched by name), forward kinematics and the goal. Both hand
them to `assemble_observation`, so the two paths cannot drift apart (parity by
construction; `tests/unit/test_observation.py` checks it against recorded sim states).

Pure: numpy only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from robo_agent.core.artifact import PolicySpec
from robo_agent.core.robot_spec import RobotSpec

#: entries a robot's own sensors and kinematics give (no perception needed)
ROBOT_ENTRIES = ("joint_positions", "joint_velocities", "ee_position", "ee_velocity",
                 "gripper_width")
#: entries that need object poses (perception on a real robot, the scene in simulation)
OBJECT_ENTRIES = ("object_position", "object_orientation", "object_velocity",
                  "object_angular_velocity")
#: the dict keys a policy's `inputs` may name
DICT_KEYS = ("observation", "achieved_goal", "desired_goal")


class ObservationError(ValueError):
    """An observation entry is missing, has the wrong size or cannot be built."""


Layout = Sequence[tuple[str, int]] | Sequence[Sequence[Any]]


def achieved_key(layout: Layout) -> str:
    """What the task compares with the goal: the object when there is one, else the EE."""
    return "object_position" if any(str(e[0]) == "object_position" for e in layout) \
        else "ee_position"


def assemble_observation(layout: Layout, values: Mapping[str, Any],
                         goal: Any) -> dict[str, np.ndarray]:
    """The goal-conditioned observation dict from named entries.

    `values` maps each layout name to its numbers (float64 or anything array-like); the
    vector is concatenated in layout order and cast once to float32, as the env does.
    """
    parts = []
    for name, size in ((str(e[0]), int(e[1])) for e in layout):
        if name not in values:
            raise ObservationError(f"observation entry '{name}' was not provided")
        v = np.asarray(values[name], dtype=np.float64).reshape(-1)
        if v.size != size:
            raise ObservationError(f"observation entry '{name}' has {v.size} values, "
                                   f"layout says {size}")
        parts.append(v)
    vec = np.concatenate(parts).astype(np.float32)
    achieved = np.asarray(values[achieved_key(layout)], dtype=np.float64)
    return {
        "observation": vec,
        "achieved_goal": achieved.astype(np.float32),
        "desired_goal": np.asarray(goal, dtype=np.float64).reshape(3).astype(np.float32),
    }


def spec_layout(spec: PolicySpec) -> list[tuple[str, int]]:
    """The artifact's observation layout as (name, size) pairs (ArtifactError-free)."""
    layout = spec.observation_layout
    if layout is None and spec.deployment:
        layout = spec.deployment.get("observation_layout")
    if not layout:
        raise ObservationError("policy.json field observation_layout is empty: the runner "
                               "cannot tell which entries to build")
    try:
        return [(str(n), int(s)) for n, s in layout]
    except (TypeError, ValueError):
        raise ObservationError(f"policy.json field observation_layout is malformed: "
                               f"{layout!r}") from None


def compatibility_problems(spec: PolicySpec, robot: RobotSpec,
                           objects_available: bool = False) -> list[str]:
    """Why `spec` cannot run on `robot` (empty when it can). Each names the field."""
    problems = []
    if spec.robot != robot.name:
        problems.append(f"field robot is '{spec.robot}', the running robot is '{robot.name}'")
    if sorted(spec.joint_names) != sorted(robot.joint_names):
        missing = sorted(set(spec.joint_names) - set(robot.joint_names))
        extra = sorted(set(robot.joint_names) - set(spec.joint_names))
        problems.append(f"field joint_names differs from {robot.name}'s joints (policy only: "
                        f"{missing}; robot only: {extra})")
    if spec.action_mode != "joint_position_delta":
        problems.append(f"field action_mode '{spec.action_mode}': the robot's position and "
                        "trajectory controllers take only joint_position_delta")
    try:
        layout = spec_layout(spec)
    except ObservationError as err:
        return [*problems, str(err)]
    for name, size in layout:
        if name in OBJECT_ENTRIES and not objects_available:
            problems.append(f"field observation_layout entry '{name}' needs object poses and "
                            "no object pose source is configured")
        elif name == "gripper_width" and robot.gripper is None:
            problems.append(f"field observation_layout entry '{name}': {robot.name} has no "
                            "gripper")
        elif name not in ROBOT_ENTRIES and name not in OBJECT_ENTRIES:
            problems.append(f"field observation_layout entry '{name}' is not one the runner "
                            f"can build (known: {', '.join(ROBOT_ENTRIES + OBJECT_ENTRIES)})")
        elif name in ("joint_positions", "joint_velocities") and size != robot.dof:
            problems.append(f"field observation_layout entry '{name}' has size {size}, the "
                            f"robot has {robot.dof} joints")
    if spec.action_dim not in (robot.dof, robot.dof + 1):
        problems.append(f"field action_dim {spec.action_dim} fits neither {robot.dof} joints "
                        "nor joints + gripper")
    for seg in spec.inputs:
        if seg.key not in DICT_KEYS:
            problems.append(f"field inputs key '{seg.key}' is not one of {list(DICT_KEYS)}")
    return problems


def joint_delta_scale(spec: PolicySpec) -> np.ndarray:
    """Radians the joint reference moves per control step at action +1 (arm joints)."""
    dof = len(spec.joint_names)
    return np.asarray(spec.action_scale[:dof], dtype=np.float64)


def trained_action_scale(spec: PolicySpec, robot: RobotSpec) -> float:
    """The env's `action_scale` (fraction of the URDF velocity limits) the policy was
    trained with, recovered from its per-joint step: to rebuild that env exactly."""
    index = {n: i for i, n in enumerate(robot.joint_names)}
    vmax = robot.velocity_limits[[index[n] for n in spec.joint_names]]
    return float(np.median(joint_delta_scale(spec) / (vmax * spec.control_dt)))


def success_threshold(spec: PolicySpec, default: float = 0.05) -> float:
    """The task's success radius (m) recorded by the env, or the default."""
    dep = spec.deployment or {}
    return float(dep.get("distance_threshold", default))
