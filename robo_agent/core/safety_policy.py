"""Safety policy: built-in hard limits, and the YAML policy that may only tighten them.

Hard limits live in code (`BUILTIN_HARD_LIMITS`) so no file, tool argument, LLM or
approval can loosen them. A policy file (`config/safety/*.yaml`) may make each of them
stricter (a larger joint margin, a lower velocity scale, a smaller workspace, more
keep-out boxes, a shorter stale-state timeout); a policy that tries to loosen one is
rejected at load time with a message naming the key and the built-in bound. Soft rules
(confirmation, rate limits, dry-run) come from the policy alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from robo_agent.core.paths import safety_dir
from robo_agent.core.tools import TOOLS

NEVER_RATE_LIMITED = ("stop", "emergency_stop", "reset_emergency_stop")


class SafetyPolicyError(ValueError):
    """A safety policy file could not be read, parsed, validated, or tried to loosen a limit."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Box(_Strict):
    """An axis-aligned box in the robot base frame (metres)."""

    name: str = "box"
    min: tuple[float, float, float]
    max: tuple[float, float, float]
    # Keep-out boxes: "arm" checks every link; "end_effector" only the end-effector point
    # (for zones the arm's own lower links always occupy, such as the base column).
    applies_to: Literal["arm", "end_effector"] = "arm"

    @model_validator(mode="after")
    def _ordered(self) -> Box:
        if any(lo >= hi for lo, hi in zip(self.min, self.max, strict=True)):
            raise ValueError(f"box '{self.name}': every min must be below its max")
        return self

    def contains(self, p: Any) -> bool:
        """Whether point p = (x, y, z) lies inside (boundary included)."""
        return all(lo <= float(v) <= hi for lo, v, hi in zip(self.min, p, self.max, strict=True))

    def intersect(self, other: Box) -> Box:
        lo = tuple(max(a, b) for a, b in zip(self.min, other.min, strict=True))
        hi = tuple(min(a, b) for a, b in zip(self.max, other.max, strict=True))
        if any(a >= b for a, b in zip(lo, hi, strict=True)):
            raise SafetyPolicyError(f"workspace {other} does not overlap the built-in {self}")
        return Box(name=other.name, min=lo, max=hi)  # type: ignore[arg-type]


class HardLimits(_Strict):
    """Limits the envelope always enforces. Units: rad, fraction, rad, s, m."""

    joint_margin: float = Field(ge=0.0, description="kept away from each URDF joint limit, rad")
    velocity_scale: float = Field(gt=0.0, le=1.0, description="fraction of URDF velocity limits")
    max_step: float = Field(gt=0.0, description="largest joint change in one command, rad")
    stale_state_timeout: float = Field(gt=0.0, description="no motion if /joint_states is older, s")
    position_tolerance: float = Field(
        gt=0.0, description="'reached' when every joint is this close, rad"
    )
    workspace: Box
    keep_out: tuple[Box, ...] = ()


# The ceiling for every policy. Workspace: a generous box around the base whose floor is
# the mounting surface (table plane), for every link; keep-out: the column above the base,
# for the end effector (the arm's lower links live in it).
BUILTIN_HARD_LIMITS = HardLimits(
    joint_margin=0.02,
    velocity_scale=0.5,
    max_step=3.2,
    stale_state_timeout=0.5,
    position_tolerance=0.03,
    workspace=Box(name="builtin_workspace", min=(-1.0, -1.0, 0.0), max=(1.0, 1.0, 1.4)),
    keep_out=(Box(name="base_column", min=(-0.12, -0.12, -0.1), max=(0.12, 0.12, 0.3),
                  applies_to="end_effector"),),
)


class HardLimitsOverride(_Strict):
    """The `hard_limits:` section of a policy: each key may only tighten the built-in one."""

    joint_margin: float | None = Field(default=None, ge=0.0)
    velocity_scale: float | None = Field(default=None, gt=0.0, le=1.0)
    max_step: float | None = Field(default=None, gt=0.0)
    stale_state_timeout: float | None = Field(default=None, gt=0.0)
    position_tolerance: float | None = Field(default=None, gt=0.0)
    workspace: Box | None = None
    keep_out: tuple[Box, ...] = ()


class RateLimit(_Strict):
    """At most `max_calls` calls within any sliding window of `period` seconds."""

    max_calls: int = Field(ge=1)
    period: float = Field(gt=0.0)


class Confirmation(_Strict):
    required: bool = Field(default=False, description="motion tools need confirm_plan first")
    plan_ttl: float = Field(default=120.0, gt=0.0, description="seconds a plan id stays valid")


class SafetyPolicy(_Strict):
    """A parsed policy file. `rate_limits` keys are tool names or 'motion' (all motion tools)."""

    name: str = "unnamed"
    hard_limits: HardLimitsOverride = HardLimitsOverride()
    confirmation: Confirmation = Confirmation()
    rate_limits: dict[str, RateLimit] = Field(default_factory=dict)
    dry_run: bool = False
    source: Path | None = Field(default=None, exclude=True)

    @field_validator("rate_limits")
    @classmethod
    def _known_tools(cls, limits: dict[str, RateLimit]) -> dict[str, RateLimit]:
        for key in limits:
            if key in NEVER_RATE_LIMITED:
                raise ValueError(f"'{key}' must always be available and cannot be rate-limited")
            if key != "motion" and key not in TOOLS:
                raise ValueError(f"unknown tool '{key}' (use a tool name or 'motion')")
        return limits

    def rate_limit_for(self, tool: str) -> RateLimit | None:
        if tool in NEVER_RATE_LIMITED:
            return None
        if tool in self.rate_limits:
            return self.rate_limits[tool]
        if TOOLS.get(tool) is not None and TOOLS[tool].moves_robot:
            return self.rate_limits.get("motion")
        return None

    def effective_limits(self, builtin: HardLimits = BUILTIN_HARD_LIMITS) -> HardLimits:
        """Built-in limits tightened by this policy; raises if the policy tries to loosen one."""
        o = self.hard_limits
        where = f"{self.source or self.name}: hard_limits"

        def tighter(key: str, value: float | None, bound: float, larger_is_stricter: bool) -> float:
            if value is None:
                return bound
            loosens = value < bound if larger_is_stricter else value > bound
            if loosens:
                word = "below" if larger_is_stricter else "above"
                raise SafetyPolicyError(
                    f"{where}.{key} = {value} is {word} the built-in hard limit {bound}; "
                    "a policy may only tighten hard limits"
                )
            return value

        b = builtin
        workspace = b.workspace.intersect(o.workspace) if o.workspace else b.workspace
        return HardLimits(
            joint_margin=tighter("joint_margin", o.joint_margin, b.joint_margin, True),
            velocity_scale=tighter("velocity_scale", o.velocity_scale, b.velocity_scale, False),
            max_step=tighter("max_step", o.max_step, builtin.max_step, False),
            stale_state_timeout=tighter(
                "stale_state_timeout", o.stale_state_timeout, builtin.stale_state_timeout, False
            ),
            position_tolerance=tighter(
                "position_tolerance", o.position_tolerance, builtin.position_tolerance, False
            ),
            workspace=workspace,
            keep_out=builtin.keep_out + o.keep_out,
        )


def _format(err: ValidationError) -> str:
    return "\n".join(
        f"  key '{'.'.join(str(p) for p in e['loc']) or '<top level>'}': {e['msg']}"
        for e in err.errors()
    )


def parse_policy(data: Any, source: str | Path = "<memory>") -> SafetyPolicy:
    """Validate a mapping as a policy (and check it only tightens the hard limits)."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SafetyPolicyError(f"{source}: expected a mapping at top level")
    try:
        policy = SafetyPolicy.model_validate(data)
    except ValidationError as err:
        raise SafetyPolicyError(f"{source}: invalid safety policy:\n{_format(err)}") from None
    if source != "<memory>":
        policy = policy.model_copy(update={"source": Path(source)})
    policy.effective_limits()  # raises if a hard limit is loosened
    return policy


def load_policy(name_or_path: str | Path | None = None) -> SafetyPolicy:
    """Load a policy by name from `config/safety/` (default 'default') or by YAML path."""
    text = str(name_or_path) if name_or_path not in (None, "") else "default"
    if text.endswith((".yaml", ".yml")) or "/" in text:
        path = Path(text)
    else:
        path = safety_dir() / f"{text}.yaml"
        if not path.is_file():
            known = sorted(p.stem for p in safety_dir().glob("*.yaml"))
            raise SafetyPolicyError(f"unknown safety policy '{text}' (known: {known})")
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise SafetyPolicyError(f"{path}: no such safety policy file") from None
    except yaml.YAMLError as err:
        raise SafetyPolicyError(f"{path}: malformed YAML: {err}") from None
    return parse_policy(raw, path)
