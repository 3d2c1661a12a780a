"""Human authority on arm_bridge's JSON tool topic, across processes: releasing the e-stop
and approving a held plan need the operator token (the node's `operator_token`); anyone
else is refused, nothing changes, and the refusal is in the JSONL audit log."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from robo_agent.core.audit import read_audit_log
from robo_agent.core.robot_spec import load_robot

SPEC = load_robot("panda")
NOT_THE_TOKEN = [None, "", "guessed-token"]  # None: no "token" key at all
CONFIRM_CALL = "/robo_agent/authority_test/tool_call"
CONFIRM_RESULT = "/robo_agent/authority_test/tool_result"


@pytest.fixture(scope="module")
def bridge(sim_and_bridge: dict[str, Any], probe: Any) -> Any:
    return probe


def _human_rows(audit: Any, tool: str) -> list[dict[str, Any]]:
    """The bridge's decisions on `tool` as a human act (refused or token verified)."""
    return [r for r in read_audit_log(audit) if r["tool"] == tool
            and r["details"].get("channel") in ("/robo_agent/tool_call", CONFIRM_CALL)]


def test_unauthenticated_reset_is_refused_and_the_estop_stays_latched(
        bridge: Any, sim_and_bridge: dict[str, Any], operator_token: str) -> None:
    audit = sim_and_bridge["audit"]
    assert bridge.call("emergency_stop", {"reason": "authority test"})["ok"]
    try:
        assert bridge.wait_for(lambda: bridge.estop is True, 5.0)
        for token in [*NOT_THE_TOKEN, operator_token + "x"]:
            r = bridge.call("reset_emergency_stop", {"reason": "let me go"}, token=token)
            assert not r["ok"] and r["error"] == "refused", r
            assert "human act" in r["message"] and "nothing changed" in r["message"], r
            assert operator_token not in r["message"]
        bridge.wait_for(lambda: False, 0.5)  # a release would have reached the probe by now
        assert bridge.estop is True
        assert bridge.call("get_robot_state")["data"]["estop"] is True
        bridge.clear()
        r = bridge.call("move_joints", {"joints": {"panda_joint1": 0.1}})
        assert r["error"] == "estop", r  # still latched for motion
        assert bridge.command_count() == 0
        rows = _human_rows(audit, "reset_emergency_stop")
        assert [r["decision"] for r in rows][-4:] == ["refused"] * 4
        assert {r["limit"] for r in rows[-4:]} == {"operator_token"}
        assert "wrong operator token" in rows[-1]["reason"]
        assert "no operator token" in rows[-4]["reason"]
    finally:
        released = bridge.call("reset_emergency_stop", {"reason": "operator at the console"},
                               token=operator_token)
    assert released["ok"] and released["data"]["was_latched"] is True, released
    assert bridge.wait_for(lambda: bridge.estop is False, 5.0)
    assert bridge.call("move_joints", {"positions": SPEC.home_array.tolist()})["ok"]
    rows = _human_rows(audit, "reset_emergency_stop")
    assert rows[-1]["decision"] == "allowed" and "operator token verified" in rows[-1]["reason"]
    assert operator_token not in audit.read_text()  # the secret never goes to the log


@pytest.fixture(scope="module")
def confirming(sim_and_bridge: dict[str, Any], ros_domain: int, ros_process: Any,
               ros_probe_class: Any, operator_token: str,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any]]:
    """A second arm_bridge process with the default policy (every motion held for
    confirmation), on its own tool topics, and a probe that calls it there."""
    tmp = tmp_path_factory.mktemp("confirm_bridge")
    audit = tmp / "audit.jsonl"
    proc = ros_process(
        [sys.executable, "-m", "robo_agent.ros.arm_bridge", "--ros-args", "-r",
         "__node:=confirm_bridge"], ros_domain, tmp / "bridge.log",
        {"robot": "panda", "safety_policy": "default", "audit_log": str(audit),
         "operator_token": operator_token, "tool_call_topic": CONFIRM_CALL,
         "tool_result_topic": CONFIRM_RESULT})
    probe = ros_probe_class(ros_domain, "authority_probe", CONFIRM_CALL, CONFIRM_RESULT)
    try:
        t0 = time.monotonic()
        while True:  # up when it answers with a fresh state
            assert proc.proc.poll() is None, proc.output()
            probe.send_raw(json.dumps({"id": "ping", "tool": "get_robot_state"}))
            if probe.wait_for(lambda: "ping" in probe.results, 1.0) and \
                    probe.results.pop("ping")["ok"]:
                break
            assert time.monotonic() - t0 < 30.0, proc.output()
        probe.prove_connected(lambda: probe.call("stop"))
        # the bridge answering does not mean this probe has a /joint_states yet (its
        # subscription can match the simulator later on a busy machine)
        assert probe.wait_for(lambda: probe.last_state is not None, 30), proc.output()
        yield probe, audit
    finally:
        probe.close()
        code = proc.stop()
    assert code == 0, proc.output()[-2000:]


def test_confirm_plan_needs_the_operator_token(confirming: tuple[Any, Any],
                                               operator_token: str) -> None:
    probe, audit = confirming
    q0 = probe.joint_position("panda_joint1")
    target = q0 - 0.2
    held = probe.call("move_joints", {"joints": {"panda_joint1": target}})
    assert held["error"] == "needs_confirmation", held
    plan_id = held["data"]["plan_id"]  # any publisher sees it; it cannot approve with it
    for token in NOT_THE_TOKEN:
        r = probe.call("confirm_plan", {"plan_id": plan_id}, token=token)
        assert not r["ok"] and r["error"] == "refused", r
        assert "human act" in r["message"] and "nothing changed" in r["message"], r
    probe.wait_for(lambda: False, 0.5)
    assert probe.command_count() == 0  # nothing moved
    assert probe.joint_position("panda_joint1") == pytest.approx(q0, abs=0.01)
    rows = _human_rows(audit, "confirm_plan")
    assert [(r["decision"], r["limit"]) for r in rows] == [("refused", "operator_token")] * 3

    # The plan is still unconfirmed: the operator approves it with the token.
    done = probe.call("confirm_plan", {"plan_id": plan_id}, token=operator_token)
    assert done["ok"] and done["data"]["executed_tool"] == "move_joints", done
    # the motion is done when the bridge answers; the probe's copy of the state may lag
    probe.wait_for(lambda: abs(probe.joint_position("panda_joint1") - target) < 0.03, 3.0)
    assert probe.joint_position("panda_joint1") == pytest.approx(target, abs=0.03)
    again = probe.call("confirm_plan", {"plan_id": plan_id}, token=operator_token)
    assert again["error"] == "refused" and "already used" in again["message"]
    rows = [r for r in read_audit_log(audit) if r["tool"] == "confirm_plan"][3:]
    assert [(r["decision"], r["reason"]) for r in rows] == [
        ("allowed", f"operator token verified on {CONFIRM_CALL}"),
        ("allowed", "plan confirmed"),
        ("allowed", f"operator token verified on {CONFIRM_CALL}"),
        ("refused", f"unknown or already used plan id {plan_id!r}")]
