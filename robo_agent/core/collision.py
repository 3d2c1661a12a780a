"""Whole-arm collision checks against the workspace box, keep-out boxes and the table plane.

The arm is a set of spheres that contain every moving link's collision geometry (fitted by
`robo_agent.kinematics`, which also tests that they do). A joint-space path is checked at
samples close enough that no point of the arm moves more than `2 * SWEEP_TOLERANCE`
between two of them, and everything is inflated by half that travel, so the check covers
the whole swept volume, not just the samples. Pure numpy: the envelope gets the geometry
through the `ArmGeometry` protocol, so core does not import pinocchio.

Zones: every link must stay wholly inside the workspace box (its floor is the table plane)
and must not touch any keep-out box. Spheres are the broad phase; where a sphere crosses
a face of the workspace box, the link's exact collision hull decides (`link_support`), so
a gripper may close around an object on the table without its spheres' slack refusing
it. Keep-out boxes are checked against the spheres (conservative). A keep-out box with
`applies_to: end_effector` (the built-in `base_column`, which the arm's own lower links
always occupy) is checked against the end-effector point only. A sphere already in a
forbidden zone at the start of a path may leave it (it is exempt from that zone until it
first leaves), never enter one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from robo_agent.core.safety_policy import HardLimits

SWEEP_TOLERANCE = 0.01  # m: spheres are inflated by this much (or the actual half-gap)
# A first pass at 5 cm settles most paths with a fifth of the samples: if nothing starts
# in a zone and the inflated spheres stay clear, the swept volume is clear (sound).
COARSE_TOLERANCE = 0.05
MAX_SWEEP_SAMPLES = 256  # beyond this the inflation grows instead of the sample count


class ArmGeometry(Protocol):
    """What the envelope needs from the robot's kinematics (`robo_agent.kinematics`)."""

    @property
    def sphere_links(self) -> tuple[str, ...]:
        """The link each sphere belongs to (for refusal messages)."""

    @property
    def sphere_radii(self) -> np.ndarray:
        """(N,) sphere radii, m."""

    @property
    def ee_sphere(self) -> int:
        """Index of the zero-radius sphere at the end-effector point."""

    @property
    def sweep_bound(self) -> np.ndarray | float:
        """Per joint (or one for all), the most any sphere centre travels per rad of it."""

    def sphere_centers(self, qs: np.ndarray) -> np.ndarray:
        """(M, dof) joint configurations -> (M, N, 3) sphere centres in the base frame."""

    def link_support(self, qs: np.ndarray, link: str, direction: np.ndarray) -> np.ndarray:
        """(M,) largest `direction . p` over the link's collision hull (base frame)."""


@dataclass(frozen=True)
class Violation:
    """The first place along a path where a sphere is in a forbidden zone."""

    fraction: float  # of the path, 0 = start
    link: str
    zone: str  # "workspace", "table" or a keep-out box name
    limit: str  # audit limit name: workspace / table / keep_out.<name>
    point: np.ndarray  # sphere centre, base frame
    message: str


class Zones:
    """The hard limits' boxes as arrays, for vectorised checks."""

    def __init__(self, limits: HardLimits) -> None:
        ws = limits.workspace
        self.ws_name = ws.name
        self.ws_min = np.array(ws.min, dtype=np.float64)
        self.ws_max = np.array(ws.max, dtype=np.float64)
        boxes = limits.keep_out
        self.names = [b.name for b in boxes]
        self.ko_min = np.array([b.min for b in boxes], dtype=np.float64).reshape(-1, 3)
        self.ko_max = np.array([b.max for b in boxes], dtype=np.float64).reshape(-1, 3)
        self.ee_only = np.array([b.applies_to == "end_effector" for b in boxes], dtype=bool)


def path_samples(q0: np.ndarray, q1: np.ndarray, sweep_bound: np.ndarray | float,
                 tolerance: float = SWEEP_TOLERANCE) -> tuple[np.ndarray, np.ndarray, float]:
    """Samples of the straight joint path q0 -> q1 (start included), their fractions, and
    the inflation (m) that makes checking the samples cover the swept volume."""
    travel = float(np.sum(sweep_bound * np.abs(q1 - q0)))  # bound on any point's travel
    n = int(np.clip(np.ceil(travel / (2.0 * tolerance)), 1, MAX_SWEEP_SAMPLES))
    s = np.linspace(0.0, 1.0, n + 1)
    return q0 + s[:, None] * (q1 - q0), s, travel / (2.0 * n)


def _workspace_faces(geometry: ArmGeometry, zones: Zones, qs: np.ndarray, c: np.ndarray,
                     r: np.ndarray, inflate: float) -> tuple[np.ndarray, np.ndarray]:
    """(M, N) whether each sphere's link goes below the table, and whether it crosses any
    other face of the workspace box, at each sample."""
    r3 = r[None, :, None]
    low = c - r3 < zones.ws_min  # (M, N, 3): axis faces at min
    high = c + r3 > zones.ws_max
    if low.any() or high.any():  # narrow phase: the exact hull of each flagged link, face
        links = geometry.sphere_links
        first = np.array([links.index(n) for n in links])  # a link's first sphere
        for side, flags in ((-1.0, low), (1.0, high)):
            ms, ns, axes = np.nonzero(flags)
            for lk, a in {(int(first[n]), int(x)) for n, x in zip(ns, axes, strict=True)}:
                d = np.zeros(3)
                d[a] = side
                rows = np.unique(ms[(first[ns] == lk) & (axes == a)])
                limit = -zones.ws_min[a] if side < 0 else zones.ws_max[a]
                exact = geometry.link_support(qs[rows], links[lk], d) + inflate > limit
                same = first == lk
                same[geometry.ee_sphere] = False  # the end-effector point is exact already
                flags[np.ix_(rows, np.flatnonzero(same), [a])] = exact[:, None, None]
    below = low[:, :, 2]
    return below, (low[:, :, :2].any(axis=2) | high.any(axis=2)) & ~below


def first_violation(geometry: ArmGeometry, zones: Zones, q0: np.ndarray, q1: np.ndarray
                    ) -> Violation | None:
    """Check the whole arm along the joint path q0 -> q1; None when it stays clear."""
    found, started_clear = _scan(geometry, zones, q0, q1, COARSE_TOLERANCE)
    if found is None and started_clear:
        return None
    return _scan(geometry, zones, q0, q1, SWEEP_TOLERANCE)[0]


def _scan(geometry: ArmGeometry, zones: Zones, q0: np.ndarray, q1: np.ndarray,
          tolerance: float) -> tuple[Violation | None, bool]:
    """The first violation at this sampling, and whether nothing started in a zone."""
    qs, s, inflate = path_samples(q0, q1, geometry.sweep_bound, tolerance)
    c = geometry.sphere_centers(qs)  # (M, N, 3)
    n_sph = c.shape[1]
    r = geometry.sphere_radii + inflate  # (N,)
    below, outside = _workspace_faces(geometry, zones, qs, c, r, inflate)
    bad = [below, outside]
    if zones.names:
        # Distance from each centre to each box (0 inside): (M, N, Z).
        gap = np.maximum(zones.ko_min - c[:, :, None, :], 0.0) + np.maximum(
            c[:, :, None, :] - zones.ko_max, 0.0)
        touch = np.einsum("mnzk,mnzk->mnz", gap, gap) <= (r * r)[None, :, None]
        arm_mask = np.ones(n_sph, dtype=bool)
        arm_mask[geometry.ee_sphere] = False
        touch[:, arm_mask[:, None] & zones.ee_only[None, :]] = False
        bad.append(touch.reshape(touch.shape[0], -1))
    v = np.concatenate(bad, axis=1)  # (M, K)
    # Exempt while still in the zone it started in; a new entry is a violation.
    started_clear = not v[0].any()
    escaping = np.logical_and.accumulate(v, axis=0)
    hit = v & ~escaping
    rows = np.flatnonzero(hit.any(axis=1))
    if rows.size == 0:
        return None, started_clear
    m = int(rows[0])
    k = int(np.flatnonzero(hit[m])[0])
    kind, idx = divmod(k, n_sph)
    zone_i = None
    if kind >= 2:
        idx, zone_i = divmod(k - 2 * n_sph, len(zones.names))
    link = geometry.sphere_links[idx]
    p = c[m, idx]
    where = "goal" if m == len(s) - 1 else f"path (at {s[m]:.0%})"
    pt = np.round(p, 3).tolist()
    what = (f"end-effector {where} {pt} m" if idx == geometry.ee_sphere
            else f"link {link} ({where}, near {pt} m)")
    if kind == 0:
        zone, limit = "table", "workspace.table"
        msg = (f"{what} goes below the table plane z = {zones.ws_min[2]} m "
               f"(floor of the workspace box)")
    elif kind == 1:
        zone, limit = "workspace", "workspace"
        msg = (f"{what} is outside the workspace box min {zones.ws_min.tolist()} "
               f"max {zones.ws_max.tolist()}")
    else:
        assert zone_i is not None
        zone = zones.names[zone_i]
        limit = f"keep_out.{zone}"
        msg = (f"{what} is inside keep-out box '{zone}' (min "
               f"{zones.ko_min[zone_i].tolist()}, max {zones.ko_max[zone_i].tolist()})")
    return Violation(float(s[m]), link, zone, limit, p, msg), started_clear
