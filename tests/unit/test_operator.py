"""Human authority, pure parts: the operator-token check and the audited refusal of
human-only tools (the ROS side is tested in tests/ros/test_bridge_authority.py)."""

from __future__ import annotations

from typing import Any

import pytest

from robo_agent.core.audit import AuditLog, read_audit_log
from robo_agent.core.operator import (
    ModelToolGate,
    audit_log_of,
    operator_token_problem,
    refuse_human_only,
)
from robo_agent.core.tools import HUMAN_ONLY, ToolResult


def test_the_token_must_be_configured_and_match() -> None:
    assert operator_token_problem("s3cret", "s3cret") is None
    assert "no operator_token parameter" in str(operator_token_problem("", "s3cret"))
    assert "no operator_token parameter" in str(operator_token_problem("", ""))
    for given in (None, "", 42, ["s3cret"]):
        assert "no operator token" in str(operator_token_problem("s3cret", given))
    for given in ("s3cre", "s3cret ", "S3CRET"):
        assert operator_token_problem("s3cret", given) == "wrong operator token"


class _Executor:
    """The smallest ToolExecutor with an audit log (no robot is needed to refuse)."""

    def __init__(self, audit: AuditLog) -> None:
        self.audit = audit
        self.called: list[str] = []

    def call(self, name: str, arguments: Any = None) -> ToolResult:
        self.called.append(name)
        return ToolResult(tool=name, ok=True, message="ran")

    def close(self) -> None:
        pass


class _Wrapper:
    def __init__(self, inner: Any) -> None:
        self.inner = inner


@pytest.mark.parametrize("name", sorted(HUMAN_ONLY))
def test_a_refused_human_act_is_audited(name: str, tmp_path: Any) -> None:
    audit = AuditLog(tmp_path / "audit.jsonl", source="test")
    inner = _Executor(audit)
    refused = refuse_human_only(name, _Wrapper(_Wrapper(inner)), channel="LLM m")
    assert refused is not None and refused.error == "refused"
    assert "human act" in refused.message and "nothing changed" in refused.message
    (row,) = read_audit_log(tmp_path / "audit.jsonl")
    assert (row["tool"], row["decision"], row["limit"]) == (name, "refused", "human_only")
    assert row["details"] == {"code": "refused", "channel": "LLM m"}
    assert inner.called == []


def test_other_tools_pass_and_nothing_is_audited(tmp_path: Any) -> None:
    audit = AuditLog(tmp_path / "audit.jsonl")
    inner = _Executor(audit)
    assert refuse_human_only("get_robot_state", inner) is None
    gate = ModelToolGate(inner)
    assert gate.call("get_robot_state", {}).ok
    assert gate.call("reset_emergency_stop", {}).error == "refused"
    assert inner.called == ["get_robot_state"]
    assert [r["tool"] for r in audit.records] == ["reset_emergency_stop"]


def test_audit_log_of_finds_no_log_where_there_is_none() -> None:
    assert audit_log_of(object()) is None
    assert audit_log_of(_Wrapper(None)) is None
    assert refuse_human_only("confirm_plan", object()) is not None  # still refused
