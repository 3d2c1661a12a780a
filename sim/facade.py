"""PyBullet facade: the only module in robo_agent that imports pybullet.

One `PyBullet` object owns one physics client (DIRECT by default, GUI on request).
Bodies are addressed by name, joints and links by their URDF names, so callers never
juggle PyBullet's integer ids. Every bulk accessor is one PyBullet array call
(`getJointStates`, `setJointMotorControlArray`), which keeps the per-control-step
Python overhead small next to the physics itself.

Bad input (unknown body/joint/link names, wrong-shaped or non-finite arrays) raises a
`ValueError` naming what is wrong *before* any PyBullet call, so the sim is unchanged.
"""

from __future__ import annotations

import ctypes
import logging
import os
import pkgutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

_log = logging.getLogger(__name__)


@contextmanager
def _c_output_to_log(fd: int, level: int = logging.DEBUG) -> Iterator[None]:
    """Send what C code writes to file descriptor `fd` while in the block to our logger.

    PyBullet prints its import banner to stderr and URDF/plugin chatter (e.g. the xArm's
    "Bad inertia tensor" warnings, EGL device lines) to stdout from C, once per env; at
    DEBUG level they stay available without flooding every command's output. Only
    short, startup-time calls are wrapped, since the redirect is process-wide.
    """
    stream = sys.stdout if fd == 1 else sys.stderr
    try:
        stream.flush()
        saved = os.dup(fd)
    except (OSError, ValueError, AttributeError):  # no real descriptor: leave it alone
        yield
        return
    with tempfile.TemporaryFile(mode="w+b") as capture:
        try:
            os.dup2(capture.fileno(), fd)
            yield
        finally:
            try:  # flush C stdio buffers while they still point at the capture file
                ctypes.CDLL(None).fflush(None)
            except (OSError, AttributeError):
                pass
            os.dup2(saved, fd)
            os.close(saved)
            capture.seek(0)
            for line in capture.read().decode(errors="replace").splitlines():
                if line.strip():
                    _log.log(level, "pybullet: %s", line)


def _import_pybullet() -> Any:
    with _c_output_to_log(2):
        import pybullet
    return pybullet


p = _import_pybullet()
import pybullet_data  # noqa: E402

DATA_PATH = pybullet_data.getDataPath()
#: Set to "0" to never load the EGL renderer plugin (TinyRenderer is used instead).
EGL_ENV = "ROBO_AGENT_EGL"
#: Orbit camera that shows the arm on its base and the table in front of it.
DEFAULT_CAMERA: dict[str, Any] = {"target": (0.35, 0.0, 0.3), "distance": 1.5, "yaw": 45.0,
                                  "pitch": -30.0}

_FIXED = p.JOINT_FIXED


def _frame_velocity(s: tuple) -> np.ndarray:
    """Linear velocity of the URDF link frame from a getLinkState result.

    PyBullet reports the velocity of the link's centre of mass (s[0]); the link frame
    (s[4]) moves at v + w x (frame - com), which is what the robot's kinematics (J @ qd of
    the URDF frame) gives.
    """
    (vx, vy, vz), (wx, wy, wz) = s[6], s[7]
    rx, ry, rz = s[4][0] - s[0][0], s[4][1] - s[0][1], s[4][2] - s[0][2]
    return np.array([vx + wy * rz - wz * ry, vy + wz * rx - wx * rz, vz + wx * ry - wy * rx])


@dataclass
class _Body:
    """Book-keeping for one loaded body: PyBullet id and name -> index maps."""

    uid: int
    joints: dict[str, int] = field(default_factory=dict)
    links: dict[str, int] = field(default_factory=dict)
    movable: list[int] = field(default_factory=list)  # joint indices PyBullet's IK solves for
    lower: np.ndarray = field(default_factory=lambda: np.zeros(0))
    upper: np.ndarray = field(default_factory=lambda: np.zeros(0))


def as_vector(value: Any, size: int | None, what: str) -> np.ndarray:
    """`value` as a finite float64 vector of `size` (any size if None), else ValueError."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{what}: expected numbers, got {value!r}") from None
    if arr.ndim != 1 or (size is not None and arr.shape[0] != size):
        want = f"({size},)" if size is not None else "a 1-D vector"
        raise ValueError(f"{what}: expected shape {want}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what}: contains NaN or inf: {arr.tolist()}")
    return arr


_EGL_DRAWS: bool | None = None


def egl_draws() -> bool:
    """Whether the EGL renderer plugin loads *and draws* here (probed once per process).

    On machines without a GPU the plugin often loads and then renders one uniform colour.
    The probe renders a red box in a throwaway client and checks the pixels; when it shows
    nothing, every camera uses TinyRenderer (the plugin cannot be unloaded cleanly from a
    client that has used it, so the probe never touches a real one).
    """
    global _EGL_DRAWS
    if _EGL_DRAWS is not None:
        return _EGL_DRAWS
    _EGL_DRAWS = False
    loader = pkgutil.get_loader("eglRenderer")
    if loader is None:
        return False
    cid = p.connect(p.DIRECT)
    try:
        with _c_output_to_log(1), _c_output_to_log(2):
            plugin = p.loadPlugin(loader.get_filename(), "_eglRendererPlugin",
                                  physicsClientId=cid)
            if plugin < 0:
                return False
            shape = p.createVisualShape(p.GEOM_BOX, halfExtents=[0.2, 0.2, 0.2],
                                        rgbaColor=[1, 0, 0, 1], physicsClientId=cid)
            p.createMultiBody(0, -1, shape, physicsClientId=cid)
            view = p.computeViewMatrix([1, 1, 1], [0, 0, 0], [0, 0, 1], physicsClientId=cid)
            proj = p.computeProjectionMatrixFOV(60, 1.0, 0.05, 10, physicsClientId=cid)
            _, _, rgba, _, _ = p.getCameraImage(32, 32, view, proj,
                                                renderer=p.ER_BULLET_HARDWARE_OPENGL,
                                                physicsClientId=cid)
        rgb = np.asarray(rgba, dtype=np.uint8).reshape(32, 32, 4)[:, :, :3].astype(int)
        red = (rgb[:, :, 0] > 150) & (rgb[:, :, 1] < 80) & (rgb[:, :, 2] < 80)
        _EGL_DRAWS = bool(red.mean() > 0.05)
        if not _EGL_DRAWS:
            _log.warning("the EGL renderer plugin drew an empty probe frame; cameras use "
                         "TinyRenderer (CPU)")
        return _EGL_DRAWS
    finally:
        p.disconnect(physicsClientId=cid)


class PyBullet:
    """One PyBullet physics client with bodies addressed by name.

    Args:
        render_mode: "direct" (headless, default) or "gui" (opens the PyBullet window).
        timestep: physics step in seconds (default 1/500 s).
        n_substeps: physics steps per control step, `step()` (default 20 -> dt = 0.04 s).
        gravity: z gravity, m/s².
        visual_shapes: load visual meshes (default True). False saves ~50 MB per Panda and
            some load time for headless training; camera images then show nothing.
    """

    def __init__(
        self,
        render_mode: Literal["direct", "gui"] = "direct",
        timestep: float = 1 / 500,
        n_substeps: int = 20,
        gravity: float = -9.81,
        visual_shapes: bool = True,
    ) -> None:
        if render_mode not in ("direct", "gui"):
            raise ValueError(f"render_mode must be 'direct' or 'gui', got {render_mode!r}")
        if not (np.isfinite(timestep) and timestep > 0):
            raise ValueError(f"timestep must be a positive number of seconds, got {timestep!r}")
        if int(n_substeps) != n_substeps or n_substeps < 1:
            raise ValueError(f"n_substeps must be a positive integer, got {n_substeps!r}")
        if render_mode == "gui" and sys.platform.startswith("linux") and not (
            os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
        ):
            # PyBullet would print "cannot connect to X server" and exit the process.
            raise RuntimeError("the PyBullet GUI needs a display and DISPLAY is not set; "
                               "run headless (render_mode='direct' / no --gui) or set DISPLAY")
        self.render_mode = render_mode
        self.visual_shapes = bool(visual_shapes) or render_mode == "gui"
        self.timestep = float(timestep)
        self.n_substeps = int(n_substeps)
        self.dt = self.timestep * self.n_substeps
        self._cid = p.connect(p.GUI if render_mode == "gui" else p.DIRECT)
        if self._cid < 0:
            raise RuntimeError(f"could not connect to PyBullet in {render_mode} mode")
        self._closed = False
        self._bodies: dict[str, _Body] = {}
        self._egl_plugin: int | None = None  # None: not tried yet; -1: unavailable
        self._images = 0
        cid = self._cid
        if render_mode == "gui":
            p.configureDebugVisualizer(p.COV_ENABLE_GUI, 0, physicsClientId=cid)
            p.configureDebugVisualizer(p.COV_ENABLE_MOUSE_PICKING, 0, physicsClientId=cid)
        p.setTimeStep(self.timestep, physicsClientId=cid)
        p.setGravity(0, 0, gravity, physicsClientId=cid)
        p.setAdditionalSearchPath(DATA_PATH, physicsClientId=cid)

    # -- lifecycle ----------------------------------------------------------------------
    @property
    def client_id(self) -> int:
        """The PyBullet physics client id (for debugging; prefer the named methods)."""
        return self._cid

    @property
    def connected(self) -> bool:
        """True until `close()` (or the GUI window was closed)."""
        return not self._closed and p.isConnected(physicsClientId=self._cid)

    def close(self) -> None:
        """Disconnect the client. Safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._egl_plugin is not None and self._egl_plugin >= 0:
                with _c_output_to_log(1):
                    p.unloadPlugin(self._egl_plugin, physicsClientId=self._cid)
            if p.isConnected(physicsClientId=self._cid):
                p.disconnect(physicsClientId=self._cid)
        except p.error:  # already gone (e.g. the GUI window was closed by the user)
            pass

    def __enter__(self) -> PyBullet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        # Interpreter shutdown may have torn down the pybullet module already.
        try:
            self.close()
        except Exception:
            pass

    # -- stepping -------------------------------------------------------------------------
    def step(self) -> None:
        """Advance one control step: `n_substeps` physics steps."""
        step, cid = p.stepSimulation, self._cid
        for _ in range(self.n_substeps):
            step(physicsClientId=cid)

    def step_physics(self, n: int = 1) -> None:
        """Advance `n` raw physics steps."""
        step, cid = p.stepSimulation, self._cid
        for _ in range(int(n)):
            step(physicsClientId=cid)

    def perform_collision_detection(self) -> None:
        """Recompute contacts for the current poses without stepping (after teleports)."""
        p.performCollisionDetection(physicsClientId=self._cid)

    @contextmanager
    def no_rendering(self) -> Iterator[None]:
        """Disable GUI rendering while building a scene; restored even if the body raises."""
        if self.render_mode != "gui":
            yield
            return
        p.configureDebugVisualizer(p.COV_ENABLE_RENDERING, 0, physicsClientId=self._cid)
        try:
            yield
        finally:
            if self.connected:
                p.configureDebugVisualizer(p.COV_ENABLE_RENDERING, 1, physicsClientId=self._cid)

    # -- bodies ---------------------------------------------------------------------------
    def _body(self, body: str) -> _Body:
        try:
            return self._bodies[body]
        except KeyError:
            known = ", ".join(sorted(self._bodies)) or "none"
            raise ValueError(f"unknown body '{body}' (known: {known})") from None

    def has_body(self, body: str) -> bool:
        """Whether a body of that name was loaded or created."""
        return body in self._bodies

    def body_id(self, body: str) -> int:
        """PyBullet's unique id of a named body."""
        return self._body(body).uid

    def _new_name(self, body: str) -> None:
        if not isinstance(body, str) or not body:
            raise ValueError(f"body name must be a non-empty string, got {body!r}")
        if body in self._bodies:
            raise ValueError(f"a body named '{body}' already exists")

    def _register(self, body: str, uid: int) -> None:
        cid = self._cid
        info = _Body(uid=uid)
        base_name = p.getBodyInfo(uid, physicsClientId=cid)[0].decode()
        info.links[base_name] = -1
        lower, upper = [], []
        for j in range(p.getNumJoints(uid, physicsClientId=cid)):
            ji = p.getJointInfo(uid, j, physicsClientId=cid)
            info.joints[ji[1].decode()] = j
            info.links[ji[12].decode()] = j
            if ji[2] != _FIXED:
                info.movable.append(j)
                lo, hi = float(ji[8]), float(ji[9])
                if lo >= hi:  # continuous joints report lower > upper
                    lo, hi = -2 * np.pi, 2 * np.pi
                lower.append(lo)
                upper.append(hi)
        info.lower, info.upper = np.array(lower), np.array(upper)
        self._bodies[body] = info

    def load_urdf(
        self,
        body: str,
        path: str | Path,
        base_position: Sequence[float] = (0.0, 0.0, 0.0),
        base_orientation: Sequence[float] = (0.0, 0.0, 0.0, 1.0),
        fixed_base: bool = True,
        self_collision: bool = False,
    ) -> None:
        """Load a URDF as body `body` (path absolute or relative to pybullet_data)."""
        self._new_name(body)
        pos = as_vector(base_position, 3, "base_position")
        orn = as_vector(base_orientation, 4, "base_orientation")
        full = Path(path) if Path(path).is_absolute() else Path(DATA_PATH) / path
        if not full.is_file():
            raise ValueError(f"no URDF file at {full}")
        flags = p.URDF_USE_INERTIA_FROM_FILE
        if not self.visual_shapes:
            flags |= p.URDF_IGNORE_VISUAL_SHAPES
        if self_collision:
            flags |= p.URDF_USE_SELF_COLLISION
        with _c_output_to_log(1):
            uid = p.loadURDF(str(full), pos.tolist(), orn.tolist(), useFixedBase=fixed_base,
                             flags=flags, physicsClientId=self._cid)
        self._register(body, uid)

    def _create(
        self,
        body: str,
        shape: int,
        mass: float,
        position: Sequence[float],
        rgba: Sequence[float],
        ghost: bool,
        friction: float | None,
        **geom: Any,
    ) -> None:
        self._new_name(body)
        pos = as_vector(position, 3, "position")
        col = as_vector(rgba, 4, "rgba")
        if not (np.isfinite(mass) and mass >= 0):
            raise ValueError(f"mass must be >= 0, got {mass!r}")
        cid = self._cid
        visual = -1
        if self.visual_shapes:
            visual = p.createVisualShape(shape, rgbaColor=col.tolist(), physicsClientId=cid,
                                         **geom)
        if ghost:
            collision = -1
        else:
            cgeom = {
                k.replace("visualFramePosition", "collisionFramePosition"): v
                for k, v in geom.items()
            }
            collision = p.createCollisionShape(shape, physicsClientId=cid, **cgeom)
        uid = p.createMultiBody(
            baseMass=float(mass),
            baseCollisionShapeIndex=collision,
            baseVisualShapeIndex=visual,
            basePosition=pos.tolist(),
            physicsClientId=cid,
        )
        self._register(body, uid)
        if friction is not None:
            self.set_dynamics(body, -1, lateralFriction=float(friction))

    def create_box(
        self,
        body: str,
        half_extents: Sequence[float],
        mass: float,
        position: Sequence[float],
        rgba: Sequence[float] = (0.8, 0.8, 0.8, 1.0),
        ghost: bool = False,
        friction: float | None = None,
    ) -> None:
        """A box (mass 0: static). `ghost`: visual only, no collision."""
        half = as_vector(half_extents, 3, "half_extents")
        self._create(
            body, p.GEOM_BOX, mass, position, rgba, ghost, friction, halfExtents=half.tolist()
        )

    def create_sphere(
        self,
        body: str,
        radius: float,
        mass: float,
        position: Sequence[float],
        rgba: Sequence[float] = (0.8, 0.8, 0.8, 1.0),
        ghost: bool = False,
    ) -> None:
        """A sphere (mass 0: static). `ghost`: visual only, no collision (e.g. goal markers)."""
        if not (np.isfinite(radius) and radius > 0):
            raise ValueError(f"radius must be > 0, got {radius!r}")
        self._create(body, p.GEOM_SPHERE, mass, position, rgba, ghost, None, radius=float(radius))

    def create_plane(self, z_offset: float = 0.0, body: str = "plane") -> None:
        """A large static floor at height `z_offset`."""
        self.create_box(
            body, (3.0, 3.0, 0.01), 0.0, (0.0, 0.0, z_offset - 0.01), rgba=(0.15, 0.15, 0.15, 1.0)
        )

    def create_table(
        self,
        length: float,
        width: float,
        height: float,
        x_offset: float = 0.0,
        lateral_friction: float | None = None,
        body: str = "table",
    ) -> None:
        """A static table whose top surface is at z = 0, centred at x = `x_offset`."""
        self.create_box(
            body,
            (length / 2, width / 2, height / 2),
            0.0,
            (x_offset, 0.0, -height / 2),
            rgba=(0.95, 0.95, 0.95, 1.0),
            friction=lateral_friction,
        )

    # -- joints and links ----------------------------------------------------------------
    def joint_indices(self, body: str, names: Sequence[str]) -> np.ndarray:
        """Joint indices for joint `names` (in that order); ValueError naming unknown ones."""
        info = self._body(body)
        unknown = [n for n in names if n not in info.joints]
        if unknown:
            raise ValueError(
                f"body '{body}' has no joint(s) {unknown} (it has: {', '.join(info.joints)})"
            )
        return np.array([info.joints[n] for n in names], dtype=np.int64)

    def link_index(self, body: str, link_name: str) -> int:
        """Link index of `link_name` (-1 for the base link)."""
        info = self._body(body)
        if link_name not in info.links:
            raise ValueError(
                f"body '{body}' has no link '{link_name}' (it has: {', '.join(info.links)})"
            )
        return info.links[link_name]

    def joint_limits(self, body: str, joints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """URDF position limits (lower, upper) of `joints`."""
        info = self._body(body)
        lo, hi = [], []
        for j in self._check_joints(info, joints, "joints"):
            ji = p.getJointInfo(info.uid, int(j), physicsClientId=self._cid)
            lo.append(ji[8])
            hi.append(ji[9])
        return np.array(lo), np.array(hi)

    def _check_joints(self, info: _Body, joints: Any, what: str) -> list[int]:
        idx = np.asarray(joints)
        if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
            raise ValueError(f"{what}: expected a 1-D array of joint indices, got {joints!r}")
        n = len(info.joints)
        bad = [int(j) for j in idx if not 0 <= j < n]
        if bad:
            raise ValueError(f"{what}: joint indices {bad} out of range 0..{n - 1}")
        return idx.tolist()

    def get_joint_states(self, body: str, joints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions and velocities of `joints`, one PyBullet call."""
        states = p.getJointStates(self._body(body).uid, joints, physicsClientId=self._cid)
        pos = np.fromiter((s[0] for s in states), dtype=np.float64, count=len(states))
        vel = np.fromiter((s[1] for s in states), dtype=np.float64, count=len(states))
        return pos, vel

    def reset_joints(
        self,
        body: str,
        joints: np.ndarray,
        positions: np.ndarray,
        velocities: np.ndarray | None = None,
    ) -> None:
        """Teleport `joints` to `positions` (velocities zero unless given); no physics."""
        info = self._body(body)
        idx = self._check_joints(info, joints, "joints")
        q = as_vector(positions, len(idx), "positions")
        v = (
            np.zeros_like(q)
            if velocities is None
            else as_vector(velocities, len(idx), "velocities")
        )
        for j, qj, vj in zip(idx, q.tolist(), v.tolist(), strict=True):
            p.resetJointState(info.uid, j, qj, vj, physicsClientId=self._cid)

    def control_joints(
        self,
        body: str,
        joints: np.ndarray,
        targets: np.ndarray,
        forces: np.ndarray,
        max_velocities: np.ndarray | None = None,
    ) -> None:
        """Position-control `joints` towards `targets` with `forces` limits (one array call).

        `max_velocities` caps each joint's motor speed; PyBullet's array call cannot take
        that, so it falls back to one call per joint.
        """
        uid = self._body(body).uid
        if max_velocities is None:
            p.setJointMotorControlArray(
                uid,
                joints,
                p.POSITION_CONTROL,
                targetPositions=targets,
                forces=forces,
                physicsClientId=self._cid,
            )
            return
        for j, t, f, v in zip(joints, targets, forces, max_velocities, strict=True):
            p.setJointMotorControl2(
                uid,
                int(j),
                p.POSITION_CONTROL,
                targetPosition=float(t),
                force=float(f),
                maxVelocity=float(v),
                physicsClientId=self._cid,
            )

    def get_link_pose(self, body: str, link: int) -> tuple[np.ndarray, np.ndarray]:
        """World position and quaternion (x, y, z, w) of a link's URDF frame (-1: base)."""
        uid = self._body(body).uid
        if link == -1:
            return self.get_base_pose(body)
        s = p.getLinkState(uid, link, computeForwardKinematics=1, physicsClientId=self._cid)
        return np.array(s[4]), np.array(s[5])

    def get_link_state(self, body: str, link: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Position, quaternion and linear velocity of a link's URDF frame in one call."""
        s = p.getLinkState(
            self._body(body).uid,
            link,
            computeLinkVelocity=1,
            computeForwardKinematics=1,
            physicsClientId=self._cid,
        )
        return np.array(s[4]), np.array(s[5]), _frame_velocity(s)

    def get_link_velocity(self, body: str, link: int) -> np.ndarray:
        """World linear velocity of a link's URDF frame (-1: base)."""
        if link == -1:
            return self.get_base_velocity(body)[0]
        s = p.getLinkState(
            self._body(body).uid,
            link,
            computeLinkVelocity=1,
            computeForwardKinematics=1,
            physicsClientId=self._cid,
        )
        return _frame_velocity(s)

    # -- bases ------------------------------------------------------------------------------
    def get_base_pose(self, body: str) -> tuple[np.ndarray, np.ndarray]:
        """World position and quaternion (x, y, z, w) of a body's base."""
        pos, orn = p.getBasePositionAndOrientation(self._body(body).uid, physicsClientId=self._cid)
        return np.array(pos), np.array(orn)

    def set_base_pose(
        self,
        body: str,
        position: Sequence[float],
        orientation: Sequence[float] = (0.0, 0.0, 0.0, 1.0),
    ) -> None:
        """Teleport a body's base (its velocity is zeroed)."""
        uid = self._body(body).uid
        pos = as_vector(position, 3, "position")
        orn = as_vector(orientation, 4, "orientation")
        p.resetBasePositionAndOrientation(
            uid, pos.tolist(), orn.tolist(), physicsClientId=self._cid
        )
        p.resetBaseVelocity(uid, [0, 0, 0], [0, 0, 0], physicsClientId=self._cid)

    def get_base_velocity(self, body: str) -> tuple[np.ndarray, np.ndarray]:
        """Linear and angular world velocity of a body's base."""
        lin, ang = p.getBaseVelocity(self._body(body).uid, physicsClientId=self._cid)
        return np.array(lin), np.array(ang)

    # -- kinematics and dynamics -------------------------------------------------------------
    def inverse_kinematics(
        self,
        body: str,
        link: int,
        position: Sequence[float],
        orientation: Sequence[float] | None = None,
        joints: np.ndarray | None = None,
        rest_pose: np.ndarray | None = None,
        max_iterations: int = 100,
        residual_threshold: float = 1e-5,
    ) -> np.ndarray:
        """PyBullet's damped-least-squares IK from the body's current joint state.

        Returns the solution for `joints` (default: all movable joints). With `rest_pose`
        (values for `joints`), null-space IK pulls the solution towards it and keeps it
        inside the URDF limits.
        """
        info = self._body(body)
        pos = as_vector(position, 3, "position")
        orn = None if orientation is None else as_vector(orientation, 4, "orientation")
        wanted = info.movable if joints is None else self._check_joints(info, joints, "joints")
        not_movable = [j for j in wanted if j not in info.movable]
        if not_movable:
            raise ValueError(f"joints {not_movable} of '{body}' are fixed; IK cannot move them")
        kw: dict[str, Any] = {
            "maxNumIterations": int(max_iterations),
            "residualThreshold": float(residual_threshold),
        }
        if orn is not None:
            kw["targetOrientation"] = orn.tolist()
        if rest_pose is not None:
            rest = as_vector(rest_pose, len(wanted), "rest_pose")
            current, _ = self.get_joint_states(body, np.array(info.movable))
            full_rest = current.copy()
            for j, r in zip(wanted, rest, strict=True):
                full_rest[info.movable.index(j)] = r
            kw.update(
                lowerLimits=info.lower.tolist(),
                upperLimits=info.upper.tolist(),
                jointRanges=(info.upper - info.lower).tolist(),
                restPoses=full_rest.tolist(),
            )
        sol = p.calculateInverseKinematics(
            info.uid, link, pos.tolist(), physicsClientId=self._cid, **kw
        )
        return np.array([sol[info.movable.index(j)] for j in wanted])

    def set_dynamics(self, body: str, link: int, **kwargs: Any) -> None:
        """`changeDynamics` on a link (-1: base): lateralFriction, mass, jointDamping, ..."""
        uid = self._body(body).uid
        for k, v in kwargs.items():
            if not np.all(np.isfinite(v)):
                raise ValueError(f"set_dynamics {k}: not finite: {v!r}")
        p.changeDynamics(uid, link, physicsClientId=self._cid, **kwargs)

    def get_dynamics(self, body: str, link: int) -> dict[str, Any]:
        """Mass, lateral friction, local inertia diagonal and joint damping of a link (-1: base).

        Note for callers of `set_dynamics`: PyBullet recomputes a link's inertia from its
        collision shape when only `mass` is changed; pass `localInertiaDiagonal` as well
        to keep the URDF's inertia (scaled).
        """
        d = p.getDynamicsInfo(self._body(body).uid, link, physicsClientId=self._cid)
        out: dict[str, Any] = {"mass": d[0], "lateralFriction": d[1],
                               "localInertiaDiagonal": tuple(d[2])}
        if link >= 0:
            out["jointDamping"] = p.getJointInfo(
                self._body(body).uid, link, physicsClientId=self._cid
            )[6]
        return out

    # -- cameras -----------------------------------------------------------------------------
    def _hardware_renderer(self) -> bool:
        """Use OpenGL in GUI mode, or the EGL plugin in DIRECT mode when `use_egl` loaded it.

        Loaded lazily at the first image the plugin would know none of the bodies already
        in the scene and draw a blank frame, so then TinyRenderer is used instead.
        """
        if self.render_mode == "gui":
            return True
        if self._egl_plugin is None:
            if self._bodies:
                self._egl_plugin = -1  # too late for EGL: it would draw an empty scene
            else:
                self.use_egl()
        return bool(self._egl_plugin is not None and self._egl_plugin >= 0)

    def use_egl(self) -> bool:
        """Load the EGL renderer now, before any body is added, if it draws here.

        Call it right after construction, from the thread that will render (the EGL
        context belongs to it; rendering from another thread crashes), when this client
        will render images. False (TinyRenderer) when ROBO_AGENT_EGL=0, bodies already
        exist, or the probe frame (`egl_draws`) came out blank.
        """
        if self._egl_plugin is not None:
            return self._egl_plugin >= 0
        self._egl_plugin = -1
        if self.render_mode == "gui" or self._bodies or os.environ.get(EGL_ENV, "1") == "0":
            return False
        loader = pkgutil.get_loader("eglRenderer")
        if loader is not None and egl_draws():
            with _c_output_to_log(1), _c_output_to_log(2):
                self._egl_plugin = p.loadPlugin(
                    loader.get_filename(), "_eglRendererPlugin", physicsClientId=self._cid
                )
        return self._egl_plugin >= 0

    @property
    def renderer(self) -> str:
        """Which renderer `render_rgb` uses: 'opengl' (GUI), 'egl' or 'tiny'."""
        if self.render_mode == "gui":
            return "opengl"
        return "egl" if self._hardware_renderer() else "tiny"

    def render_rgb(
        self,
        width: int = 480,
        height: int = 360,
        target: Sequence[float] = DEFAULT_CAMERA["target"],
        distance: float = DEFAULT_CAMERA["distance"],
        yaw: float = DEFAULT_CAMERA["yaw"],
        pitch: float = DEFAULT_CAMERA["pitch"],
        fov: float = 60.0,
    ) -> np.ndarray:
        """An (height, width, 3) uint8 RGB image from an orbit camera around `target`.

        EGL is used only after a probe frame showed it draws (`egl_draws`); otherwise
        TinyRenderer renders on the CPU (`renderer` says which).
        """
        if int(width) < 1 or int(height) < 1:
            raise ValueError(f"image size must be positive, got {width}x{height}")
        tgt = as_vector(target, 3, "target")
        cid = self._cid
        view = p.computeViewMatrixFromYawPitchRoll(
            tgt.tolist(), float(distance), float(yaw), float(pitch), 0.0, 2, physicsClientId=cid
        )
        proj = p.computeProjectionMatrixFOV(
            float(fov), width / height, 0.05, 20.0, physicsClientId=cid
        )
        renderer = p.ER_BULLET_HARDWARE_OPENGL if self._hardware_renderer() else p.ER_TINY_RENDERER
        # The EGL plugin prints its GL context details on the first image: log them.
        first = self._images == 0 and self.render_mode == "direct"
        with _c_output_to_log(1) if first else nullcontext():
            _, _, rgba, _, _ = p.getCameraImage(
                int(width), int(height), view, proj, renderer=renderer,
                flags=p.ER_NO_SEGMENTATION_MASK, physicsClientId=cid,
            )
        self._images += 1
        img = np.asarray(rgba, dtype=np.uint8).reshape(int(height), int(width), 4)
        return np.ascontiguousarray(img[:, :, :3])

    # -- state snapshots -----------------------------------------------------------------------
    def save_state(self) -> int:
        """Snapshot the whole physics state in memory; returns an id for `restore_state`."""
        return p.saveState(physicsClientId=self._cid)

    def restore_state(self, state_id: int) -> None:
        """Restore a snapshot taken by `save_state` (same bodies must still exist)."""
        p.restoreState(stateId=int(state_id), physicsClientId=self._cid)

    def remove_state(self, state_id: int) -> None:
        """Free a snapshot taken by `save_state`."""
        p.removeState(int(state_id), physicsClientId=self._cid)
