"""Goal-conditioned rewards (numpy only): importable for HER relabelling without any sim."""

from __future__ import annotations

import numpy as np

DISTANCE_THRESHOLD = 0.05  # m: success radius, as in panda-gym and Fetch


def goal_distance(achieved: np.ndarray, desired: np.ndarray) -> np.ndarray:
    """Euclidean distance along the last axis (batched); one formula for single goals and
    batches, so a step's reward and a relabelled one agree to the bit."""
    diff = np.asarray(achieved) - np.asarray(desired)
    return np.sqrt(np.square(diff).sum(axis=-1))


def compute_reward(
    achieved_goal: np.ndarray, desired_goal: np.ndarray, reward_type: str = "sparse",
    distance_threshold: float = DISTANCE_THRESHOLD,
) -> np.ndarray | np.float32:
    """Reward for (batches of) goals, usable for HER relabelling without an env.

    sparse: 0 when within `distance_threshold`, else -1; dense: minus the distance.
    """
    d = goal_distance(achieved_goal, desired_goal)
    if reward_type == "sparse":
        r = -(d > distance_threshold).astype(np.float32)
    elif reward_type == "dense":
        r = -d.astype(np.float32)
    else:
        raise ValueError(f"reward_type must be 'sparse' or 'dense', got {reward_type!r}")
    return r if r.ndim else np.float32(r)
