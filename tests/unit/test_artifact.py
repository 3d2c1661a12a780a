"""Artifact spec: validation, sha256 check on load, atomic writes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from robo_agent.core.artifact import (
    ArtifactError,
    PolicySpec,
    load_spec,
    with_provenance,
    write_spec,
)


def _fields(model: bytes) -> dict:
    return {
        "robot": "panda",
        "joint_names": [f"panda_joint{i}" for i in range(1, 8)],
        "task": "robo_agent/PandaReach-v0",
        "inputs": [{"key": "observation", "size": 13}, {"key": "desired_goal", "size": 3}],
        "action_dim": 7,
        "action_scale": [0.05] * 7,
        "control_dt": 0.04,
        "model_sha256": hashlib.sha256(model).hexdigest(),
    }


def test_write_then_load_verifies_sha(tmp_path: Path) -> None:
    model = b"fake-bytes-stand-in-for-onnx"  # the spec layer only hashes bytes
    (tmp_path / "policy.onnx").write_bytes(model)
    spec = PolicySpec.model_validate(_fields(model))
    write_spec(tmp_path, spec)
    loaded = load_spec(tmp_path)
    assert loaded == spec and loaded.obs_dim == 16 and loaded.control_rate_hz == pytest.approx(25)
    (tmp_path / "policy.onnx").write_bytes(model + b"tampered")
    with pytest.raises(ArtifactError, match="sha256"):
        load_spec(tmp_path)


def test_write_refuses_mismatched_hash_and_leaves_no_spec(tmp_path: Path) -> None:
    (tmp_path / "policy.onnx").write_bytes(b"abc")
    spec = PolicySpec.model_validate(_fields(b"other"))
    with pytest.raises(ArtifactError, match="does not match"):
        write_spec(tmp_path, spec)
    assert not (tmp_path / "policy.json").exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"action_scale": [0.1] * 3}, "action_scale has 3"),
        ({"control_dt": 0}, "control_dt"),
        ({"model_file": "../evil.onnx"}, "plain file name"),
        ({"unknown_key": 1}, "unknown_key"),
    ],
)
def test_invalid_spec_fields_are_rejected(tmp_path: Path, change: dict, message: str) -> None:
    (tmp_path / "policy.onnx").write_bytes(b"m")
    data = {**_fields(b"m"), **change}
    (tmp_path / "policy.json").write_text(json.dumps(data))
    with pytest.raises(ArtifactError, match=message):
        load_spec(tmp_path)


def test_missing_and_malformed(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="no such artifact"):
        load_spec(tmp_path / "nope")
    with pytest.raises(ArtifactError, match="not a policy artifact"):
        load_spec(tmp_path)
    (tmp_path / "policy.json").write_text("{")
    with pytest.raises(ArtifactError, match="malformed JSON"):
        load_spec(tmp_path)


def test_with_provenance_updates_copy() -> None:
    spec = PolicySpec.model_validate(_fields(b"m"))
    updated = with_provenance(spec, score=0.8, evaluation_seeds=[1, 2], workspace_commit="ab")
    assert updated.provenance.score == 0.8 and spec.provenance.score is None
