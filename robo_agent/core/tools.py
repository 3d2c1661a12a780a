"""The one registry of robot tools: typed arguments, LLM-facing descriptions, results.

Every interface (OpenAI function calling, MCP, the ROS JSON tool-call topic, the offline
command grammar) takes its tool definitions from `TOOLS`, so a tool is described and
validated in exactly one place. This module is pure: it knows nothing about ROS or
PyBullet; `robo_agent.ros.tool_executor.RosToolExecutor` executes the calls.

Units follow REP-103 (metres, radians, seconds) and poses are in the robot's base frame
(REP-105 `base_link`, named by the robot description's `base_frame`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

ERROR_CODES = (
    "unknown_tool",
    "invalid_arguments",
    "refused",
    "estop",
    "stale_state",
    "rate_limited",
    "timeout",
    "unavailable",
    "needs_confirmation",
)


class ToolError(Exception):
    """A tool-level failure with a machine-readable `code` and a message naming the limit."""

    def __init__(self, code: str, message: str) -> None:
        if code not in ERROR_CODES:
            raise ValueError(f"unknown ToolError code {code!r}; expected one of {ERROR_CODES}")
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class _Args(BaseModel):
    # strict: "0.5" is not a number and 1 is not a bool; no NaN/inf anywhere; no extra keys.
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)


Duration = Field(
    default=None,
    gt=0.0,
    le=60.0,
    description="Motion time in seconds. Omit to let the safety envelope pick the shortest "
    "duration that respects the velocity cap (a shorter one is stretched, never rushed).",
)


class NoArgs(_Args):
    """The tool takes no arguments."""


class MoveJointsArgs(_Args):
    positions: list[float] | None = Field(
        default=None,
        min_length=1,
        description="Full joint vector in radians, in the robot description's joint order. "
        "Give either this or `joints`.",
    )
    joints: dict[str, float] | None = Field(
        default=None,
        min_length=1,
        description="Target positions in radians keyed by joint name, e.g. "
        '{"panda_joint1": 0.3}. Joints not named keep their current position.',
    )
    duration: float | None = Duration

    @model_validator(mode="after")
    def _exactly_one(self) -> MoveJointsArgs:
        if (self.positions is None) == (self.joints is None):
            raise ValueError("give exactly one of 'positions' (full vector) or 'joints' (by name)")
        return self


def _vec(n: int, what: str) -> Any:
    return Field(min_length=n, max_length=n, description=what)


class MoveEndEffectorArgs(_Args):
    position: list[float] = _vec(3, "Target end-effector position [x, y, z] in metres, base frame.")
    orientation: list[float] | None = Field(
        default=None,
        min_length=4,
        max_length=4,
        description="Target orientation as a unit quaternion [x, y, z, w] in the base frame. "
        "Omit to keep the current orientation.",
    )
    duration: float | None = Duration

    @model_validator(mode="after")
    def _unit_quaternion(self) -> MoveEndEffectorArgs:
        if self.orientation is not None:
            norm = math.sqrt(sum(v * v for v in self.orientation))
            if abs(norm - 1.0) > 1e-3:
                raise ValueError(f"orientation must be a unit quaternion (norm {norm:.4f})")
        return self


class MoveEndEffectorRelativeArgs(_Args):
    dx: float = Field(default=0.0, description="Translation along base-frame x, metres.")
    dy: float = Field(default=0.0, description="Translation along base-frame y, metres.")
    dz: float = Field(default=0.0, description="Translation along base-frame z (up), metres.")
    droll: float = Field(default=0.0, description="Rotation about base-frame x, radians.")
    dpitch: float = Field(default=0.0, description="Rotation about base-frame y, radians.")
    dyaw: float = Field(default=0.0, description="Rotation about base-frame z, radians.")
    duration: float | None = Duration


class SetGripperArgs(_Args):
    action: Literal["open", "close"] | None = Field(
        default=None, description="'open' (fully open) or 'close' (fully closed). Or give `width`."
    )
    width: float | None = Field(
        default=None, ge=0.0, description="Opening between the fingers in metres."
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> SetGripperArgs:
        if (self.action is None) == (self.width is None):
            raise ValueError("give exactly one of 'action' ('open'/'close') or 'width' (m)")
        return self


class EmergencyStopArgs(_Args):
    reason: str = Field(default="", max_length=500, description="Why, for the audit log.")


class CameraImageArgs(_Args):
    width: int = Field(default=320, ge=16, le=1280, description="Image width in pixels.")
    height: int = Field(default=240, ge=16, le=960, description="Image height in pixels.")


class RunPolicyArgs(_Args):
    name: str = Field(min_length=1, max_length=200, description="Policy name from list_policies.")
    goal: list[float] | None = Field(
        default=None, min_length=3, max_length=3,
        description="Goal [x, y, z] in metres, robot base frame (reach policies).",
    )
    duration: float | None = Field(
        default=None, gt=0.0, le=600.0, description="Stop after this many seconds."
    )


class ConfirmPlanArgs(_Args):
    plan_id: str = Field(
        min_length=1,
        max_length=64,
        description="The single-use plan id returned with error 'needs_confirmation'.",
    )


@dataclass(frozen=True)
class ToolSpec:
    """One tool: its name, a description written for an LLM, its argument model."""

    name: str
    description: str
    args_model: type[BaseModel]
    moves_robot: bool
    # A human act (releasing an e-stop, approving a held plan): never offered to a model,
    # refused when a model asks for it (`robo_agent.core.operator`); only a human channel calls it.
    human_only: bool = False


_MEASURED = (
    " Waits until the motion ends and returns what was measured on /joint_states "
    "(reached within tolerance or not, final error), not what was commanded. Every motion "
    "passes the safety envelope (joint range, velocity cap, max step, workspace box, "
    "keep-out zones); it may be clipped or refused, and may need human confirmation "
    "(error 'needs_confirmation': the application asks the person; nothing moves until "
    "they approve)."
)

_SPECS = [
    ToolSpec(
        "get_robot_state",
        "Read the arm's current state: joint positions (rad) and velocities (rad/s) by joint "
        "name, end-effector pose in the base frame (position m, quaternion xyzw), gripper "
        "opening (m), age of the last /joint_states message (s) and whether the e-stop is "
        "latched. Use it before planning any motion.",
        NoArgs,
        False,
    ),
    ToolSpec(
        "move_joints",
        "Move the arm to joint positions in radians, either the full vector ('positions', in "
        "the robot's joint order) or some joints by name ('joints'); optional 'duration' (s)."
        + _MEASURED,
        MoveJointsArgs,
        True,
    ),
    ToolSpec(
        "move_end_effector",
        "Move the end effector to an absolute pose in the robot base frame: 'position' "
        "[x, y, z] in metres (x forward, y left, z up) and optional 'orientation' quaternion "
        "[x, y, z, w]. Solved with inverse kinematics on the robot's URDF; refused when "
        "unreachable or outside the workspace." + _MEASURED,
        MoveEndEffectorArgs,
        True,
    ),
    ToolSpec(
        "move_end_effector_relative",
        "Move the end effector by an offset from where it is now: dx, dy, dz in metres and "
        "optional droll, dpitch, dyaw in radians, all about the base frame axes. Good for "
        "small corrections such as 'up 5 cm' (dz=0.05)." + _MEASURED,
        MoveEndEffectorRelativeArgs,
        True,
    ),
    ToolSpec(
        "set_gripper",
        "Open or close the gripper ('action': 'open'|'close') or set the opening 'width' in "
        "metres (clipped to the gripper's range). Returns the measured opening; a width "
        "larger than measured after closing usually means an object is held.",
        SetGripperArgs,
        True,
    ),
    ToolSpec(
        "stop",
        "Stop the arm now: hold the current measured position. Always allowed, also during "
        "an e-stop. Use it to cancel a motion; it does not latch anything.",
        NoArgs,
        False,
    ),
    ToolSpec(
        "emergency_stop",
        "Latch the emergency stop for the whole robot (every interface obeys it): the arm "
        "holds position and every motion tool is refused until a person releases it (a model "
        "cannot). Use whenever a person or the scene may be in danger.",
        EmergencyStopArgs,
        False,
    ),
    ToolSpec(
        "reset_emergency_stop",
        "Human operator only: release a latched emergency stop so motion tools work again. "
        "Never offered to a model; the person releases it at the terminal or operator console.",
        EmergencyStopArgs,
        False,
        human_only=True,
    ),
    ToolSpec(
        "get_camera_image",
        "Take a picture of the scene from the simulated/real camera. Returns the image (MCP) "
        "or a short description and the saved PNG path (function calling).",
        CameraImageArgs,
        False,
    ),
    ToolSpec(
        "get_object_poses",
        "List the objects in the scene with their poses in the base frame (position m, "
        "quaternion xyzw) and how old each measurement is (s).",
        NoArgs,
        False,
    ),
    ToolSpec(
        "list_policies",
        "List the learned control policies installed for this robot (name, task, score).",
        NoArgs,
        False,
    ),
    ToolSpec(
        "run_policy",
        "Run an installed learned policy on the arm, through the same safety envelope, until "
        "it finishes, 'duration' (s) elapses or stop_policy is called.",
        RunPolicyArgs,
        True,
    ),
    ToolSpec("stop_policy", "Stop the learned policy that is running, if any.", NoArgs, False),
    ToolSpec("policy_status", "State of the running (or last) learned policy: name, goal, "
             "finished or not, final error.", NoArgs, False),
    ToolSpec(
        "confirm_plan",
        "Human operator only: execute a motion that was held for confirmation, by its "
        "single-use 'plan_id'. Never offered to a model; the application asks the person.",
        ConfirmPlanArgs,
        True,
        human_only=True,
    ),
]

TOOLS: dict[str, ToolSpec] = {spec.name: spec for spec in _SPECS}
HUMAN_ONLY: frozenset[str] = frozenset(s.name for s in _SPECS if s.human_only)


def model_tools() -> list[ToolSpec]:
    """The tools a model (LLM, MCP client, topic text) may see and call."""
    return [spec for spec in TOOLS.values() if not spec.human_only]


def tool_names() -> list[str]:
    """Names of all tools, in registry order."""
    return list(TOOLS)


def get_tool(name: str) -> ToolSpec:
    """The spec of `name`, or ToolError('unknown_tool') listing the known names."""
    try:
        return TOOLS[name]
    except (KeyError, TypeError):
        raise ToolError(
            "unknown_tool", f"unknown tool {name!r}; known tools: {', '.join(TOOLS)}"
        ) from None


def args_json_schema(name: str) -> dict[str, Any]:
    """JSON schema of a tool's arguments (an object schema, no $defs needed)."""
    schema = get_tool(name).args_model.model_json_schema()
    schema.pop("title", None)
    schema.setdefault("properties", {})
    schema["additionalProperties"] = False
    return schema


def openai_tools() -> list[dict[str, Any]]:
    """Tool definitions in OpenAI function-calling format (no human-only tools)."""
    return [
        {
            "type": "function",
            "function": {
                "name": spec.name,
                "description": spec.description,
                "parameters": args_json_schema(spec.name),
            },
        }
        for spec in model_tools()
    ]


def _format_validation(name: str, err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "arguments"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unexpected argument"
        elif e["type"] == "missing":
            msg = "missing required argument"
        parts.append(f"{loc}: {msg}")
    allowed = ", ".join(get_tool(name).args_model.model_fields) or "none"
    return f"invalid arguments for {name}: " + "; ".join(parts) + f" (allowed arguments: {allowed})"


def validate_call(name: str, arguments: dict[str, Any] | str | None) -> BaseModel:
    """Parse and validate one call; `arguments` may be a dict, JSON text, or None/'' for {}.

    Raises ToolError('unknown_tool') or ToolError('invalid_arguments') with a message that
    names the offending argument and the limit.
    """
    spec = get_tool(name)
    if arguments is None or (isinstance(arguments, str) and not arguments.strip()):
        arguments = {}
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError as err:
            raise ToolError(
                "invalid_arguments", f"arguments for {name} are not valid JSON: {err}"
            ) from None
    if not isinstance(arguments, dict):
        raise ToolError(
            "invalid_arguments",
            f"arguments for {name} must be a JSON object, got {type(arguments).__name__}",
        )
    try:
        return spec.args_model.model_validate(arguments)
    except ValidationError as err:
        raise ToolError("invalid_arguments", _format_validation(name, err)) from None


class ToolResult(BaseModel):
    """What a tool call did, as measured. `to_text()` is what an LLM sees."""

    model_config = ConfigDict(extra="forbid")

    tool: str
    ok: bool
    message: str
    data: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    image_png: bytes | None = Field(default=None, exclude=True)
    image_path: str | None = None

    @classmethod
    def failure(cls, tool: str, err: ToolError, data: dict[str, Any] | None = None) -> ToolResult:
        """A result for a ToolError."""
        return cls(tool=tool, ok=False, message=err.message, error=err.code, data=data or {})

    def to_text(self) -> str:
        """Compact JSON (no image bytes) for an LLM or the ROS result topic."""
        return self.model_dump_json(exclude={"image_png"}, exclude_none=True)


RESULT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "What the tool did, as measured (ToolResult without the image bytes).",
    "properties": {
        "tool": {"type": "string"},
        "ok": {"type": "boolean"},
        "message": {"type": "string", "description": "Human-readable, names any limit hit."},
        "data": {"type": "object", "description": "Measured values (SI units, base frame)."},
        "error": {"type": "string", "enum": list(ERROR_CODES)},
        "image_path": {"type": "string"},
    },
    "required": ["tool", "ok", "message", "data"],
    "additionalProperties": False,
}
"""JSON schema of `ToolResult.to_text()`, the structured result of every tool (MCP)."""


@runtime_checkable
class ToolExecutor(Protocol):
    """Executes tool calls. Never raises for tool-level problems (they come back as
    ToolResult(ok=False, error=code)); raises only on programming errors."""

    def call(self, name: str, arguments: dict[str, Any] | str | None) -> ToolResult: ...

    def close(self) -> None: ...
