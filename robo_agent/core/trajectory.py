"""Time interpolation of JointTrajectory points, as joint_trajectory_controller does it.

Pure (numpy only) so it is tested without ROS. Segments are cubic Hermite splines when
both ends carry velocities, linear otherwise; before the first point the motion starts
from the state the trajectory was received in; after the last point it holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


class TrajectoryError(ValueError):
    """A trajectory message that a controller would reject; the message says why."""


@dataclass(frozen=True)
class Trajectory:
    """Times (s from start, increasing) and positions/velocities for every arm joint."""

    times: np.ndarray  # (n,)
    positions: np.ndarray  # (n, dof)
    velocities: np.ndarray | None  # (n, dof) or None
    start_positions: np.ndarray  # (dof,) state at t = 0
    start_velocities: np.ndarray  # (dof,)

    @property
    def duration(self) -> float:
        return float(self.times[-1])

    def sample(self, t: float) -> np.ndarray:
        """Setpoint positions at t seconds after the start."""
        if t >= self.times[-1]:
            return self.positions[-1].copy()
        k = int(np.searchsorted(self.times, t, side="right"))
        if k == 0:
            t0, q0, v0 = 0.0, self.start_positions, self.start_velocities
        else:
            t0, q0 = float(self.times[k - 1]), self.positions[k - 1]
            v0 = self.velocities[k - 1] if self.velocities is not None else None
        t1, q1 = float(self.times[k]), self.positions[k]
        v1 = self.velocities[k] if self.velocities is not None else None
        h = t1 - t0
        if h <= 0.0:
            return q1.copy()
        s = (t - t0) / h
        if v0 is None or v1 is None:
            return q0 + s * (q1 - q0)
        h00 = 2 * s**3 - 3 * s**2 + 1
        h10 = s**3 - 2 * s**2 + s
        h01 = -2 * s**3 + 3 * s**2
        h11 = s**3 - s**2
        return h00 * q0 + h10 * h * v0 + h01 * q1 + h11 * h * v1


def build_trajectory(
    arm_joints: Sequence[str],
    msg_joints: Sequence[str],
    times: Sequence[float],
    positions: Sequence[Sequence[float]],
    velocities: Sequence[Sequence[float]],
    start_positions: np.ndarray,
    start_velocities: np.ndarray,
) -> Trajectory:
    """Match joints by name and validate like joint_trajectory_controller.

    Joints omitted from the message hold their start position (partial goals allowed).
    Raises TrajectoryError for unknown/duplicate joints, wrong point sizes, non-finite
    values, or times that are negative or not strictly increasing.
    """
    index = {n: i for i, n in enumerate(arm_joints)}
    unknown = [n for n in msg_joints if n not in index]
    if unknown:
        raise TrajectoryError(f"unknown joints {unknown} (controller joints: {list(arm_joints)})")
    if len(set(msg_joints)) != len(msg_joints):
        raise TrajectoryError(f"duplicate joint names in {list(msg_joints)}")
    n, m = len(times), len(msg_joints)
    cols = [index[j] for j in msg_joints]
    t = np.asarray(times, dtype=np.float64)
    if n == 0:
        raise TrajectoryError("no points")
    if np.any(~np.isfinite(t)) or t[0] < 0 or np.any(np.diff(t) <= 0):
        raise TrajectoryError(f"time_from_start must be >= 0 and strictly increasing: {t.tolist()}")
    q = np.tile(np.asarray(start_positions, dtype=np.float64), (n, 1))
    for i, p in enumerate(positions):
        if len(p) != m:
            raise TrajectoryError(f"point {i} has {len(p)} positions for {m} joints")
        q[i, cols] = p
    v = None
    if all(len(vel) > 0 for vel in velocities) and len(velocities) == n:
        v = np.zeros((n, len(arm_joints)))
        for i, vel in enumerate(velocities):
            if len(vel) != m:
                raise TrajectoryError(f"point {i} has {len(vel)} velocities for {m} joints")
            v[i, cols] = vel
    if not np.all(np.isfinite(q)) or (v is not None and not np.all(np.isfinite(v))):
        raise TrajectoryError("non-finite position or velocity in trajectory")
    return Trajectory(t, q, v, np.asarray(start_positions, dtype=np.float64).copy(),
                      np.asarray(start_velocities, dtype=np.float64).copy())
