"""Robot-path kinematics on Pinocchio: FK, Jacobians, end-effector velocity, IK, link poses.

The only module in robo_agent that imports pinocchio. It reads the same URDF as the sim
(the robot description's `urdf`), without pybullet: a `pybullet_data:` path is resolved
from where the `pybullet_data` package lies, without importing it (or from
`$ROBO_AGENT_URDF_DIR`, for a robot install that ships the URDFs on their own).

Every pose is in the robot **base frame** (REP-105): the description's `base_frame` link,
whatever the base pose in the world. Arm joints are addressed in the description's joint
order; the other URDF joints (gripper fingers) stay at their neutral position.

Threads: an instance owns one pinocchio `Data`, guarded by a lock, so one instance may be
shared by several threads (the ROS tool runner and the policy runner do); calls are
serialised, each a few microseconds. A lock, not a per-thread `Data`: an uncontended
acquire/release costs ~0.17 us here, a `threading.local` lookup ~0.4 us.
"""

from __future__ import annotations

import importlib.util
import math
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pinocchio as pin

from robo_agent.core.robot_spec import PYBULLET_DATA_PREFIX, RobotSpec, RobotSpecError
from robo_agent.kinematics.spheres import SphereBatch, SphereModel

URDF_DIR_ENV = "ROBO_AGENT_URDF_DIR"
_LWA = pin.ReferenceFrame.LOCAL_WORLD_ALIGNED

# Damped least squares: damping, largest joint step per iteration (rad), iterations per
# start, and the weight of orientation error (rad) against position error (m).
IK_DAMPING = 1e-4
IK_MAX_STEP = 0.2
IK_ITERATIONS = 150
IK_ORIENTATION_WEIGHT = 0.5
IK_RANDOM_STARTS = 4


def pybullet_data_dir() -> Path | None:
    """Directory of the `pybullet_data` package, found without importing it (or pybullet)."""
    override = os.environ.get(URDF_DIR_ENV)
    if override:
        return Path(override)
    found = importlib.util.find_spec("pybullet_data")
    if found is None or not found.submodule_search_locations:
        return None
    return Path(next(iter(found.submodule_search_locations)))


def _urdf_hint(spec: RobotSpec) -> str:
    """What a robot without pybullet must provide for a `pybullet_data:` description."""
    rel = spec.urdf[len(PYBULLET_DATA_PREFIX):]
    folder = rel.split("/", 1)[0]
    return (f"set {URDF_DIR_ENV} to a folder holding {folder}/ as pybullet_data ships it: "
            f"{rel} and the mesh files it names, e.g. copied from the folder that `python -c "
            "'import pybullet_data; print(pybullet_data.getDataPath())'` prints on a machine "
            "with pybullet; or `pip install pybullet`, which ships pybullet_data (found "
            "there, never imported)")


def resolve_urdf(spec: RobotSpec) -> Path:
    """The URDF file of a description, as the sim loads it."""
    packaged = spec.urdf.startswith(PYBULLET_DATA_PREFIX)
    data_dir = pybullet_data_dir() if packaged else None
    if packaged and data_dir is None:
        raise RobotSpecError(
            f"robot '{spec.name}': urdf '{spec.urdf}' is a pybullet_data file, and neither "
            f"the pybullet_data package nor ${URDF_DIR_ENV} is here: {_urdf_hint(spec)}")
    path = spec.urdf_path(data_dir)
    if not path.is_file():
        hint = f" ({_urdf_hint(spec)})" if packaged else ""
        raise RobotSpecError(f"robot '{spec.name}': no URDF file at {path}{hint}")
    return path


def missing_mesh_error(spec: RobotSpec, urdf: Path, err: Exception) -> RobotSpecError:
    """The error for a URDF found without the collision meshes it names."""
    hint = (_urdf_hint(spec) if spec.urdf.startswith(PYBULLET_DATA_PREFIX)
            else "install the robot description with its meshes")
    return RobotSpecError(f"robot '{spec.name}': {urdf} is here but its collision meshes "
                          f"are not ({err}); {hint}")


@lru_cache(maxsize=16)
def _model(urdf: str) -> pin.Model:
    # Models are read-only after building, so instances share one per URDF.
    return pin.buildModelFromUrdf(urdf)


@lru_cache(maxsize=16)
def _spheres(urdf: str, joints: tuple[str, ...], ee_link: str, base_frame: str) -> SphereModel:
    # Fitting reads the meshes (~0.1 s): once per robot, shared (read-only afterwards).
    model = _model(urdf)
    data = model.createData()
    pin.framesForwardKinematics(model, data, pin.neutral(model))
    inv = data.oMf[model.getFrameId(base_frame)].inverse()
    rot, pos = np.array(inv.rotation), np.array(inv.translation)
    identity = np.allclose(rot, np.eye(3)) and np.allclose(pos, 0.0)
    return SphereModel(model, Path(urdf), list(joints), ee_link, None if identity else (rot, pos))


@dataclass(frozen=True)
class IkResult:
    """An IK solution: arm joints (description order) and its residuals at the ee link."""

    q: np.ndarray
    position_error: float  # m
    orientation_error: float  # rad; 0.0 when no orientation was asked for
    converged: bool


_F64 = np.dtype(np.float64)
_isfinite = math.isfinite
_fk = pin.forwardKinematics
_frame = pin.updateFramePlacement
_xyzquat = pin.SE3ToXYZQUAT


def _as_vector(v: Sequence[float] | np.ndarray, n: int, what: str) -> np.ndarray:
    a = np.asarray(v, dtype=np.float64).reshape(-1)
    if a.shape != (n,):
        raise ValueError(f"{what} needs {n} values, got {a.size}")
    # A Python sum of the values is the cheapest finiteness test (~0.2 us for 7 values,
    # a third of a numpy reduction; FK runs at control rate): NaN or inf anywhere makes it
    # non-finite. Only then (or on overflow of finite values) is the element-wise test run.
    if not _isfinite(sum(a.tolist())) and not np.all(np.isfinite(a)):
        raise ValueError(f"{what} must be finite, got {a.tolist()}")
    return a


def _rot_from_xyzw(q: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(q))
    if n < 1e-9:
        raise ValueError(f"orientation quaternion has zero norm: {q.tolist()}")
    x, y, z, w = q / n
    return np.asarray(pin.Quaternion(w, x, y, z).toRotationMatrix())


class Kinematics:
    """FK, Jacobians, IK and link positions of one robot description (base frame)."""

    def __init__(self, spec: RobotSpec, urdf: Path | None = None) -> None:
        self.spec = spec
        self.dof = spec.dof
        path = urdf or resolve_urdf(spec)
        self.urdf = path
        self.model = _model(str(path))
        self._data = self.model.createData()
        self._sphere_model: SphereModel | None = None
        self._lock = threading.Lock()
        m = self.model
        missing = [n for n in spec.joint_names if not m.existJointName(n)]
        if missing:
            raise RobotSpecError(f"robot '{spec.name}': joints {missing} are not in {path}")
        joints = [m.joints[m.getJointId(n)] for n in spec.joint_names]
        if any(j.nq != 1 or j.nv != 1 for j in joints):
            raise RobotSpecError(f"robot '{spec.name}': every arm joint must be revolute or "
                                 "prismatic (one coordinate)")
        self._iq = np.array([j.idx_q for j in joints])
        self._iv = np.array([j.idx_v for j in joints])
        self._shape = (self.dof,)
        # How `_full` places the arm joints into pinocchio's q, cheapest first: the arm is
        # the whole q (iiwa, xArm6: pass q as is), a contiguous block (Panda: the fingers
        # follow), or scattered (index assignment, ~0.13 us more per call).
        first = int(self._iq[0]) if self.dof else 0
        contiguous = bool(np.array_equal(self._iq, np.arange(first, first + self.dof)))
        self._whole = contiguous and first == 0 and m.nq == self.dof
        self._block = slice(first, first + self.dof) if contiguous else None
        for name in (spec.ee_link, spec.base_frame):
            if not m.existFrame(name):
                raise RobotSpecError(f"robot '{spec.name}': no link '{name}' in {path}")
        self._ee = m.getFrameId(spec.ee_link)
        self._q = pin.neutral(m)
        # The base frame is a link fixed to the URDF root; poses are expressed in it.
        base = m.getFrameId(spec.base_frame)
        if m.frames[base].parentJoint != 0:
            raise RobotSpecError(f"robot '{spec.name}': base_frame '{spec.base_frame}' moves "
                                 "with a joint")
        pin.framesForwardKinematics(m, self._data, self._q)
        inv = self._data.oMf[base].inverse()
        self._base_rot = np.array(inv.rotation)
        self._base_pos = np.array(inv.translation)
        self._base_identity = bool(np.allclose(self._base_rot, np.eye(3))
                                   and np.allclose(self._base_pos, 0.0))
        self._base_se3 = None if self._base_identity else inv
        self.link_names = [f.name for f in m.frames if f.type == pin.FrameType.BODY]
        self._links = [int(m.getFrameId(n)) for n in self.link_names]
        self.lower, self.upper = spec.lower, spec.upper
        self.home = spec.home_array

    @classmethod
    def for_robot(cls, spec: RobotSpec) -> Kinematics:
        """Kinematics of a description; the model is built once per URDF and shared."""
        return cls(spec)

    # -- collision spheres (the envelope's `ArmGeometry`; no lock: read-only numpy) --------
    @property
    def spheres(self) -> SphereModel:
        """Spheres containing every moving link's collision mesh (fitted on first use)."""
        # Kept on the instance: the cache lookup rebuilds its key (~4 us), and a path
        # check reads five of these properties. Two threads racing here get the same
        # (cached, read-only) model.
        model = self._sphere_model
        if model is None:
            try:
                model = _spheres(str(self.urdf), tuple(self.spec.joint_names),
                                 self.spec.ee_link, self.spec.base_frame)
            except ValueError as err:  # pinocchio: "Mesh ... could not be found."
                if "could not be found" not in str(err):
                    raise
                raise missing_mesh_error(self.spec, self.urdf, err) from err
            self._sphere_model = model
        return model

    @property
    def sphere_links(self) -> tuple[str, ...]:
        return self.spheres.links

    @property
    def sphere_radii(self) -> np.ndarray:
        return self.spheres.radii

    @property
    def ee_sphere(self) -> int:
        return self.spheres.ee_index

    @property
    def sweep_bound(self) -> np.ndarray:
        return self.spheres.sweep_bound

    def sphere_centers(self, qs: np.ndarray) -> np.ndarray:
        """(M, dof) configurations -> (M, N, 3) sphere centres in the base frame."""
        return self.spheres.centers(np.asarray(qs, dtype=np.float64).reshape(-1, self.dof))

    def sphere_batch(self, qs: np.ndarray) -> SphereBatch:
        """One FK pass for (M, dof) configurations: `.centers` (M, N, 3) and
        `.support(rows, link, direction)`, so a path check places the joints once."""
        return self.spheres.batch(np.asarray(qs, dtype=np.float64).reshape(-1, self.dof))

    def link_support(self, qs: np.ndarray, link: str, direction: np.ndarray) -> np.ndarray:
        """(M,) largest `direction . p` over `link`'s collision hull, base frame (exact)."""
        return self.spheres.support(np.asarray(qs, dtype=np.float64).reshape(-1, self.dof),
                                    link, direction)

    # -- internals (call with the lock held) -------------------------------------------------
    def _full(self, q: np.ndarray) -> np.ndarray:
        if self._whole:
            return q
        if self._block is not None:
            self._q[self._block] = q
        else:
            self._q[self._iq] = q
        return self._q

    def _to_base(self, rot: np.ndarray, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self._base_identity:
            return rot, pos
        return self._base_rot @ rot, self._base_rot @ pos + self._base_pos

    def _ee_placement(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        m, d = self.model, self._data
        pin.forwardKinematics(m, d, self._full(q))
        oMf = pin.updateFramePlacement(m, d, self._ee)
        return self._to_base(oMf.rotation, oMf.translation)

    def _jacobian(self, q: np.ndarray) -> np.ndarray:
        m, d = self.model, self._data
        j = pin.computeFrameJacobian(m, d, self._full(q), self._ee, _LWA)[:, self._iv]
        if not self._base_identity:
            j = np.vstack([self._base_rot @ j[:3], self._base_rot @ j[3:]])
        return j

    # -- public API -------------------------------------------------------------------------
    def ee_pose(self, q: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """End-effector position (m) and quaternion (x, y, z, w) in the base frame."""
        # The control-rate path (~1.3 us of the ~2 us here is pinocchio): a float64 vector
        # of the right length skips the conversion and gets only the cheap finiteness test;
        # anything else goes through `_as_vector`, which converts or names the problem.
        if type(q) is not np.ndarray or q.dtype != _F64 or q.shape != self._shape \
                or not _isfinite(sum(q.tolist())):
            q = _as_vector(q, self.dof, "q")
        m, d = self.model, self._data
        with self._lock:
            _fk(m, d, self._full(q))
            oMf = _frame(m, d, self._ee)  # this one frame only, not all of them
            xyzquat = _xyzquat(oMf if self._base_se3 is None else self._base_se3 * oMf)
        return xyzquat[:3], xyzquat[3:]  # quaternion (x, y, z, w)

    def jacobian(self, q: Sequence[float] | np.ndarray) -> np.ndarray:
        """6 x dof Jacobian of the ee frame (linear rows first), axes of the base frame."""
        q = _as_vector(q, self.dof, "q")
        with self._lock:
            return np.array(self._jacobian(q))

    def ee_velocity(self, q: Sequence[float] | np.ndarray,
                    qd: Sequence[float] | np.ndarray) -> np.ndarray:
        """Linear velocity (m/s) of the ee frame origin in the base frame: J[:3] @ qd."""
        return self.jacobian(q)[:3] @ _as_vector(qd, self.dof, "qd")

    def link_positions(self, q: Sequence[float] | np.ndarray) -> dict[str, np.ndarray]:
        """Origin of every URDF link frame (`link_names`) in the base frame."""
        return dict(zip(self.link_names, self.link_positions_array(q), strict=True))

    def link_positions_array(self, q: Sequence[float] | np.ndarray) -> np.ndarray:
        """`link_positions` as an array (len(link_names), 3), in `link_names` order."""
        return np.array([p for _, p in self.link_placements(q)])

    def link_placements(self, q: Sequence[float] | np.ndarray
                        ) -> list[tuple[np.ndarray, np.ndarray]]:
        """(rotation 3x3, position) of every link frame in `link_names` order, base frame."""
        q = _as_vector(q, self.dof, "q")
        m, d = self.model, self._data
        with self._lock:
            pin.framesForwardKinematics(m, d, self._full(q))
            out = []
            for fid in self._links:
                oMf = d.oMf[fid]
                rot, pos = self._to_base(oMf.rotation, oMf.translation)
                out.append((np.array(rot), np.array(pos)))
            return out

    def ik(self, position: Sequence[float] | np.ndarray,
           orientation: Sequence[float] | np.ndarray | None = None,
           q0: Sequence[float] | np.ndarray | None = None,
           position_tolerance: float = 1e-4,
           orientation_tolerance: float = 1e-3) -> IkResult:
        """Arm joints putting the ee link at `position` (and `orientation`, xyzw), base frame.

        Damped least squares within the joint limits, from `q0` (default: home), then home,
        then a few fixed pseudo-random starts, until the residuals are within tolerance;
        deterministic for the same inputs. Returns the best solution found either way:
        the caller decides whether its residual means "reachable".
        """
        target = _as_vector(position, 3, "position")
        r_target = (None if orientation is None
                    else _rot_from_xyzw(_as_vector(orientation, 4, "orientation")))
        lo, hi = self.lower, self.upper
        starts = [self.home] if q0 is None else [np.clip(_as_vector(q0, self.dof, "q0"),
                                                         lo, hi), self.home]
        rng = np.random.default_rng(0)
        starts += [rng.uniform(lo, hi) for _ in range(IK_RANDOM_STARTS)]
        best: IkResult | None = None
        with self._lock:
            for start in starts:
                res = self._dls(start, target, r_target, position_tolerance,
                                orientation_tolerance)
                if res.converged:
                    return res
                if best is None or (res.position_error + IK_ORIENTATION_WEIGHT
                                    * res.orientation_error
                                    < best.position_error + IK_ORIENTATION_WEIGHT
                                    * best.orientation_error):
                    best = res
        assert best is not None
        return best

    def _dls(self, q: np.ndarray, target: np.ndarray, r_target: np.ndarray | None,
             ptol: float, otol: float) -> IkResult:
        lo, hi = self.lower, self.upper
        q = q.copy()
        w = IK_ORIENTATION_WEIGHT
        for _ in range(IK_ITERATIONS + 1):
            rot, pos = self._ee_placement(q)
            e_pos = target - pos
            pe = float(np.linalg.norm(e_pos))
            if r_target is None:
                oe, err = 0.0, e_pos
            else:
                e_rot = pin.log3(r_target @ rot.T)  # world-aligned rotation error
                oe = float(np.linalg.norm(e_rot))
                err = np.concatenate([e_pos, w * e_rot])
            if pe <= ptol and oe <= otol:
                return IkResult(q, pe, oe, True)
            j = self._jacobian(q)
            if r_target is None:
                j = j[:3]
            else:
                j = np.vstack([j[:3], w * j[3:]])
            dq = j.T @ np.linalg.solve(j @ j.T + IK_DAMPING * np.eye(len(err)), err)
            biggest = float(np.max(np.abs(dq)))
            if biggest > IK_MAX_STEP:
                dq *= IK_MAX_STEP / biggest
            q = np.clip(q + dq, lo, hi)
        rot, pos = self._ee_placement(q)
        pe = float(np.linalg.norm(target - pos))
        oe = 0.0 if r_target is None else float(np.linalg.norm(pin.log3(r_target @ rot.T)))
        return IkResult(q, pe, oe, pe <= ptol and oe <= otol)
