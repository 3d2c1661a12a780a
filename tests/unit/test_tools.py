"""The tool registry: schemas, validation of bad input, results."""

from __future__ import annotations

import json

import pytest

from robo_agent.core.tools import (
    TOOLS,
    ToolError,
    ToolResult,
    args_json_schema,
    openai_tools,
    tool_names,
    validate_call,
)

EXPECTED = [
    "get_robot_state", "move_joints", "move_end_effector", "move_end_effector_relative",
    "set_gripper", "stop", "emergency_stop", "reset_emergency_stop", "get_camera_image",
    "get_object_poses", "list_policies", "run_policy", "stop_policy", "policy_status",
    "confirm_plan",
]


def test_registry_has_every_tool_in_order() -> None:
    assert tool_names() == EXPECTED
    assert {n for n, s in TOOLS.items() if s.moves_robot} == {
        "move_joints", "move_end_effector", "move_end_effector_relative", "set_gripper",
        "run_policy", "confirm_plan"}


def test_openai_tools_are_valid_function_definitions() -> None:
    defs = openai_tools()
    # The human-only tools (e-stop release, plan approval) are never offered to a model.
    assert [d["function"]["name"] for d in defs] == [
        n for n in EXPECTED if n not in ("reset_emergency_stop", "confirm_plan")]
    for d in defs:
        assert d["type"] == "function"
        params = d["function"]["parameters"]
        assert params["type"] == "object" and params["additionalProperties"] is False
        assert len(d["function"]["description"]) > 40
        json.dumps(d)  # serialisable
        for prop in params["properties"].values():
            assert prop.get("description"), d["function"]["name"]


def test_schema_states_units() -> None:
    schema = args_json_schema("move_end_effector")
    assert "metres" in schema["properties"]["position"]["description"]
    assert schema["required"] == ["position"]


@pytest.mark.parametrize(
    ("name", "args", "needle"),
    [
        ("move_joints", {"positions": [float("nan")] * 7}, "finite"),
        ("move_joints", '{"positions": [Infinity, 0, 0, 0, 0, 0, 0]}', "finite"),
        ("move_joints", {}, "exactly one"),
        ("move_joints", {"positions": [0.0], "joints": {"a": 1.0}}, "exactly one"),
        ("move_joints", {"positions": ["0.1"]}, "valid number"),
        ("move_joints", {"positions": [0.1], "speed": 3}, "speed: unexpected argument"),
        ("move_joints", {"positions": [0.1], "duration": -1}, "duration"),
        ("move_end_effector", {}, "position: missing required argument"),
        ("move_end_effector", {"position": [0.1, 0.2]}, "position"),
        ("move_end_effector", {"position": [0.4, 0, 0.4], "orientation": [0, 0, 0, 2]}, "unit"),
        ("set_gripper", {"action": "squeeze"}, "action"),
        ("set_gripper", {"action": "open", "width": 0.02}, "exactly one"),
        ("set_gripper", {"width": -0.01}, "width"),
        ("get_robot_state", {"verbose": True}, "unexpected argument"),
        ("get_robot_state", "[1, 2]", "must be a JSON object"),
        ("get_robot_state", "{not json", "not valid JSON"),
        ("confirm_plan", {"plan_id": 12}, "plan_id"),
        ("move_end_effector_relative", {"dz": True}, "dz"),
    ],
)
def test_bad_arguments_are_named(name: str, args: object, needle: str) -> None:
    with pytest.raises(ToolError) as err:
        validate_call(name, args)  # type: ignore[arg-type]
    assert err.value.code == "invalid_arguments"
    assert needle in err.value.message


def test_unknown_tool_lists_known_ones() -> None:
    with pytest.raises(ToolError) as err:
        validate_call("launch_missiles", {})
    assert err.value.code == "unknown_tool"
    assert "move_joints" in err.value.message


def test_valid_calls_parse() -> None:
    assert validate_call("get_robot_state", None).model_dump() == {}
    assert validate_call("get_robot_state", "").model_dump() == {}
    m = validate_call("move_joints", '{"joints": {"panda_joint1": 0.3}, "duration": 2}')
    assert m.joints == {"panda_joint1": 0.3} and m.duration == 2.0
    assert validate_call("move_joints", {"positions": [0, 1]}).positions == [0.0, 1.0]
    assert validate_call("set_gripper", {"action": "close"}).action == "close"


def test_tool_error_rejects_unknown_code() -> None:
    with pytest.raises(ValueError, match="unknown ToolError code"):
        ToolError("oops", "x")


def test_result_text_has_no_image_bytes() -> None:
    r = ToolResult(tool="get_camera_image", ok=True, message="320x240 image",
                   image_png=b"\x89PNG...", image_path="/tmp/x.png")
    text = r.to_text()
    assert "PNG" not in text and json.loads(text)["image_path"] == "/tmp/x.png"
    f = ToolResult.failure("stop", ToolError("estop", "latched"))
    assert f.ok is False and f.error == "estop" and f.message == "latched"
