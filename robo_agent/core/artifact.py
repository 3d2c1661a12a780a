"""Policy artifact spec: `policy.json` beside `policy.onnx`, shared by research and deploy.

An artifact is a folder holding

* `policy.onnx` — an MLP whose single input `obs` is the concatenation of the
  observation dict's entries listed in `inputs` (in that order), with the observation
  normaliser inside the graph, and whose single output `action` lies in [-1, 1];
* `policy.json` — this `PolicySpec`: robot and joint order, the observation and action
  layouts, how to scale actions into joint commands, the control rate, the task, the
  provenance (workspace commit, score, evaluation seeds, training seconds) and the
  sha256 of `policy.onnx`, checked on every load.

Nothing here unpickles anything; the spec is JSON validated by pydantic.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from robo_agent.core.errors import validation_problems

SPEC_FILE = "policy.json"
MODEL_FILE = "policy.onnx"
FORMAT_VERSION = 1


class ArtifactError(ValueError):
    """An artifact is missing, malformed, or its model does not match its sha256."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InputSegment(_Strict):
    """One entry of the goal-conditioned observation dict fed to the model."""

    key: str = Field(min_length=1, description="observation dict key, e.g. 'observation'")
    size: int = Field(gt=0)


class Provenance(_Strict):
    """Where the policy came from and how it scored under the frozen evaluator."""

    workspace_commit: str = ""
    trial: int | None = None
    score: float | None = Field(default=None, description="success rate on held-out seeds")
    spread: float | None = None
    evaluation_seeds: list[int] = Field(default_factory=list)
    evaluation_episodes: int = 0
    training_seconds: float | None = Field(
        default=None, description="CPU seconds of the trainer's process tree at export")
    training_wall_seconds: float | None = Field(
        default=None, description="wall-clock from the first env step, saving excluded")
    env_steps: int | None = None
    updates: int | None = Field(default=None, description="gradient updates")
    algorithm: str = ""
    created_utc: str = ""


class PolicySpec(_Strict):
    """Everything a runner needs to turn observations into joint commands."""

    format_version: int = FORMAT_VERSION
    robot: str = Field(min_length=1)
    joint_names: list[str] = Field(min_length=1)
    task: str = Field(min_length=1, description="Gymnasium id the policy was trained on")
    inputs: list[InputSegment] = Field(min_length=1)
    observation_layout: Any = Field(
        default=None, description="the env's observation_layout, verbatim"
    )
    action_layout: Any = Field(default=None, description="the env's action_layout, verbatim")
    action_dim: int = Field(gt=0)
    action_scale: list[float] = Field(
        min_length=1, description="command = action * action_scale (per action dim)"
    )
    action_mode: str = Field(default="joint_position_delta")
    control_dt: float = Field(gt=0, description="seconds between policy steps")
    deployment: dict[str, Any] | None = Field(
        default=None, description="the env's deployment_spec(), verbatim (frame, action rule)"
    )
    input_name: str = "obs"
    output_name: str = "action"
    model_file: str = MODEL_FILE
    model_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    provenance: Provenance = Provenance()

    @field_validator("format_version")
    @classmethod
    def _known_version(cls, v: int) -> int:
        # A field validator, so the error names the field (an unknown future format).
        if v != FORMAT_VERSION:
            raise ValueError(f"unknown format_version {v}; this robo_agent reads {FORMAT_VERSION}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> PolicySpec:
        if len(self.action_scale) != self.action_dim:
            raise ValueError(
                f"action_scale has {len(self.action_scale)} values, action_dim is {self.action_dim}"
            )
        if "/" in self.model_file or self.model_file.startswith("."):
            raise ValueError("model_file must be a plain file name inside the artifact folder")
        return self

    @property
    def obs_dim(self) -> int:
        return sum(s.size for s in self.inputs)

    @property
    def control_rate_hz(self) -> float:
        return 1.0 / self.control_dt


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_model(folder: Path, spec: PolicySpec) -> None:
    """The model file exists and its sha256 is the one the spec records."""
    model = folder / spec.model_file
    if not model.is_file():
        raise ArtifactError(f"{model}: model file missing")
    actual = sha256_file(model)
    if actual != spec.model_sha256:
        raise ArtifactError(
            f"{model}: sha256 {actual} does not match {SPEC_FILE} field model_sha256 "
            f"({spec.model_sha256}); the model was modified or corrupted"
        )


def write_spec(folder: str | Path, spec: PolicySpec) -> Path:
    """Write `policy.json` atomically (temp file + rename) after checking the model hash."""
    folder = Path(folder)
    _check_model(folder, spec)
    target = folder / SPEC_FILE
    tmp = folder / f".{SPEC_FILE}.tmp"
    tmp.write_text(json.dumps(spec.model_dump(mode="json"), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, target)
    return target


def load_spec(folder: str | Path, verify: bool = True) -> PolicySpec:
    """Read and validate `policy.json`; with `verify`, check the model's sha256."""
    folder = Path(folder)
    path = folder / SPEC_FILE
    if not folder.is_dir():
        raise ArtifactError(f"{folder}: no such artifact folder")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactError(f"{path}: missing ({folder} is not a policy artifact)") from None
    except json.JSONDecodeError as err:
        raise ArtifactError(f"{path}: malformed JSON: {err}") from None
    try:
        spec = PolicySpec.model_validate(data)
    except ValidationError as err:
        problems = validation_problems(err)
        raise ArtifactError(f"{path}: invalid policy spec: {problems}") from None
    if verify:
        _check_model(folder, spec)
    return spec


def with_provenance(spec: PolicySpec, **updates: Any) -> PolicySpec:
    """A copy of `spec` whose provenance has `updates` applied (validated)."""
    merged = {**spec.provenance.model_dump(), **updates}
    return spec.model_copy(update={"provenance": Provenance.model_validate(merged)})


# -- rehearsal record: the gate between research and a real arm -------------------------
REHEARSAL_FILE = "rehearsal.json"


class Rehearsal(BaseModel):
    """The result of `robo-agent rehearse`, bound to the model it tested by sha256."""

    model_config = ConfigDict(extra="allow", frozen=True)

    artifact_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    passed: bool
    episodes: int = Field(ge=0)
    ros_success: float
    direct_success: float
    parity: float | None = None
    created_utc: str = ""


def write_rehearsal(folder: str | Path, record: Rehearsal) -> Path:
    """Write `rehearsal.json` atomically beside the artifact."""
    target = Path(folder) / REHEARSAL_FILE
    tmp = target.with_name(f".{REHEARSAL_FILE}.tmp")
    tmp.write_text(json.dumps(record.model_dump(mode="json"), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, target)
    return target


def load_rehearsal(folder: str | Path) -> Rehearsal | None:
    """The artifact's rehearsal record, None when there is none; malformed -> ArtifactError."""
    path = Path(folder) / REHEARSAL_FILE
    if not path.is_file():
        return None
    try:
        return Rehearsal.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except json.JSONDecodeError as err:
        raise ArtifactError(f"{path}: malformed JSON: {err}") from None
    except ValidationError as err:
        raise ArtifactError(f"{path}: invalid rehearsal record: "
                            f"{validation_problems(err)}") from None


def rehearsal_problem(folder: str | Path, spec: PolicySpec) -> str | None:
    """Why the artifact has no passing rehearsal for its exact model (None when it has)."""
    path = Path(folder) / REHEARSAL_FILE
    try:
        record = load_rehearsal(folder)
    except ArtifactError as err:
        return str(err)
    if record is None:
        return f"{path}: missing (run `robo-agent rehearse {folder}` first)"
    if record.artifact_sha256 != spec.model_sha256:
        return (f"{path}: field artifact_sha256 {record.artifact_sha256[:12]}... is for another "
                f"model than policy.json's model_sha256 {spec.model_sha256[:12]}...")
    if not record.passed:
        return (f"{path}: field passed is false (ROS success {record.ros_success:.2f}, "
                f"direct {record.direct_success:.2f}, parity {record.parity})")
    return None
