"""Domain randomisation options for the sim envs: off by default, seeded by `reset(seed=...)`.

Every option is sampled once per episode at `reset` from the env's `np_random`, so the
same seed gives the same physical parameters. Ranges are (low, high) multipliers of the
nominal value (friction, masses) or absolute values (joint damping).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any


def _check_range(name: str, value: tuple[float, float] | None, minimum: float) -> None:
    if value is None:
        return
    if len(value) != 2 or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in value):
        raise ValueError(f"randomization.{name}: expected (low, high) numbers, got {value!r}")
    lo, hi = value
    if lo < minimum or hi < lo:
        raise ValueError(f"randomization.{name}: need {minimum} <= low <= high, got {value!r}")


@dataclass(frozen=True)
class Randomization:
    """Per-episode physics and sensing randomisation (all off by default).

    Attributes:
        friction: multiplier range on the lateral friction of the table, the object and the
            gripper fingers.
        object_mass: multiplier range on the object's mass (tasks with an object).
        link_mass: multiplier range on every robot link's mass.
        joint_damping: absolute range (N·m·s/rad) for each arm joint's damping.
        observation_noise: std of zero-mean Gaussian noise added to the `observation`
            vector (not to the goals, so rewards stay exact).
        action_latency: maximum delay in control steps; each episode draws a delay in
            [0, action_latency] and actions take effect that many steps late.
    """

    friction: tuple[float, float] | None = None
    object_mass: tuple[float, float] | None = None
    link_mass: tuple[float, float] | None = None
    joint_damping: tuple[float, float] | None = None
    observation_noise: float = 0.0
    action_latency: int = 0

    def __post_init__(self) -> None:
        _check_range("friction", self.friction, 0.0)
        _check_range("object_mass", self.object_mass, 1e-6)
        _check_range("link_mass", self.link_mass, 1e-6)
        _check_range("joint_damping", self.joint_damping, 0.0)
        if not (math.isfinite(self.observation_noise) and self.observation_noise >= 0):
            raise ValueError(
                f"randomization.observation_noise: need a std >= 0, got {self.observation_noise!r}"
            )
        if int(self.action_latency) != self.action_latency or self.action_latency < 0:
            raise ValueError(
                f"randomization.action_latency: need an integer >= 0, got {self.action_latency!r}"
            )

    @property
    def enabled(self) -> bool:
        """Whether any option differs from the default (off)."""
        return self != Randomization()

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the options (JSON/YAML friendly)."""
        return asdict(self)

    @classmethod
    def from_any(cls, value: Randomization | dict[str, Any] | None) -> Randomization:
        """Accept a `Randomization`, a dict of its fields (e.g. from YAML/JSON) or None."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, dict):
            unknown = set(value) - set(cls.__dataclass_fields__)
            if unknown:
                raise ValueError(
                    f"randomization: unknown option(s) {sorted(unknown)} "
                    f"(known: {sorted(cls.__dataclass_fields__)})"
                )
            fixed = {k: tuple(v) if isinstance(v, list) else v for k, v in value.items()}
            return cls(**fixed)
        raise ValueError(f"randomization: expected Randomization, dict or None, got {value!r}")

    @classmethod
    def default_strong(cls) -> Randomization:
        """A reasonable sim-to-real preset."""
        return cls(friction=(0.7, 1.3), object_mass=(0.7, 1.3), link_mass=(0.9, 1.1),
                   joint_damping=(0.0, 0.5), observation_noise=0.002, action_latency=1)
