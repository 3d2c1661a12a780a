"""Robot descriptions: one YAML per robot beside its URDF, read by sim, bridge, runner and safety.

A description names the arm joints in order with their limits (REP-103: radians, rad/s,
N·m), the home pose, the end-effector link, the gripper (if any) and the ros2_control
controllers the robot is driven through. `load_robot` validates one and fails with a
message that names the file, the key and what was expected, so a user can add a robot
by dropping a URDF and a YAML into `config/robots/` (or any directory they pass).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from robo_agent.core.paths import robots_dir

PYBULLET_DATA_PREFIX = "pybullet_data:"


class RobotSpecError(ValueError):
    """A robot description could not be found, parsed or validated."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class JointSpec(_Strict):
    """One actuated arm joint; limits in SI units (rad, rad/s, N·m)."""

    name: str = Field(min_length=1)
    lower: float
    upper: float
    velocity: float = Field(gt=0, description="velocity limit, rad/s")
    effort: float = Field(gt=0, description="effort limit, N·m")

    @model_validator(mode="after")
    def _range(self) -> JointSpec:
        if not (math.isfinite(self.lower) and math.isfinite(self.upper)):
            raise ValueError("lower and upper must be finite")
        if self.lower >= self.upper:
            raise ValueError(f"lower ({self.lower}) must be below upper ({self.upper})")
        return self


class GripperSpec(_Strict):
    """A gripper whose joints all move together.

    The opening width (m, between the fingers) maps linearly onto each joint's position:
    width 0 -> `joint_lower`, width `max_width` -> `joint_upper`.
    """

    joints: list[str] = Field(min_length=1)
    joint_lower: float
    joint_upper: float
    max_width: float = Field(gt=0, description="fully open width, m")
    effort: float = Field(gt=0, description="per-joint force/effort limit")

    @model_validator(mode="after")
    def _range(self) -> GripperSpec:
        if self.joint_lower >= self.joint_upper:
            raise ValueError("joint_lower must be below joint_upper")
        return self

    def joint_positions(self, width: float) -> list[float]:
        """Joint positions for an opening width, clamped to [0, max_width]."""
        frac = min(max(width / self.max_width, 0.0), 1.0)
        q = self.joint_lower + frac * (self.joint_upper - self.joint_lower)
        return [q] * len(self.joints)

    def width(self, joint_positions: Iterable[float]) -> float:
        """Opening width from measured joint positions (mean over the gripper joints)."""
        qs = list(joint_positions)
        frac = (sum(qs) / len(qs) - self.joint_lower) / (self.joint_upper - self.joint_lower)
        return frac * self.max_width


class ControllerSpec(_Strict):
    """ros2_control controller names; topics follow the controllers' conventions."""

    arm: str = Field(default="arm_controller", description="joint_trajectory_controller")
    position: str = Field(default="position_controller", description="forward_command_controller")
    gripper: str | None = Field(
        default="gripper_controller", description="forward_command_controller"
    )

    @property
    def trajectory_topic(self) -> str:
        return f"/{self.arm}/joint_trajectory"

    @property
    def position_topic(self) -> str:
        return f"/{self.position}/commands"

    @property
    def gripper_topic(self) -> str | None:
        return f"/{self.gripper}/commands" if self.gripper else None


class RobotSpec(_Strict):
    """A validated robot description. Joints are always matched by name, never by order."""

    name: str = Field(min_length=1, pattern=r"^[a-z][a-z0-9_]*$")
    description: str = ""
    urdf: str = Field(description="'pybullet_data:<relative path>' or a path relative to the YAML")
    base_frame: str = "base_link"
    base_position: tuple[float, float, float] = (0.0, 0.0, 0.0)
    base_orientation: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0)
    ee_link: str
    joints: list[JointSpec] = Field(min_length=1)
    home: list[float]
    gripper: GripperSpec | None = None
    controllers: ControllerSpec = ControllerSpec()
    camera_topic: str = Field(default="/camera/image_raw", pattern=r"^/[A-Za-z0-9_/]+$",
                              description="sensor_msgs/Image topic of the scene camera")
    source: Path | None = Field(default=None, exclude=True)

    @field_validator("joints")
    @classmethod
    def _unique(cls, joints: list[JointSpec]) -> list[JointSpec]:
        names = [j.name for j in joints]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"duplicate joint names: {dup}")
        return joints

    @model_validator(mode="after")
    def _home_within_limits(self) -> RobotSpec:
        if len(self.home) != len(self.joints):
            raise ValueError(
                f"home has {len(self.home)} values but there are {len(self.joints)} joints"
            )
        for j, q in zip(self.joints, self.home, strict=True):
            if not (j.lower <= q <= j.upper):
                raise ValueError(f"home position {q} of {j.name} outside [{j.lower}, {j.upper}]")
        if self.gripper and set(self.gripper.joints) & set(self.joint_names):
            raise ValueError("gripper joints must not also be arm joints")
        return self

    # -- convenience views ---------------------------------------------------------------
    @property
    def joint_names(self) -> list[str]:
        return [j.name for j in self.joints]

    @property
    def dof(self) -> int:
        return len(self.joints)

    @property
    def lower(self) -> np.ndarray:
        return np.array([j.lower for j in self.joints], dtype=np.float64)

    @property
    def upper(self) -> np.ndarray:
        return np.array([j.upper for j in self.joints], dtype=np.float64)

    @property
    def velocity_limits(self) -> np.ndarray:
        return np.array([j.velocity for j in self.joints], dtype=np.float64)

    @property
    def effort_limits(self) -> np.ndarray:
        return np.array([j.effort for j in self.joints], dtype=np.float64)

    @property
    def home_array(self) -> np.ndarray:
        return np.array(self.home, dtype=np.float64)

    def urdf_path(self, pybullet_data_dir: str | Path | None = None) -> Path:
        """Resolve `urdf`. The sim facade passes `pybullet_data.getDataPath()`."""
        if self.urdf.startswith(PYBULLET_DATA_PREFIX):
            if pybullet_data_dir is None:
                raise RobotSpecError(
                    f"robot '{self.name}': urdf '{self.urdf}' needs the pybullet_data directory"
                )
            return Path(pybullet_data_dir) / self.urdf[len(PYBULLET_DATA_PREFIX) :]
        path = Path(self.urdf)
        if not path.is_absolute() and self.source is not None:
            path = self.source.parent / path
        return path


def _format_errors(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "<top level>"
        lines.append(f"  key '{loc}': {e['msg']}")
    return "\n".join(lines)


def parse_robot(data: Any, source: Path | str = "<memory>") -> RobotSpec:
    """Validate an already-parsed mapping; errors name `source`, the key and the problem."""
    if not isinstance(data, dict):
        raise RobotSpecError(
            f"{source}: expected a mapping at top level, got {type(data).__name__}"
        )
    try:
        spec = RobotSpec.model_validate(data)
    except ValidationError as err:
        raise RobotSpecError(
            f"{source}: invalid robot description:\n{_format_errors(err)}"
        ) from None
    return spec.model_copy(update={"source": Path(source)}) if source != "<memory>" else spec


def load_robot(name_or_path: str | Path, directory: Path | None = None) -> RobotSpec:
    """Load a robot by name (from `directory`, default `config/robots/`) or by YAML path."""
    text = str(name_or_path)
    if text.endswith((".yaml", ".yml")) or "/" in text:
        path = Path(text)
    else:
        folder = directory or robots_dir()
        path = folder / f"{text}.yaml"
        if not path.is_file():
            known = ", ".join(robot_names(folder)) or "none"
            raise RobotSpecError(f"unknown robot '{text}' (known: {known}; looked in {folder})")
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise RobotSpecError(f"{path}: no such robot description file") from None
    except yaml.YAMLError as err:
        raise RobotSpecError(f"{path}: malformed YAML: {err}") from None
    spec = parse_robot(raw, path)
    if path.stem != spec.name:
        raise RobotSpecError(
            f"{path}: key 'name' is '{spec.name}' but the file is '{path.stem}.yaml'"
        )
    return spec


def robot_names(directory: Path | None = None) -> list[str]:
    folder = directory or robots_dir()
    return sorted(p.stem for p in folder.glob("*.yaml"))


def list_robots(directory: Path | None = None) -> list[RobotSpec]:
    return [load_robot(n, directory) for n in robot_names(directory)]
