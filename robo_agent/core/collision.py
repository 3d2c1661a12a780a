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

Cost (a 2 s trajectory must be checked well under 1 ms, in numpy, where the number of
calls matters more than the arithmetic): one FK pass per batch of samples serves the
centres and the exact hulls (`ArmGeometry.sphere_batch`); a per-sphere broad phase over
the whole batch leaves only the spheres that come near a face or a box to the per-sample
checks; a coarse pass settles most paths, and only its flagged stretches are refined.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

import numpy as np

from robo_agent.core.safety_policy import HardLimits

SWEEP_TOLERANCE = 0.01  # m: spheres are inflated by this much (or the actual half-gap)
# A first pass at 5 cm settles most paths with a fifth of the samples: if nothing starts
# in a zone and the inflated spheres stay clear, the swept volume is clear (sound).
COARSE_TOLERANCE = 0.05
MAX_SWEEP_SAMPLES = 256  # beyond this the inflation grows instead of the sample count


class ArmGeometry(Protocol):
    """What the envelope needs from the robot's kinematics (`robo_agent.kinematics`).

    A geometry may also offer `sphere_batch(qs)` (see `SphereBatch`): one FK pass that
    serves both the centres and the exact supports, which is what keeps a path check
    under a millisecond; without it the two methods below are called separately."""

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


class SphereBatch(Protocol):
    """The arm placed at a batch of configurations (`ArmGeometry.sphere_batch`)."""

    @property
    def centers(self) -> np.ndarray:
        """(M, N, 3) sphere centres, base frame."""

    def support(self, rows: np.ndarray, link: str, direction: np.ndarray) -> np.ndarray:
        """(len(rows),) largest `direction . p` over the link's hull at those samples."""

    def supports(self, rows: np.ndarray, links: list[str], direction: np.ndarray
                 ) -> np.ndarray:
        """(len(rows), len(links)): `support` of each of `links` at those samples."""


class _SeparateCalls:
    """`SphereBatch` from the two `ArmGeometry` methods, for a geometry without batches."""

    def __init__(self, geometry: ArmGeometry, qs: np.ndarray) -> None:
        self._geometry, self._qs = geometry, qs
        self.centers = geometry.sphere_centers(qs)

    def support(self, rows: np.ndarray, link: str, direction: np.ndarray) -> np.ndarray:
        return self._geometry.link_support(self._qs[rows], link, direction)

    def supports(self, rows: np.ndarray, links: list[str], direction: np.ndarray
                 ) -> np.ndarray:
        return np.stack([self.support(rows, n, direction) for n in links], axis=1)


def _nz(flags: np.ndarray) -> np.ndarray:
    """Indices of the True entries of a 1-D array (`np.flatnonzero` without its ravel
    call: ~10 of these per pass add up)."""
    return flags.nonzero()[0]


def _batch(geometry: ArmGeometry, qs: np.ndarray) -> SphereBatch:
    make = getattr(geometry, "sphere_batch", None)
    return make(qs) if make is not None else _SeparateCalls(geometry, qs)


def sphere_centers(geometry: ArmGeometry, qs: np.ndarray) -> np.ndarray:
    """(M, N, 3) sphere centres for (M, dof) configurations, base frame."""
    return _batch(geometry, qs).centers


@lru_cache(maxsize=32)
def _groups(links: tuple[str, ...]) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """The distinct links in order of first appearance, each sphere's link index (N,), and
    the (N, G) sphere-to-link membership matrix."""
    names = tuple(dict.fromkeys(links))
    group = np.array([names.index(n) for n in links], dtype=np.intp)
    return names, group, np.eye(len(names), dtype=bool)[group]


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
        self.ko_mid = 0.5 * (self.ko_min + self.ko_max)
        self.ko_half = 0.5 * (self.ko_max - self.ko_min)
        self._checked: dict[tuple[int, int], np.ndarray] = {}

    def checked(self, n_spheres: int, ee: int) -> np.ndarray:
        """(N, Z) which sphere is checked against which keep-out box: every sphere, except
        that `end_effector` boxes see only the end-effector point (built once)."""
        key = (n_spheres, ee)
        mask = self._checked.get(key)
        if mask is None:
            mask = np.ones((n_spheres, len(self.names)), dtype=bool)
            mask[:, self.ee_only] = False
            mask[ee, self.ee_only] = True
            self._checked[key] = mask
        return mask


def path_samples(q0: np.ndarray, q1: np.ndarray, sweep_bound: np.ndarray | float,
                 tolerance: float = SWEEP_TOLERANCE) -> tuple[np.ndarray, np.ndarray, float]:
    """Samples of the straight joint path q0 -> q1 (start included), their fractions, and
    the inflation (m) that makes checking the samples cover the swept volume."""
    travel = float(np.sum(sweep_bound * np.abs(q1 - q0)))  # bound on any point's travel
    n = min(max(math.ceil(travel / (2.0 * tolerance)), 1), MAX_SWEEP_SAMPLES)
    s = np.arange(n + 1) / n  # not linspace: a third of the cost, the same fractions
    return q0 + s[:, None] * (q1 - q0), s, travel / (2.0 * n)


def _workspace_faces(batch: SphereBatch, links: tuple[str, ...], ee: int, zones: Zones,
                     r: np.ndarray, inflate: float, lo: np.ndarray, hi: np.ndarray,
                     certain: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(M, N) whether each sphere's link goes below the table, and whether it crosses any
    other face of the workspace box, at each sample. `lo`, `hi` (N, 3): the box each
    sphere sweeps over the batch; only the faces and spheres it reaches are checked.
    Marks in `certain` (M,) the samples where a link's exact hull is across a face even
    without the inflation."""
    c = batch.centers
    m, n = c.shape[:2]
    below = np.zeros((m, n), dtype=bool)
    outside = np.zeros((m, n), dtype=bool)
    names, group, member = _groups(links)
    for side, reach, bound in ((-1.0, lo < zones.ws_min, zones.ws_min),
                               (1.0, hi > zones.ws_max, zones.ws_max)):
        for a in _nz(reach.any(axis=0)):  # usually just the table
            ks = _nz(reach[:, a])
            f = (c[:, ks, a] - r[ks] < bound[a]) if side < 0 else (c[:, ks, a] + r[ks]
                                                                    > bound[a])  # (M, K)
            rows = _nz(f.any(axis=1))
            if rows.size:
                # Narrow phase: the exact hulls of the links with a sphere across the
                # face, at the samples where one is, in one batched product. A link's
                # spheres then all take its exact answer; the end-effector point is exact
                # already and keeps its own.
                fr = f[rows]
                crossing = fr @ member[ks]  # (R, G)
                sel = _nz(crossing.any(axis=0))
                d = np.zeros(3)
                d[a] = side
                exact = np.zeros_like(crossing)
                sup = batch.supports(rows, [names[g] for g in sel], d)
                exact[:, sel] = (sup + inflate > side * bound[a]) & crossing[:, sel]
                certain[rows] |= (sup > side * bound[a]).any(axis=1)
                new = exact[:, group[ks]]
                own = ks == ee
                new[:, own] = fr[:, own]
                f[rows] = new
            target = below if side < 0 and a == 2 else outside
            target[:, ks] |= f
    outside &= ~below  # a sphere below the table is reported as that
    return below, outside


def _flags(geometry: ArmGeometry, zones: Zones, qs: np.ndarray, inflate: float
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(M, K) zone flags at each sample (columns: below the table per sphere, outside
    the workspace per sphere, then sphere x keep-out box), the (M, N, 3) centres, and
    (M,) whether a rule is broken at the sample itself, without the inflation."""
    batch = _batch(geometry, qs)
    c = batch.centers
    m, n = c.shape[:2]
    links, ee = geometry.sphere_links, geometry.ee_sphere
    r = geometry.sphere_radii + inflate  # (N,)
    nz = len(zones.names)
    v = np.zeros((m, n * (2 + nz)), dtype=bool)
    certain = np.zeros(m, dtype=bool)
    # Broad phase over the whole batch: the box each sphere sweeps (its centres' extent
    # grown by its radius). A sphere whose box stays inside the workspace, or clear of a
    # keep-out box, breaks that rule at no sample, so only the others (a few of the ~20,
    # as a rule) are checked sample by sample: this is most of the cost saved.
    lo = c.min(axis=0) - r[:, None]  # (N, 3)
    hi = c.max(axis=0) + r[:, None]
    v[:, :n], v[:, n:2 * n] = _workspace_faces(batch, links, ee, zones, r, inflate, lo, hi,
                                               certain)
    if nz:
        near = ((lo[:, None, :] <= zones.ko_max) & (hi[:, None, :] >= zones.ko_min)).all(
            axis=2) & zones.checked(n, ee)  # (N, Z)
        ns, zs = np.nonzero(near)
        if ns.size:
            # Distance from each centre to its box (0 inside): per-axis excess
            # |c - mid| - half, clipped at 0, in place.
            gap = c[:, ns] - zones.ko_mid[zs]  # (M, P, 3)
            np.abs(gap, out=gap)
            gap -= zones.ko_half[zs]
            np.maximum(gap, 0.0, out=gap)
            d2 = np.einsum("mpk,mpk->mp", gap, gap)
            v[:, 2 * n + ns * nz + zs] = d2 <= r[ns] ** 2
            certain |= (d2 <= geometry.sphere_radii[ns] ** 2).any(axis=1)
    return v, c, certain


def first_violation(geometry: ArmGeometry, zones: Zones, q0: np.ndarray, q1: np.ndarray
                    ) -> Violation | None:
    """Check the whole arm along the joint path q0 -> q1; None when it stays clear.

    A coarse pass (`COARSE_TOLERANCE`) first. Each of its samples, inflated by its
    half-gap, covers the swept volume of the path within half a gap of it, so where it is
    clear that stretch is clear. When nothing starts in a zone (no exemptions to track),
    only the stretches around flagged coarse samples get the fine pass, in one batch: all
    of them, or, when a coarse sample itself breaks a rule (the path is refused; only
    which violation comes first is open), those up to that sample. A path that starts in
    a zone gets the fine pass from end to end. Either way a path is refused exactly when the
    fine pass over the whole path would refuse it, except where the coarse pass already
    proved a stretch clear (`tests/unit/test_kinematics_collision.py` checks this against
    a brute-force pass).
    """
    dq = q1 - q0
    travel = float(np.sum(geometry.sweep_bound * np.abs(dq)))  # bound on any point's travel
    nc = min(max(math.ceil(travel / (2.0 * COARSE_TOLERANCE)), 1), MAX_SWEEP_SAMPLES)
    s = np.arange(nc + 1) / nc
    v, _, certain = _flags(geometry, zones, q0 + s[:, None] * dq, travel / (2.0 * nc))
    row_flagged = v.any(axis=1)
    if row_flagged[0]:
        return _scan_all(geometry, zones, q0, q1)
    flagged = _nz(row_flagged)
    if flagged.size == 0:
        return None
    nf = min(max(math.ceil(travel / (2.0 * SWEEP_TOLERANCE)), 1), MAX_SWEEP_SAMPLES)
    done = -1  # last fine sample checked
    # Up to the first coarse sample that breaks a rule outright, the fine sample next to
    # it breaks it too (it covers that configuration), so the first part always ends in
    # a refusal and the long flagged tail behind a collision is never refined. The
    # second part is there for soundness only.
    sure = _nz(certain)
    cut = int(sure[0]) if sure.size else nc
    for part in (flagged[flagged <= cut], flagged[flagged > cut]):
        if part.size == 0:
            break
        # Fine sample k covers fractions (k -/+ 0.5) / nf, coarse sample i (i -/+ 0.5) / nc:
        # keep every k whose stretch meets a flagged i's (rounded outwards: one more is
        # safe). Samples up to `done` were checked already (the ranges only grow).
        lo = np.clip(np.floor((part - 0.5) * nf / nc - 0.5), 0, nf).astype(np.intp)
        hi = np.clip(np.ceil((part + 0.5) * nf / nc + 0.5), 0, nf).astype(np.intp)
        # Union of the ranges [lo, hi]: +1 at each start, -1 after each end, running sum.
        mark = np.bincount(lo, minlength=nf + 2) - np.bincount(hi + 1, minlength=nf + 2)
        keep = _nz(np.cumsum(mark[:-1]) > 0)
        keep = keep[keep > done]
        if keep.size == 0:
            continue
        done = int(keep[-1])
        fs = keep / nf
        fv, c, _ = _flags(geometry, zones, q0 + fs[:, None] * dq, travel / (2.0 * nf))
        rows = _nz(fv.any(axis=1))
        if rows.size:
            m = int(rows[0])
            return _violation(geometry, zones, fv[m], c[m], float(fs[m]), keep[m] == nf)
    return None


def _scan_all(geometry: ArmGeometry, zones: Zones, q0: np.ndarray, q1: np.ndarray
              ) -> Violation | None:
    """The fine pass over the whole path, for a path that starts in a zone: a sphere
    may leave the zone it starts in (exempt until it first leaves), never enter one."""
    qs, s, inflate = path_samples(q0, q1, geometry.sweep_bound, SWEEP_TOLERANCE)
    v, c, _ = _flags(geometry, zones, qs, inflate)
    escaping = np.logical_and.accumulate(v, axis=0)
    hit = v & ~escaping
    rows = _nz(hit.any(axis=1))
    if rows.size == 0:
        return None
    m = int(rows[0])
    return _violation(geometry, zones, hit[m], c[m], float(s[m]), m == len(s) - 1)


def _violation(geometry: ArmGeometry, zones: Zones, hit: np.ndarray, centers: np.ndarray,
               fraction: float, goal: bool) -> Violation:
    """The refusal for the first flagged column of one sample's (K,) flags."""
    n_sph = centers.shape[0]
    k = int(_nz(hit)[0])
    kind, idx = divmod(k, n_sph)
    zone_i = None
    if kind >= 2:
        idx, zone_i = divmod(k - 2 * n_sph, len(zones.names))
    link = geometry.sphere_links[idx]
    p = np.array(centers[idx])
    where = "goal" if goal else f"path (at {fraction:.0%})"
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
    return Violation(fraction, link, zone, limit, p, msg)
