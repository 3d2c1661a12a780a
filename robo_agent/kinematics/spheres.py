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
from functools import cached_property
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
        self._tables(self._ancestors(self._order), base)
        self.sweep_bound = self._sweep_bound(len(arm_joints))

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

    def _sweep_bound(self, dof: int) -> np.ndarray:
        """Per arm joint, the largest distance (m) from its axis to a sphere centre it
        moves, over any configuration: the most any centre travels per rad of that joint
        (1 m per m for a prismatic one). A centre p moves |a x (p - o)| per rad of a joint
        at o with axis a, so only the part of p - o across the axis counts. Bounded as the
        cross-axis part of the fixed offset to the next joint (it turns with the joint, so
        that part keeps its length) plus the length of the rest of the chain."""
        best = np.zeros(dof)
        for j, local in zip(self._order, self._local, strict=True):
            # Spheres on the joint itself: the cross-axis part of each local centre.
            joint = self._joints[j]
            if joint.arm_index is not None:
                across = local - np.outer(local @ joint.axis, joint.axis)
                best[joint.arm_index] = max(best[joint.arm_index], 1.0 if not joint.revolute
                                            else float(np.max(np.linalg.norm(across, axis=1))))
            reach = float(np.max(np.linalg.norm(local, axis=1)))  # from the child's origin
            child = j
            j = joint.parent
            while j != 0:
                joint = self._joints[j]
                offset = self._joints[child].pos  # child origin, in this joint's frame
                if joint.arm_index is not None:
                    i = joint.arm_index
                    across = offset - (offset @ joint.axis) * joint.axis
                    best[i] = max(best[i], 1.0 if not joint.revolute
                                  else float(np.linalg.norm(across)) + reach)
                reach += float(np.linalg.norm(offset))
                child, j = j, joint.parent
        return best

    def _tables(self, needed: list[int], base: tuple[np.ndarray, np.ndarray] | None) -> None:
        """Constant tables of the batched FK (`frames`), so that a batch costs a handful of
        numpy calls per joint whatever its size (numpy's per-call overhead, not the
        arithmetic, is what a path check of 20-250 samples pays for).

        A joint's 4x4 transform in its parent is linear in (1, sin q, 1 - cos q, q):
        [R_pl R(q) | p_pl + R_pl a q] with R(q) = I + sin q K + (1 - cos q) K^2 (Rodrigues),
        so all joints of a batch come from one batched product of those coefficients with
        four constant 4x4 matrices per joint. The base-frame change is folded into the
        matrices of the joints on the root, so frames come out in the base frame."""
        slot = {jid: i for i, jid in enumerate(needed)}
        self._parent_slot = [slot.get(self._joints[j].parent, -1) for j in needed]
        self._slot = slot
        self._qcol = np.array([self._joints[j].arm_index or 0 for j in needed], dtype=np.intp)
        mats = np.zeros((len(needed), 4, 4, 4))  # joint, coefficient, 4x4
        to_base = np.eye(4)
        if base is not None:
            to_base[:3, :3], to_base[:3, 3] = base
        for i, jid in enumerate(needed):
            j = self._joints[jid]
            mats[i, 0, :3, :3], mats[i, 0, :3, 3], mats[i, 0, 3, 3] = j.rot, j.pos, 1.0
            if j.arm_index is not None and j.revolute:
                k = _skew(j.axis)
                mats[i, 1, :3, :3], mats[i, 2, :3, :3] = j.rot @ k, j.rot @ k @ k
            elif j.arm_index is not None:  # prismatic: the origin slides along the axis
                mats[i, 3, :3, 3] = j.rot @ j.axis
            if self._parent_slot[i] < 0:
                mats[i] = to_base @ mats[i]
        self._prismatic = bool(np.any(mats[:, 3]))
        # Exact supports of several links in one product (`SphereBatch.supports`): their
        # hulls padded to one vertex count by repeating a vertex (the maximum is unchanged).
        width = max(h.shape[1] for h in self._hulls.values())
        self._hull_index = {n: i for i, n in enumerate(self._hulls)}
        self._hull_stack = np.stack([np.pad(h, ((0, 0), (0, width - h.shape[1])), mode="edge")
                                     for h in self._hulls.values()])  # (L, 3, V)
        self._hull_slot = np.array([slot[self._link_joint[n]] for n in self._hulls],
                                   dtype=np.intp)
        self._mats = mats.reshape(len(needed), 4, 16)[:, :4 if self._prismatic else 3].copy()
        # Sphere centres: homogeneous local points per joint slot, padded to the longest.
        width = max(len(c) for c in self._local)
        self._points = np.zeros((len(needed), 4, width))
        js, ks = [], []
        for jid, local in zip(self._order, self._local, strict=True):
            i = slot[jid]
            self._points[i, :3, :len(local)], self._points[i, 3, :len(local)] = local.T, 1.0
            js += [i] * len(local)
            ks += list(range(len(local)))
        self._pick = (np.array(js, dtype=np.intp), np.array(ks, dtype=np.intp))

    def frames(self, qs: np.ndarray) -> np.ndarray:
        """(J, M, 4, 4) base-frame transforms of the needed joints for (M, dof) configs."""
        n, m = len(self._parent_slot), qs.shape[0]
        q = qs[:, self._qcol].T  # (J, M)
        coef = np.empty((n, m, self._mats.shape[1]))
        coef[..., 0] = 1.0
        np.sin(q, out=coef[..., 1])
        np.cos(q, out=coef[..., 2])
        np.subtract(1.0, coef[..., 2], out=coef[..., 2])
        if self._prismatic:
            coef[..., 3] = q
        local = np.matmul(coef, self._mats).reshape(n, m, 4, 4)  # in the parent joint frame
        out = np.empty_like(local)
        for i, parent in enumerate(self._parent_slot):  # parents come first
            if parent < 0:
                out[i] = local[i]
            else:
                np.matmul(out[parent], local[i], out=out[i])
        return out

    def batch(self, qs: np.ndarray) -> SphereBatch:
        """Sphere centres and link supports for (M, dof) configurations, one FK pass."""
        return SphereBatch(self, self.frames(qs))

    def centers(self, qs: np.ndarray) -> np.ndarray:
        """(M, dof) arm configurations -> (M, N, 3) sphere centres in the base frame."""
        return self.batch(qs).centers

    def support(self, qs: np.ndarray, link: str, direction: np.ndarray) -> np.ndarray:
        """(M,) largest `direction . p` over the link's collision hull (base frame): exact
        where the spheres are conservative (the table plane under a grasp, the walls)."""
        return self.batch(qs).support(slice(None), link, direction)


class SphereBatch:
    """The joint frames of one batch of configurations, and what the checks read off them."""

    def __init__(self, model: SphereModel, frames: np.ndarray) -> None:
        self._model = model
        self._frames = frames  # (J, M, 4, 4), base frame

    @cached_property
    def centers(self) -> np.ndarray:
        """(M, N, 3) sphere centres, base frame (computed on first use: a support-only
        query does not pay for them)."""
        js, ks = self._model._pick
        n, m = self._frames.shape[:2]
        # Every joint's points in one product per joint (as (M*4, 4) @ (4, K): one GEMM,
        # 6x faster than M small products), then each sphere picked.
        placed = np.matmul(self._frames.reshape(n, m * 4, 4), self._model._points)
        # The gather lays it out (N, M, 3); copied to a C-contiguous (M, N, 3) because the
        # checks' reductions over the samples run 10x slower on the other layout.
        return np.ascontiguousarray(placed.reshape(n, m, 4, -1)[js, :, :3, ks].transpose(1, 0, 2))

    def support(self, rows: np.ndarray | slice, link: str, direction: np.ndarray
                ) -> np.ndarray:
        """(len(rows),) largest `direction . p` over `link`'s collision hull, base frame."""
        d = np.asarray(direction, dtype=np.float64)
        t = self._frames[self._model._slot[self._model._link_joint[link]], rows]  # (M, 4, 4)
        # d . (R v + p) = (R^T d) . v + d . p
        rd = np.einsum("mij,i->mj", t[:, :3, :3], d)
        return np.max(rd @ self._model._hulls[link], axis=1) + t[:, :3, 3] @ d

    def supports(self, rows: np.ndarray, links: list[str], direction: np.ndarray
                 ) -> np.ndarray:
        """(len(rows), len(links)) `support` of several links in one batched product."""
        m = self._model
        idx = np.array([m._hull_index[n] for n in links], dtype=np.intp)
        d = np.asarray(direction, dtype=np.float64)
        t = self._frames[m._hull_slot[idx][:, None], np.asarray(rows)[None, :]]  # (L, R, 4, 4)
        rd = np.einsum("lrij,i->lrj", t[..., :3, :3], d)
        return (np.matmul(rd, m._hull_stack[idx]).max(axis=2) + t[..., :3, 3] @ d).T
