"""Offline command grammar: plain English robot commands -> tool calls, no LLM needed.

Used by `robo-agent chat` and the `agent` ROS node when no LLM endpoint is configured.
It is deliberately small and strict: a phrase it does not understand is an error that
lists what it does understand, never a guess. Distances need a unit (cm, mm, m, in),
angles are in degrees unless `rad` is given, and directions are in the REP-103 robot
base frame: forward = +x, left = +y, up = +z.

    >>> [c.name for c in parse_command("open the gripper and move 5 cm up")]
    ['set_gripper', 'move_end_effector_relative']

Every call this module produces validates against the tool registry
(`robo_agent.core.tools.validate_call`); the executor and the safety envelope still
decide whether it may run.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from robo_agent.core.robot_spec import RobotSpec

__all__ = ["SMALL_STEP", "GrammarError", "ToolCall", "describe_grammar", "is_help",
           "parse_command"]


class GrammarError(ValueError):
    """A command the offline grammar cannot turn into tool calls; the message says why."""


@dataclass(frozen=True)
class ToolCall:
    """One tool call: a registry tool name and its JSON-compatible arguments."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)


EXAMPLES = (
    "open the gripper and move 5 cm up",
    "move 10 cm forward",
    "move left 3 cm then down 20 mm",
    "move a bit to the left",
    "move 10 cm up in 3 seconds",
    "close gripper",
    "set the gripper to 4 cm",
    "rotate the gripper 30 degrees",
    "move joint 1 to 45 degrees",
    "move to x 0.4 y 0 z 0.3",
    "go home",
    "stop",
    "emergency stop / reset emergency stop",
    "what is the robot state",
    "take a picture",
    "where are the objects",
    "list policies / run policy NAME to X Y Z / stop policy",
)
SMALL_STEP = 0.02  # m: what "a bit" / "a little" / "slightly" means
_HELP = re.compile(r"^\s*(?:help|\?|what can you do|what do you understand|commands|usage)"
                   r"\s*[?!.]*\s*$", re.IGNORECASE)


def is_help(text: str) -> bool:
    """True for 'help', 'what can you do' and the like (answered with `describe_grammar`)."""
    return isinstance(text, str) and bool(_HELP.match(text))


def describe_grammar() -> str:
    """What the offline grammar understands, for help texts and error messages."""
    lines = [
        "I understand these commands (join several with 'and', 'then', ',' or ';'):",
        *(f"  - {e}" for e in EXAMPLES),
        "Distances need a unit: mm, cm, m or in ('a bit' / 'a little' / 'slightly' is "
        f"{SMALL_STEP * 100:g} cm). Angles are degrees unless you say rad.",
        "Directions are in the robot base frame: forward/back = ±x, left/right = ±y, "
        "up/down = ±z. 'help' shows this list.",
    ]
    return "\n".join(lines)


# --- tokens -------------------------------------------------------------------------------

_LENGTH_UNITS = {
    "mm": 0.001, "millimeter": 0.001, "millimeters": 0.001, "millimetre": 0.001,
    "millimetres": 0.001,
    "cm": 0.01, "centimeter": 0.01, "centimeters": 0.01, "centimetre": 0.01, "centimetres": 0.01,
    "m": 1.0, "meter": 1.0, "meters": 1.0, "metre": 1.0, "metres": 1.0,
    "in": 0.0254, "inch": 0.0254, "inches": 0.0254,
}  # fmt: skip
_ANGLE_UNITS = {
    "deg": math.pi / 180, "degree": math.pi / 180, "degrees": math.pi / 180, "°": math.pi / 180,
    "rad": 1.0, "radian": 1.0, "radians": 1.0,
}  # fmt: skip
_NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20,
    "thirty": 30, "forty": 40, "forty-five": 45, "fifty": 50, "sixty": 60, "ninety": 90,
}  # fmt: skip
# direction word -> (axis index into dx/dy/dz, sign)
_DIRECTIONS = {
    "forward": (0, 1), "forwards": (0, 1), "ahead": (0, 1), "front": (0, 1),
    "back": (0, -1), "backward": (0, -1), "backwards": (0, -1),
    "left": (1, 1), "right": (1, -1),
    "up": (2, 1), "upward": (2, 1), "upwards": (2, 1), "higher": (2, 1),
    "down": (2, -1), "downward": (2, -1), "downwards": (2, -1), "lower": (2, -1),
}  # fmt: skip
_AXES = ("dx", "dy", "dz")
_ROT_AXES = {"roll": "droll", "pitch": "dpitch", "yaw": "dyaw"}

_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)"
_NUM_OR_WORD = rf"(?:{_NUM}|{'|'.join(sorted(_NUMBER_WORDS, key=len, reverse=True))})"
_LEN_UNIT = "|".join(sorted(_LENGTH_UNITS, key=len, reverse=True))
_ANG_UNIT = "|".join(sorted((re.escape(u) for u in _ANGLE_UNITS), key=len, reverse=True))
_DIR = "|".join(sorted(_DIRECTIONS, key=len, reverse=True))

# Words that carry no meaning for the grammar ("please move the arm up", "the gripper").
_FILLER = re.compile(
    r"\b(?:please|kindly|now|the|robot's|robot|arm's|arm|end[- ]effector|ee|tool|hand's|"
    r"can you|could you|would you|i want you to|just|slowly|carefully)\b"
)
_SPLIT = re.compile(r"\s*(?:,\s*and then|,\s*then|\band then\b|\bthen\b|\band\b|[,;.])\s*")


def _number(token: str) -> float:
    if token in _NUMBER_WORDS:
        return float(_NUMBER_WORDS[token])
    return float(token)


def _length(value: str, unit: str | None, clause: str) -> float:
    if unit is None:
        raise GrammarError(
            f"'{clause}': {value} what? Give a unit: mm, cm, m or in (e.g. '{value} cm')."
        )
    return _number(value) * _LENGTH_UNITS[unit]


def _angle(value: str, unit: str | None) -> float:
    return _number(value) * _ANGLE_UNITS[unit or "degrees"]


# --- clause parsers -----------------------------------------------------------------------
# Each takes a normalised clause and returns a ToolCall, or None when it does not apply.

_SIMPLE: list[tuple[re.Pattern[str], str, dict[str, Any]]] = [
    (re.compile(r"^(?:reset|release|clear|unlatch)\s+(?:the\s+)?(?:emergency[- ]stop|e-?stop)$"),
     "reset_emergency_stop", {"reason": "operator command"}),
    (re.compile(r"^(?:emergency[- ]stop|e-?stop|panic|kill)$"),
     "emergency_stop", {"reason": "operator command"}),
    (re.compile(r"^(?:stop|halt|freeze|hold(?: position)?|abort|cancel(?: motion)?)$"), "stop", {}),
    (re.compile(r"^(?:what(?: is|'s)|show(?: me)?|get|report|tell me)?\s*(?:current\s+)?"
                r"(?:state|status|joint states?|joint positions|pose|position)(?:\s+of)?$|"
                r"^where are you\??$|^where is (?:it|gripper)\??$"),
     "get_robot_state", {}),
    (re.compile(r"^(?:take|capture|grab|get|show(?: me)?)\s+(?:a\s+)?"
                r"(?:picture|photo|image|camera image|snapshot)$|^what do you see\??$|^look$"),
     "get_camera_image", {}),
    (re.compile(r"^(?:where are|list|show(?: me)?|get|find)\s+(?:all\s+)?(?:objects?|"
                r"object poses?)(?:\s+poses?)?\??$|^(?:object poses?|objects)$"),
     "get_object_poses", {}),
    (re.compile(r"^(?:list|show|what are)\s+(?:installed\s+|available\s+)?policies\??$"),
     "list_policies", {}),
    (re.compile(r"^stop\s+(?:running\s+)?(?:policy|policies)$"), "stop_policy", {}),
]


def _simple(clause: str, _robot: RobotSpec | None) -> ToolCall | None:
    for pattern, name, args in _SIMPLE:
        if pattern.match(clause):
            return ToolCall(name, dict(args))
    return None


_RUN_POLICY = re.compile(r"^(?:run|start|execute)\s+policy\s+([a-z0-9_.\-]+)"
                         rf"(?:\s+to\s+\[?\s*({_NUM})\s*,?\s+({_NUM})\s*,?\s+({_NUM})\s*\]?)?"
                         rf"(?:\s+for\s+({_NUM})\s*(?:s|sec|secs|seconds?))?$")


def _run_policy(clause: str, _robot: RobotSpec | None) -> ToolCall | None:
    m = _RUN_POLICY.match(clause)
    if not m:
        return None
    args: dict[str, Any] = {"name": m.group(1)}
    if m.group(2):  # "run policy NAME to X Y Z": a goal in the base frame, metres
        args["goal"] = [float(m.group(i)) for i in (2, 3, 4)]
    if m.group(5):
        args["duration"] = float(m.group(5))
    return ToolCall("run_policy", args)


_GRIPPER = r"(?:gripper|hand|fingers|claw|jaws?)"
_GRIPPER_OPEN = re.compile(rf"^(?:open(?: up)?(?: {_GRIPPER})?|{_GRIPPER} open|release|let go)$")
_GRIPPER_CLOSE = re.compile(
    rf"^(?:close(?: {_GRIPPER})?|{_GRIPPER} close|grasp|grip|grab|pinch)(?: it| object)?$"
)
_GRIPPER_WIDTH = re.compile(
    rf"^(?:set|open|close|move)\s+(?:{_GRIPPER}\s+)?(?:width\s+|opening\s+)?(?:to\s+)?"
    rf"({_NUM_OR_WORD})\s*({_LEN_UNIT})?(?:\s+(?:wide|open|width|opening))?$"
)


def _gripper(clause: str, _robot: RobotSpec | None) -> ToolCall | None:
    if _GRIPPER_OPEN.match(clause):
        return ToolCall("set_gripper", {"action": "open"})
    if _GRIPPER_CLOSE.match(clause):
        return ToolCall("set_gripper", {"action": "close"})
    m = _GRIPPER_WIDTH.match(clause)
    if m and re.search(_GRIPPER, clause):
        return ToolCall("set_gripper", {"width": _length(m.group(1), m.group(2), clause)})
    return None


_MOVE_VERB = r"(?:move|go|shift|translate|step|jog|nudge|slide|bring it|raise|lift|lower|drop)"
# "move the gripper up 5 cm": the moved part is named but means the end effector.
_MOVE_PREFIX = rf"(?:{_MOVE_VERB}\s+(?:(?:{_GRIPPER}|wrist)\s+)?)?"
_REL_DIST_DIR = re.compile(
    rf"^{_MOVE_PREFIX}(?:by\s+)?({_NUM_OR_WORD})\s*({_LEN_UNIT})?\s+(?:to\s+)?({_DIR})$"
)
_REL_DIR_DIST = re.compile(
    rf"^{_MOVE_PREFIX}(?:to\s+)?({_DIR})\s+(?:by\s+)?({_NUM_OR_WORD})\s*({_LEN_UNIT})?$"
)
_REL_VERB_ONLY = re.compile(
    rf"^(raise|lift|lower|drop)\s+(?:(?:{_GRIPPER}|wrist)\s+)?(?:by\s+)?"
    rf"({_NUM_OR_WORD})\s*({_LEN_UNIT})?$"
)
_REL_NO_DISTANCE = re.compile(rf"^{_MOVE_PREFIX}(?:to\s+)?({_DIR})$")
_A_BIT = r"(?:a\s+(?:little\s+)?bit|a\s+little|slightly|a\s+touch|a\s+tad)"
_REL_A_BIT = re.compile(
    rf"^{_MOVE_PREFIX}(?:{_A_BIT}\s+(?:to\s+)?({_DIR})|(?:to\s+)?({_DIR})\s+{_A_BIT})$"
)
_NO_DIRECTION = re.compile(rf"^{_MOVE_VERB}(?:\s+it)?(?:\s+{_A_BIT})?"
                           r"(?:\s+(?:over\s+)?there|\s+somewhere|\s+elsewhere)?$")


def _relative_move(clause: str, _robot: RobotSpec | None) -> ToolCall | None:
    m = _REL_DIST_DIR.match(clause)
    if m:
        value, unit, direction = m.groups()
    elif (m := _REL_DIR_DIST.match(clause)) is not None:
        direction, value, unit = m.groups()
    elif (m := _REL_VERB_ONLY.match(clause)) is not None:
        verb, value, unit = m.groups()
        direction = "up" if verb in ("raise", "lift") else "down"
    elif (m := _REL_A_BIT.match(clause)) is not None:
        direction = m.group(1) or m.group(2)
        value, unit = str(SMALL_STEP * 100), "cm"
    elif _NO_DIRECTION.match(clause):
        raise GrammarError(f"'{clause}': which way? Say a direction and a distance, "
                           "e.g. 'move 5 cm left' or 'move a bit up'.")
    elif (m := _REL_NO_DISTANCE.match(clause)) is not None:
        raise GrammarError(
            f"'{clause}': how far {m.group(1)}? Say a distance with a unit, "
            f"e.g. 'move 5 cm {m.group(1)}'."
        )
    else:
        return None
    axis, sign = _DIRECTIONS[direction]
    return ToolCall(
        "move_end_effector_relative", {_AXES[axis]: sign * _length(value, unit, clause)}
    )


_ROTATE = re.compile(
    rf"^(?:rotate|turn|twist|spin)\s+(?:gripper|wrist|{_GRIPPER})?\s*"
    rf"(?:(?:about|around)\s+(?:the\s+)?(x|y|z|roll|pitch|yaw)(?:\s+axis)?\s+)?(?:by\s+)?"
    rf"({_NUM_OR_WORD})\s*({_ANG_UNIT})?"
    rf"(?:\s+(clockwise|counterclockwise|counter-clockwise|anticlockwise|cw|ccw))?"
    rf"(?:\s+(?:about|around)\s+(?:the\s+)?(x|y|z|roll|pitch|yaw)(?:\s+axis)?)?$"
)
_AXIS_WORDS = {"x": "droll", "y": "dpitch", "z": "dyaw", **_ROT_AXES}


def _rotate(clause: str, _robot: RobotSpec | None) -> ToolCall | None:
    m = _ROTATE.match(clause)
    if not m:
        return None
    axis_before, value, unit, sense, axis_after = m.groups()
    key = _AXIS_WORDS[axis_before or axis_after or "yaw"]
    angle = _angle(value, unit)
    # Seen from above (looking down -z), clockwise is a negative rotation about +z.
    if sense in ("clockwise", "cw"):
        angle = -angle
    return ToolCall("move_end_effector_relative", {key: angle})


_JOINT = re.compile(
    rf"^(?:move|set|turn|rotate|put)\s+joint\s+([a-z0-9_]+)\s+(?:to\s+)?"
    rf"({_NUM_OR_WORD})\s*({_ANG_UNIT})?$"
)


def _joint(clause: str, robot: RobotSpec | None) -> ToolCall | None:
    m = _JOINT.match(clause)
    if not m:
        return None
    ident, value, unit = m.groups()
    if robot is None:
        if ident.isdigit():
            raise GrammarError(f"'{clause}': joint numbers need a robot description")
        name = ident
    elif ident.isdigit():
        index = int(ident)
        if not 1 <= index <= robot.dof:
            raise GrammarError(
                f"'{clause}': {robot.name} has joints 1..{robot.dof} "
                f"({', '.join(robot.joint_names)})"
            )
        name = robot.joint_names[index - 1]
    elif ident in robot.joint_names:
        name = ident
    else:
        raise GrammarError(
            f"'{clause}': unknown joint '{ident}'; {robot.name} has {', '.join(robot.joint_names)} "
            f"(or say joint 1..{robot.dof})"
        )
    return ToolCall("move_joints", {"joints": {name: _angle(value, unit)}})


_HOME = re.compile(r"^(?:go|move|return|come|get)?\s*(?:back\s+)?(?:to\s+)?(?:the\s+)?home"
                   r"(?:\s+(?:position|pose))?$|^(?:reset pose|homing)$")


def _home(clause: str, robot: RobotSpec | None) -> ToolCall | None:
    if not _HOME.match(clause):
        return None
    if robot is None:
        raise GrammarError(f"'{clause}': the home pose needs a robot description")
    return ToolCall("move_joints", {"positions": [float(q) for q in robot.home]})


_COORD = rf"({_NUM})\s*({_LEN_UNIT})?"
_ABSOLUTE = re.compile(
    rf"^(?:move|go)\s+(?:to\s+)?(?:position\s+)?(?:x\s*=?\s*{_COORD})[\s,]+(?:y\s*=?\s*{_COORD})"
    rf"[\s,]+(?:z\s*=?\s*{_COORD})$"
)


def _absolute(clause: str, _robot: RobotSpec | None) -> ToolCall | None:
    m = _ABSOLUTE.match(clause)
    if not m:
        return None
    g = m.groups()
    # Coordinates default to metres: "x 0.4 y 0 z 0.3" is the natural way to say a pose.
    position = [_number(g[i]) * _LENGTH_UNITS[g[i + 1] or "m"] for i in (0, 2, 4)]
    return ToolCall("move_end_effector", {"position": position})


_PARSERS = (_simple, _run_policy, _home, _gripper, _joint, _rotate, _absolute, _relative_move)


def _normalise(text: str) -> str:
    text = text.lower().strip()
    text = re.sub(r"(\d)\s*°", r"\1 deg", text)
    text = re.sub(r"(\d)(mm|cm|m|in|deg|rad)\b", r"\1 \2", text)  # "5cm" -> "5 cm"
    text = re.sub(r"[!?]+", "", text)
    # "x=0.4, y=0, z=0.3": these commas separate coordinates, not commands.
    text = re.sub(r"(\d)\s*,\s*(?=[xyz]\b)", r"\1 ", text)
    return text


def _clean_clause(clause: str) -> str:
    clause = _FILLER.sub(" ", clause)
    clause = re.sub(r"\b(?:a|an)\s+(?=\d)", "", clause)  # "a 5 cm" -> "5 cm"
    return re.sub(r"\s+", " ", clause).strip()


_DURATION = re.compile(rf"\s+(?:in|within|over)\s+({_NUM})\s*(?:s|sec|secs|seconds?)$")
_TIMED = ("move_end_effector_relative", "move_end_effector", "move_joints")


def _take_duration(clause: str) -> tuple[str, float | None]:
    """'move 5 cm up in 2 s' -> ('move 5 cm up', 2.0); the envelope may stretch it."""
    m = _DURATION.search(clause)
    if not m:
        return clause, None
    return clause[: m.start()].strip(), float(m.group(1))


def parse_command(text: str, robot: RobotSpec | None = None) -> list[ToolCall]:
    """Parse a command into tool calls, in the order they should run.

    `robot` supplies joint names (for 'joint 3') and the home pose ('go home'). Raises
    GrammarError naming the phrase it did not understand and listing what it does.
    """
    if not isinstance(text, str) or not text.strip():
        raise GrammarError("empty command.\n" + describe_grammar())
    # Protect decimal points ("0.4") from the '.' clause separator.
    normalised = re.sub(r"(\d)\.(\d)", r"\1<dot>\2", _normalise(text))
    clauses = [c.replace("<dot>", ".") for c in _SPLIT.split(normalised)]
    calls: list[ToolCall] = []
    for raw in clauses:
        clause, duration = _take_duration(_clean_clause(raw))
        if not clause:
            continue
        for parser in _PARSERS:
            call = parser(clause, robot)
            if call is not None:
                if duration is not None:
                    if call.name not in _TIMED:
                        raise GrammarError(f"'{raw.strip()}': a duration fits motions only")
                    call = ToolCall(call.name, {**call.arguments, "duration": duration})
                calls.append(call)
                break
        else:
            raise GrammarError(f"I don't understand '{raw.strip()}'.\n" + describe_grammar())
    if not calls:
        raise GrammarError("no command found.\n" + describe_grammar())
    return calls
