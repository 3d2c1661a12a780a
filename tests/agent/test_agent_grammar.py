"""The offline command grammar: pure unit tests (no ROS, no LLM)."""

from __future__ import annotations

import math

import pytest

from robo_agent.agent.grammar import (
    EXAMPLES,
    GrammarError,
    ToolCall,
    describe_grammar,
    parse_command,
)
from robo_agent.core.robot_spec import load_robot
from robo_agent.core.tools import TOOLS, validate_call

PANDA = load_robot("panda")
DEG = math.pi / 180


def calls(text: str) -> list[tuple[str, dict]]:
    return [(c.name, c.arguments) for c in parse_command(text, PANDA)]


def rel(**kw: float) -> tuple[str, dict]:
    return ("move_end_effector_relative", kw)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("open the gripper and move 5 cm up",
         [("set_gripper", {"action": "open"}), rel(dz=0.05)]),
        ("move 10 cm forward", [rel(dx=0.1)]),
        ("Move 10cm forward!", [rel(dx=0.1)]),
        ("move forward 10 cm", [rel(dx=0.1)]),
        ("move 2 cm back", [rel(dx=-0.02)]),
        ("go backwards 15 mm", [rel(dx=-0.015)]),
        ("move 3 cm left", [rel(dy=0.03)]),
        ("please move the arm to the right by 5 mm", [rel(dy=-0.005)]),
        ("move down 0.1 m", [rel(dz=-0.1)]),
        ("move up 1 in", [rel(dz=0.0254)]),
        ("move five centimetres up", [rel(dz=0.05)]),
        ("raise by 1.5 cm", [rel(dz=0.015)]),
        ("lift 2 cm", [rel(dz=0.02)]),
        ("lower 2cm", [rel(dz=-0.02)]),
        ("move left 3 cm then down 20 mm", [rel(dy=0.03), rel(dz=-0.02)]),
        ("move 5cm up, then open the gripper",
         [rel(dz=0.05), ("set_gripper", {"action": "open"})]),
        ("move 1 cm up; move 1 cm down", [rel(dz=0.01), rel(dz=-0.01)]),
        ("move the gripper up 5 cm", [rel(dz=0.05)]),
        ("move the hand down 1 cm", [rel(dz=-0.01)]),
        ("move the end effector 2 cm left", [rel(dy=0.02)]),
        ("lower the hand by 1 cm", [rel(dz=-0.01)]),
        ("Move the robot 10 centimetres forward.", [rel(dx=0.1)]),
        ("go up 2 cm and then go down 2 cm", [rel(dz=0.02), rel(dz=-0.02)]),
        ("open gripper, move up 5cm and close the gripper",
         [("set_gripper", {"action": "open"}), rel(dz=0.05), ("set_gripper", {"action": "close"})]),
        ("close gripper", [("set_gripper", {"action": "close"})]),
        ("close the gripper", [("set_gripper", {"action": "close"})]),
        ("grasp", [("set_gripper", {"action": "close"})]),
        ("release", [("set_gripper", {"action": "open"})]),
        ("open", [("set_gripper", {"action": "open"})]),
        ("set the gripper to 4 cm", [("set_gripper", {"width": 0.04})]),
        ("open the gripper to 30 mm", [("set_gripper", {"width": 0.03})]),
        ("stop", [("stop", {})]),
        ("Stop the robot!", [("stop", {})]),
        ("halt", [("stop", {})]),
        ("emergency stop", [("emergency_stop", {"reason": "operator command"})]),
        ("e-stop", [("emergency_stop", {"reason": "operator command"})]),
        ("reset the emergency stop", [("reset_emergency_stop", {"reason": "operator command"})]),
        ("release e-stop", [("reset_emergency_stop", {"reason": "operator command"})]),
        ("what is the robot state", [("get_robot_state", {})]),
        ("what is the state of the robot?", [("get_robot_state", {})]),
        ("status", [("get_robot_state", {})]),
        ("where are you?", [("get_robot_state", {})]),
        ("take a picture", [("get_camera_image", {})]),
        ("what do you see", [("get_camera_image", {})]),
        ("where are the objects", [("get_object_poses", {})]),
        ("list policies", [("list_policies", {})]),
        ("run policy reach_v2", [("run_policy", {"name": "reach_v2"})]),
        ("run policy reach_v2 for 5 s", [("run_policy", {"name": "reach_v2", "duration": 5.0})]),
        ("run policy reach_v2 to 0.5 0.1 0.3",
         [("run_policy", {"name": "reach_v2", "goal": [0.5, 0.1, 0.3]})]),
        ("run policy reach_v2 to 0.5 -0.1 0.3 for 8 s",
         [("run_policy", {"name": "reach_v2", "goal": [0.5, -0.1, 0.3], "duration": 8.0})]),
        ("stop policy", [("stop_policy", {})]),
        ("move to x=0.4, y=0, z=0.3", [("move_end_effector", {"position": [0.4, 0.0, 0.3]})]),
        ("go to x 40 cm y -10 cm z 300 mm",
         [("move_end_effector", {"position": [0.4, -0.1, 0.3]})]),
    ],
)
def test_parses(text: str, expected: list[tuple[str, dict]]) -> None:
    got = calls(text)
    assert [n for n, _ in got] == [n for n, _ in expected]
    for (_, g), (_, e) in zip(got, expected, strict=True):
        assert g.keys() == e.keys()
        for key, value in e.items():
            if isinstance(value, float):
                assert g[key] == pytest.approx(value), key
            elif isinstance(value, list):
                assert g[key] == pytest.approx(value), key
            else:
                assert g[key] == value, key


@pytest.mark.parametrize(
    ("text", "key", "angle"),
    [
        ("rotate the gripper 30 degrees", "dyaw", 30 * DEG),
        ("rotate the gripper 30 degrees clockwise", "dyaw", -30 * DEG),
        ("turn the wrist by 45° counterclockwise", "dyaw", 45 * DEG),
        ("rotate 0.5 rad about x", "droll", 0.5),
        ("rotate around the pitch axis by 10 deg", "dpitch", 10 * DEG),
    ],
)
def test_rotations_in_radians(text: str, key: str, angle: float) -> None:
    ((name, args),) = calls(text)
    assert name == "move_end_effector_relative"
    assert args == {key: pytest.approx(angle)}


def test_joint_by_number_and_by_name_in_radians() -> None:
    assert calls("move joint 1 to 45 degrees") == [
        ("move_joints", {"joints": {"panda_joint1": pytest.approx(45 * DEG)}})
    ]
    assert calls("set joint panda_joint4 to -1.2 rad") == [
        ("move_joints", {"joints": {"panda_joint4": -1.2}})
    ]


def test_go_home_uses_the_robot_description() -> None:
    for text in ("go home", "home", "return to the home position", "go back home"):
        assert calls(text) == [("move_joints", {"positions": PANDA.home})], text


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("move up 5", "Give a unit"),
        ("move 5 forward", "Give a unit"),
        ("move up", "how far up"),
        ("go left", "how far left"),
        ("move the gripper up", "how far up"),
        ("dance for me", "I don't understand 'dance for me'"),
        ("open the gripper and fly", "I don't understand 'fly'"),
        ("move joint 9 to 3 deg", "joints 1..7"),
        ("move joint elbow to 3 deg", "unknown joint 'elbow'"),
        ("", "empty command"),
        ("   ", "empty command"),
        (" , ; ", "no command found"),
    ],
)
def test_bad_phrases_get_a_helpful_error(text: str, needle: str) -> None:
    with pytest.raises(GrammarError) as info:
        parse_command(text, PANDA)
    assert needle in str(info.value)


def test_unknown_phrase_lists_what_is_understood() -> None:
    with pytest.raises(GrammarError) as info:
        parse_command("make me a sandwich", PANDA)
    message = str(info.value)
    for example in ("move 10 cm forward", "close gripper", "go home", "stop"):
        assert example in message
    assert "forward/back" in message and "mm, cm, m" in message


def test_needs_robot_for_home_and_joint_numbers() -> None:
    with pytest.raises(GrammarError, match="home pose needs a robot"):
        parse_command("go home")
    with pytest.raises(GrammarError, match="joint numbers need a robot"):
        parse_command("move joint 2 to 10 deg")
    # Without a robot, named joints and Cartesian moves still parse.
    assert parse_command("move 1 cm up") == [ToolCall("move_end_effector_relative", {"dz": 0.01})]


def test_non_string_input_is_an_error() -> None:
    with pytest.raises(GrammarError):
        parse_command(None, PANDA)  # type: ignore[arg-type]


@pytest.mark.parametrize("example", [e for e in EXAMPLES if "/" not in e])
def test_every_advertised_example_parses_to_valid_tool_calls(example: str) -> None:
    for call in parse_command(example, PANDA):
        assert call.name in TOOLS
        validate_call(call.name, call.arguments)  # raises ToolError if the grammar drifted


@pytest.mark.parametrize(
    "text",
    ["emergency stop", "reset emergency stop", "list policies", "run policy p1", "stop policy"],
)
def test_slash_examples_parse(text: str) -> None:
    for call in parse_command(text, PANDA):
        validate_call(call.name, call.arguments)


def test_describe_grammar_mentions_frames_and_units() -> None:
    text = describe_grammar()
    assert "base frame" in text
    assert "up/down" in text and "degrees" in text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("move a bit to the left", {"dy": 0.02}),
        ("nudge slightly up", {"dz": 0.02}),
        ("go down a little", {"dz": -0.02}),
        ("move right a bit", {"dy": -0.02}),
        ("move 10 cm up in 3 seconds", {"dz": 0.1, "duration": 3.0}),
    ],
)
def test_a_bit_is_a_documented_small_step(text: str, expected: dict[str, float]) -> None:
    from robo_agent.agent.grammar import SMALL_STEP

    assert SMALL_STEP == 0.02 and "2 cm" in describe_grammar()
    (call,) = parse_command(text, PANDA)
    assert call.name == "move_end_effector_relative"
    assert call.arguments == pytest.approx(expected)


@pytest.mark.parametrize("text", ["move a bit", "move it over there", "go somewhere"])
def test_no_direction_is_a_question_back(text: str) -> None:
    with pytest.raises(GrammarError, match="which way"):
        parse_command(text, PANDA)


def test_help_and_durations_outside_motions() -> None:
    from robo_agent.agent.grammar import is_help

    assert all(is_help(t) for t in ("help", "Help!", "what can you do?"))
    assert not is_help("help me move up")
    with pytest.raises(GrammarError, match="a duration fits motions only"):
        parse_command("close the gripper in 2 s", PANDA)
