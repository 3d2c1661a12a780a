"""Collision spheres fitted to the URDF's collision meshes, and batched FK to place them.

Each moving link's collision mesh (loaded by pinocchio/coal from the same URDF) is sampled
on its surface finer than `SAMPLE_SPACING`, cut into slabs along its principal axis, and
each slab gets the sphere around its points' box centre that contains them, plus
`SAMPLE_SPACING` (every surface point lies within one spacing of a sample, so the spheres
contain the whole surface; `tests/unit/test_kinematics_collision.py` checks this on a
finer sampling). Links fixed to the base cannot move and are not checked. Links moved by a
joint that is not an arm joint (gripper fingers) are attached to their parent with their
mesh at both ends of that joint's range, so any opening is covered.

`SphereModel.centers(qs)` places every sphere for a batch of configurations with numpy
(one product of joint transforms per joint for the whole batch), which is what makes
checking a path of a few hundred samples cost well under a millisecond.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pinocchio as pin

SAMPLE_SPACING = 0.01  # m between surface samples, and the margin added to each radius
MAX_SPHERES_PER_LINK = 6


def _skew(a: np.ndarray) -> np.ndarray:
    return np.array([[0.0, -a[2], a[1]], [a[2], 0.0, -a[0]], [-a[1], a[0], 0.0]])


def surface_points(vertices: np.ndarray, triangles: np.ndarray, spacing: float) -> np.ndarray:
    """Vertices plus a barycentric grid on every triangle, no two grid points further apart
    than `spacing` along a triangle edge."""
    out = [vertices]
    tri = vertices[triangles]  # (T, 3, 3)
    edges = np.max(np.linalg.norm(tri - np.roll(tri, 1, axis=1), axis=2), axis=1)
    for m in np.unique(np.maximum(1, np.ceil(edges / spacing)).astype(int)):
        if m < 2:
            continue
        i, j = np.meshgrid(np.arange(m + 1), np.arange(m + 1), indexing="ij")
        keep = i + j <= m
        bary = np.stack([i[keep], j[keep], m - i[keep] - j[keep]], axis=1) / m  # (B, 3)
        sel = tri[np.ceil(edges / spacing).astype(int) == m]
        out.append(np.einsum("bk,tkd->tbd", bary, sel).reshape(-1, 3))
    return np.concatenate(out)


def fit_spheres(points: np.ndarray, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """Spheres (centres (k, 3), radii (k,)) along the points' principal axis containing all
    of them, each radius grown by `margin`."""
    mean = points.mean(axis=0)
    _, _, vt = np.linalg.svd(points - mean, full_matrices=False)
    local = (points - mean) @ vt.T  # principal-axis coordinates
    t = local[:, 0]
    length = float(t.max() - t.min())
    width = 2.0 * float(np.percentile(np.linalg.norm(local[:, 1:], axis=1), 95))
    k = int(np.clip(np.ceil(length / max(width, 0.02)), 1, MAX_SPHERES_PER_LINK))
    edges = np.linspace(t.min(), t.max(), k + 1)
    slab = np.clip(np.searchsorted(edges, t, side="right") - 1, 0, k - 1)
    centers, radii = [], []
    for i in range(k):
        pts = local[slab == i]
        if len(pts) == 0:
            continue
        c = 0.5 * (pts.min(axis=0) + pts.max(axis=0))
        centers.append(c @ vt + mean)
        radii.append(float(np.max(np.linalg.norm(pts - c, axis=1))) + margin)
    return np.array(centers), np.array(radii)


@dataclass(frozen=True)
class _Joint:
    parent: int
    rot: np.ndarray  # placement in the parent joint frame
    pos: np.ndarray
    axis: np.ndarray  # unit axis in the joint frame
    revolute: bool
    arm_index: int | None  # index into the arm's q, None: held at its neutral position


class SphereModel:
    """Spheres on a pinocchio model's moving links, placed by batched numpy FK."""

    def __init__(self, model: pin.Model, urdf: Path, arm_joints: list[str], ee_frame: str,
                 base: tuple[np.ndarray, np.ndarray] | None) -> None:
        self._joints: dict[int, _Joint] = {}
        arm_ids = [model.getJointId(n) for n in arm_joints]
        for jid in range(1, model.njoints):
            jm = model.joints[jid]
            data = jm.createData()
            jm.calc(data, pin.neutral(model))
            motion = np.asarray(data.S).reshape(-1)
            revolute = bool(np.linalg.norm(motion[3:]) > 0.5)
            axis = motion[3:] if revolute else motion[:3]
            placement = model.jointPlacements[jid]
            self._joints[jid] = _Joint(
                int(model.parents[jid]), np.array(placement.rotation),
                np.array(placement.translation), axis / np.linalg.norm(axis), revolute,
                arm_ids.index(jid) if jid in arm_ids else None)
        self._link_joint: dict[str, int] = {}
        geom = pin.buildGeomFromUrdf(model, str(urdf), pin.GeometryType.COLLISION,
                                     package_dirs=[str(urdf.parent)])
        groups: dict[int, list[tuple[np.ndarray, float]]] = {}
        names: dict[int, list[str]] = {}
        self.link_points: dict[str, list[tuple[int, np.ndarray]]] = {}  # for tests
        hulls: dict[str, list[np.ndarray]] = {}
        for obj in geom.geometryObjects:
            jid, pts = self._attach(model, obj)
            if jid == 0:
                continue  # fixed to the base: it cannot move
            link = model.frames[obj.parentFrame].name
            self.link_points.setdefault(link, []).append((jid, pts))
            hulls.setdefault(link, []).append(self._hull(pts))
            self._link_joint[link] = jid
            centers, radii = fit_spheres(surface_points(
                pts, self._triangles(obj.geometry), SAMPLE_SPACING), SAMPLE_SPACING)
            groups.setdefault(jid, []).extend(zip(centers, radii, strict=True))
            names.setdefault(jid, []).extend([link] * len(radii))
        ee = model.frames[model.getFrameId(ee_frame)]
        self._link_joint[ee_frame] = ee.parentJoint
        hulls.setdefault(ee_frame, []).append(np.array([ee.placement.translation]))
        self._hulls = {link: np.concatenate(h).T.copy() for link, h in hulls.items()}  # (3, V)
        groups.setdefault(ee.parentJoint, []).insert(0, (np.array(ee.placement.translation), 0.0))
        names.setdefault(ee.parentJoint, []).insert(0, ee_frame)
        self._order = sorted(groups)
        self._local = [np.array([c for c, _ in groups[j]]) for j in self._order]
        self.radii = np.array([r for j in self._order for _, r in groups[j]])
        self.links = tuple(n for j in self._order for n in names[j])
        first = self._order.index(ee.parentJoint)
        self.ee_index = sum(len(g) for g in self._local[:first])
        self._needed = self._ancestors(self._order)
        self._rev = {}  # revolute arm joints: [R_pl | R_pl K | R_pl K^2] as (3, 9)
        for jid, j in self._joints.items():
            k = _skew(j.axis)
            self._rev[jid] = np.stack([j.rot, j.rot @ k, j.rot @ k @ k], axis=1).reshape(3, 9)
        self._base = base  # (rotation, translation) into the base frame; None: identity
        self.sweep_bound = self._sweep_bound()

    @staticmethod
    def _hull(pts: np.ndarray) -> np.ndarray:
        """Vertices of the convex hull of `pts` (coal's qhull)."""
        import coal  # ships with pinocchio's collision support

        mesh = coal.BVHModelOBBRSS()
        mesh.beginModel(0, len(pts))
        mesh.addVertices(pts)
        mesh.endModel()
        mesh.buildConvexHull(False, "Qt")
        return np.asarray(mesh.convex.points())

    @staticmethod
    def _triangles(geo: object) -> np.ndarray:
        tri = [geo.tri_indices(i) for i in range(geo.num_tris)]  # type: ignore[attr-defined]
        return np.array([[t[0], t[1], t[2]] for t in tri], dtype=np.int64).reshape(-1, 3)

    def _attach(self, model: pin.Model, obj: object) -> tuple[int, np.ndarray]:
        """(joint the geometry rides on, its vertices in that joint's frame)."""
        pl = obj.placement  # type: ignore[attr-defined]
        verts = np.asarray(obj.geometry.vertices()) @ np.array(pl.rotation).T \
            + np.array(pl.translation)  # type: ignore[attr-defined]
        jid = int(obj.parentJoint)  # type: ignore[attr-defined]
        while jid != 0 and self._joints[jid].arm_index is None:
            j = self._joints[jid]
            lo, hi = model.lowerPositionLimit[model.idx_qs[jid]], model.upperPositionLimit[
                model.idx_qs[jid]]
            ends = [lo, hi] if np.isfinite(lo) and np.isfinite(hi) else [0.0]
            verts = np.concatenate([self._joint_transform(j, q, verts) for q in ends])
            jid = j.parent
        return jid, verts

    @staticmethod
    def _joint_transform(j: _Joint, q: float, pts: np.ndarray) -> np.ndarray:
        if j.revolute:
            k = _skew(j.axis)
            rq = np.eye(3) + np.sin(q) * k + (1.0 - np.cos(q)) * k @ k
            return pts @ (j.rot @ rq).T + j.pos
        return (pts + q * j.axis) @ j.rot.T + j.pos

    def _ancestors(self, joints: list[int]) -> list[int]:
        need: set[int] = set()
        for j in joints:
            while j != 0 and j not in need:
                need.add(j)
                j = self._joints[j].parent
        return sorted(need)  # pinocchio numbers parents before children

    def _sweep_bound(self) -> float:
        """Largest distance (m) from any joint to a sphere centre it moves, over any
        configuration: the chain of joint offsets plus the centre's local offset."""
        best = 0.0
        for j, local in zip(self._order, self._local, strict=True):
            reach = float(np.max(np.linalg.norm(local, axis=1)))
            while j != 0:
                joint = self._joints[j]
                if joint.arm_index is not None:
                    best = max(best, reach if joint.revolute else 1.0)
                reach += float(np.linalg.norm(joint.pos))
                j = joint.parent
        return best

    def _transforms(self, qs: np.ndarray) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
        """Joint frames for a batch: rotations as (M*3, 3) stacks, positions (M, 3)."""
        m = qs.shape[0]
        # Stacked rotations make every product with a constant matrix one GEMM; a revolute
        # joint's R(q) = I + sin q K + (1 - cos q) K^2.
        rot: dict[int, np.ndarray] = {0: np.tile(np.eye(3), (m, 1))}
        pos: dict[int, np.ndarray] = {0: np.zeros((m, 3))}
        for jid in self._needed:
            j = self._joints[jid]
            pr, pp = rot[j.parent], pos[j.parent]
            p = pp + (pr @ j.pos).reshape(m, 3)
            if j.arm_index is not None and j.revolute:
                q = qs[:, j.arm_index]
                parts = (pr @ self._rev[jid]).reshape(m, 3, 3, 3)  # R_pl, R_pl K, R_pl K^2
                s = np.sin(q)[:, None, None]
                c = (1.0 - np.cos(q))[:, None, None]
                r = (parts[:, :, 0] + s * parts[:, :, 1] + c * parts[:, :, 2]).reshape(m * 3, 3)
            else:
                r = pr @ j.rot
                if j.arm_index is not None:  # prismatic
                    p = p + (r @ j.axis).reshape(m, 3) * qs[:, j.arm_index, None]
            rot[jid], pos[jid] = r, p
        return rot, pos

    def centers(self, qs: np.ndarray) -> np.ndarray:
        """(M, dof) arm configurations -> (M, N, 3) sphere centres in the base frame."""
        m = qs.shape[0]
        rot, pos = self._transforms(qs)
        out = np.concatenate([(rot[j] @ c.T).reshape(m, 3, -1).transpose(0, 2, 1)
                              + pos[j][:, None, :]
                              for j, c in zip(self._order, self._local, strict=True)], axis=1)
        if self._base is not None:
            out = out @ self._base[0].T + self._base[1]
        return out

    def support(self, qs: np.ndarray, link: str, direction: np.ndarray) -> np.ndarray:
        """(M,) largest `direction . p` over the link's collision hull (base frame): exact
        where the spheres are conservative (the table plane under a grasp, the walls)."""
        d = np.asarray(direction, dtype=np.float64)
        offset = 0.0
        if self._base is not None:  # p_base = Rb p + tb
            offset = float(d @ self._base[1])
            d = self._base[0].T @ d
        jid = self._link_joint[link]
        m = qs.shape[0]
        rot, pos = self._transforms(qs)
        # d . (R v + t) = (R^T d) . v + d . t
        rd = (rot[jid].reshape(m, 3, 3).transpose(0, 2, 1) @ d)  # (M, 3)
        return np.max(rd @ self._hulls[link], axis=1) + pos[jid] @ d + offset
