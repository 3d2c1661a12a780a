"""A clear region in joint space: the streaming check's shortcut for small steps.

At a configuration `q_c` where every sphere of the arm keeps a gap of at least `d` (m)
to every zone it must not enter (the workspace box's faces, the table, each keep-out
box it is checked against), no sphere centre can reach a zone while it moves less
than `d`. Along a straight joint path a centre moves at most
`travel(a, b) = sum_j sweep_bound_j * |b_j - a_j|` (the bound `first_violation` samples
by), so every configuration `q` with `travel(q_c, q) < d` is clear, and so is every
straight path between two such configurations: `travel(q_c, .)` is convex, so its
largest value on a segment is at one of the ends.

A policy runner's commands move the arm a few millimetres a tick; once a tick has found
the gap around one configuration, the following ticks' paths usually lie within it and
are settled by one sum per end instead of the sampled whole-arm check
(`bench/kinematics.py` has the figures). Spheres only: a sphere across a face whose
link's exact hull is not gives no gap (`clearance` <= 0), and the full check decides.
"""

from __future__ import annotations

import numpy as np

from robo_agent.core.collision import ArmGeometry, Zones, sphere_centers


def clearance(geometry: ArmGeometry, zones: Zones, q: np.ndarray) -> float:
    """The smallest gap (m) between a sphere and a zone it must stay out of, at `q`:
    positive when every sphere is clear, <= 0 when one touches or crosses a zone."""
    c = sphere_centers(geometry, np.asarray(q, dtype=np.float64)[None])[0]  # (N, 3)
    r = geometry.sphere_radii
    inside = np.minimum(c - zones.ws_min, zones.ws_max - c).min(axis=1) - r
    gap = float(inside.min())
    if len(zones.names):
        mask = zones.checked(len(r), geometry.ee_sphere)  # (N, Z)
        # Distance from each centre to each box (0 inside): per-axis excess clipped at 0.
        excess = np.maximum(np.abs(c[:, None, :] - zones.ko_mid) - zones.ko_half, 0.0)
        dist = np.sqrt(np.einsum("nzk,nzk->nz", excess, excess)) - r[:, None]
        gap = min(gap, float(dist[mask].min(initial=np.inf)))
    return gap


class ClearRegion:
    """The last configuration whose gap was measured, and that gap (see the module)."""

    def __init__(self, geometry: ArmGeometry, zones: Zones) -> None:
        self.geometry, self.zones = geometry, zones
        self._bound = np.asarray(geometry.sweep_bound, dtype=np.float64)
        # (centre, gap), replaced as one object: callers on several threads never see a
        # centre with another centre's gap
        self.region: tuple[np.ndarray, float] | None = None

    def covers(self, q0: np.ndarray, q1: np.ndarray) -> bool:
        """Whether the straight path q0 -> q1 lies where the arm is provably clear."""
        region = self.region
        if region is None or region[1] <= 0.0:
            return False
        c, gap = region
        if c.shape != np.shape(q0) or c.shape != np.shape(q1):
            return False
        b = self._bound if self._bound.ndim else np.full(c.shape, float(self._bound))
        far = max(float(np.dot(b, np.abs(q0 - c))), float(np.dot(b, np.abs(q1 - c))))
        return far < gap

    def move_to(self, q: np.ndarray) -> float:
        """Measure the gap around `q` (one forward-kinematics pass), centre on it and
        return it."""
        center = np.array(q, dtype=np.float64)
        gap = clearance(self.geometry, self.zones, center)
        self.region = (center, gap)
        return gap
