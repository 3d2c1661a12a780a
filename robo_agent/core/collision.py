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
    def sweep_bound(self) -> float:
        """Largest travel (m) of any sphere centre per rad of joint motion (L1 norm)."""

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


def path_samples(q0: np.ndarray, q1: np.ndarray, sweep_bound: float
                 ) -> tuple[np.ndarray, np.ndarray, float]:
    """Samples of the straight joint path q0 -> q1 (start included), their fractions, and
    the inflation (m) that makes checking the samples cover the swept volume."""
    travel = sweep_bound * float(np.sum(np.abs(q1 - q0)))
    n = int(np.clip(np.ceil(travel / (2.0 * SWEEP_TOLERANCE)), 1, MAX_SWEEP_SAMPLES))
    s = np.linspace(0.0, 1.0, n + 1)
    return q0 + s[:, None] * (q1 - q0), s, travel / (2.0 * n)


_FACES = [(axis, sign) for axis in range(3) for sign in (-1.0, 1.0)]  # floor = (2, -1.0)


def _workspace_faces(geometry: ArmGeometry, zones: Zones, qs: np.ndarray, c: np.ndarray,
                     r: np.ndarray, inflate: float) -> np.ndarray:
    """(M, N, 6) whether each sphere's link crosses each workspace face at each sample."""
    limit = np.concatenate([[-zones.ws_min[a] if sg < 0 else zones.ws_max[a]]
                            for a, sg in _FACES])  # sign * coordinate <= limit
    signed = np.stack([sg * c[:, :, a] for a, sg in _FACES], axis=2)  # (M, N, 6)
    bad = signed + r[None, :, None] > limit
    ms, ns, fs = np.nonzero(bad)
    if ms.size:  # narrow phase: the exact hull of each (link, face) flagged by a sphere
        links = geometry.sphere_links
        by_link = np.array([links.index(n) for n in links])[ns]  # first sphere of the link
        for lk, f in {(int(i), int(j)) for i, j in zip(by_link, fs, strict=True)}:
            a, sg = _FACES[f]
            d = np.zeros(3)
            d[a] = sg
            rows = np.unique(ms[(by_link == lk) & (fs == f)])
            exact = geometry.link_support(qs[rows], links[lk], d) + inflate > limit[f]
            same = np.array([n == links[lk] for n in links])
            bad[np.ix_(rows, np.flatnonzero(same), [f])] = exact[:, None, None]
    return bad


def first_violation(geometry: ArmGeometry, zones: Zones, q0: np.ndarray, q1: np.ndarray
                    ) -> Violation | None:
    """Check the whole arm along the joint path q0 -> q1; None when it stays clear."""
    qs, s, inflate = path_samples(q0, q1, geometry.sweep_bound)
    c = geometry.sphere_centers(qs)  # (M, N, 3)
    n_sph = c.shape[1]
    r = geometry.sphere_radii + inflate  # (N,)
    faces = _workspace_faces(geometry, zones, qs, c, r, inflate)
    below = faces[:, :, 4]  # the floor: -z <= -min_z
    outside = np.any(np.delete(faces, 4, axis=2), axis=2)
    bad = [below, outside & ~below]
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
    escaping = np.logical_and.accumulate(v, axis=0)
    hit = v & ~escaping
    rows = np.flatnonzero(hit.any(axis=1))
    if rows.size == 0:
        return None
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
        return Violation(float(s[m]), link, "table", "workspace.table", p,
                         f"{what} goes below the table plane z = {zones.ws_min[2]} m "
                         f"(floor of the workspace box)")
    if kind == 1:
        return Violation(float(s[m]), link, "workspace", "workspace", p,
                         f"{what} is outside the workspace box min {zones.ws_min.tolist()} "
                         f"max {zones.ws_max.tolist()}")
    assert zone_i is not None
    name = zones.names[zone_i]
    return Violation(float(s[m]), link, name, f"keep_out.{name}", p,
                     f"{what} is inside keep-out box '{name}' (min "
                     f"{zones.ko_min[zone_i].tolist()}, max {zones.ko_max[zone_i].tolist()})")
