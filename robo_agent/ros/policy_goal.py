"""Goals for the policy runner: from a parameter or a `PoseStamped`, in the base frame."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from geometry_msgs.msg import PoseStamped


def goal_from_param(value: Any) -> np.ndarray | None:
    """`[x, y, z]` from a double-array parameter or a string ("0.5 0 0.3", "[0.5,0,0.3]");
    None when empty (the goal then comes from the goal topic)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        text = value.strip()
        try:
            items = json.loads(text) if text.startswith("[") else text.replace(",", " ").split()
            goal = np.asarray([float(v) for v in items], dtype=np.float64)
        except (ValueError, TypeError):
            raise ValueError(f"parameter 'goal' {value!r} is not three numbers") from None
    else:
        goal = np.asarray(list(value), dtype=np.float64)
    if goal.shape != (3,) or not np.all(np.isfinite(goal)):
        raise ValueError(f"parameter 'goal' must be 3 finite numbers [x, y, z] m, got {value!r}")
    return goal


def goal_from_pose(msg: PoseStamped, base_frame: str) -> np.ndarray:
    """The goal position of a PoseStamped; refused unless it is in the robot's base frame
    (no TF on the robot path: a goal in another frame would be silently wrong)."""
    frame = msg.header.frame_id
    if frame != base_frame:
        raise ValueError(f"goal is in frame '{frame or '<empty>'}', not the robot base frame "
                         f"'{base_frame}'; transform it first")
    p = msg.pose.position
    goal = np.array([p.x, p.y, p.z], dtype=np.float64)
    if not np.all(np.isfinite(goal)):
        raise ValueError(f"goal {goal.tolist()} is not finite")
    return goal
