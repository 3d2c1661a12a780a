"""Write ONNX policy artifacts (the training side; loading is `robo_agent.policy`).

The graph is built directly with `onnx.helper` from plain numpy weights, so neither
`torch.onnx` nor its optional exporters are needed, and the trainer can hand over any
tanh-squashed MLP:

    obs -> clip((obs - mean) / std, -clip, clip) -> [Gemm -> Relu]* -> Gemm -> Tanh -> action

Loading (`robo_agent.policy.OnnxPolicy`) uses onnxruntime and JSON only (no pickle).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from robo_agent.core.artifact import MODEL_FILE, PolicySpec, write_spec

OPSET = 17


def build_mlp_model(
    weights: Sequence[np.ndarray],
    biases: Sequence[np.ndarray],
    obs_mean: np.ndarray,
    obs_std: np.ndarray,
    clip: float = 5.0,
    input_name: str = "obs",
    output_name: str = "action",
) -> bytes:
    """Serialised ONNX model of a normalised, tanh-squashed MLP.

    `weights[i]` has shape (out, in) as in `torch.nn.Linear.weight`; hidden layers use ReLU.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if len(weights) != len(biases) or not weights:
        raise ValueError("need one bias per weight matrix and at least one layer")
    obs_dim = int(np.asarray(weights[0]).shape[1])
    act_dim = int(np.asarray(weights[-1]).shape[0])
    mean = np.asarray(obs_mean, dtype=np.float32).reshape(obs_dim)
    std = np.maximum(np.asarray(obs_std, dtype=np.float32).reshape(obs_dim), 1e-6)
    inits = [
        numpy_helper.from_array(mean, "norm_mean"),
        numpy_helper.from_array(std, "norm_std"),
        numpy_helper.from_array(np.array(-clip, dtype=np.float32), "clip_lo"),
        numpy_helper.from_array(np.array(clip, dtype=np.float32), "clip_hi"),
    ]
    nodes = [
        helper.make_node("Sub", [input_name, "norm_mean"], ["centred"]),
        helper.make_node("Div", ["centred", "norm_std"], ["scaled"]),
        helper.make_node("Clip", ["scaled", "clip_lo", "clip_hi"], ["h0"]),
    ]
    current = "h0"
    for i, (w, b) in enumerate(zip(weights, biases, strict=True)):
        w32 = np.asarray(w, dtype=np.float32)
        b32 = np.asarray(b, dtype=np.float32).reshape(w32.shape[0])
        inits += [numpy_helper.from_array(w32, f"W{i}"), numpy_helper.from_array(b32, f"b{i}")]
        pre = f"z{i + 1}"
        nodes.append(helper.make_node("Gemm", [current, f"W{i}", f"b{i}"], [pre], transB=1))
        last = i == len(weights) - 1
        out = output_name if last else f"h{i + 1}"
        nodes.append(helper.make_node("Tanh" if last else "Relu", [pre], [out]))
        current = out
    graph = helper.make_graph(
        nodes,
        "robo_agent_policy",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["batch", obs_dim])],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, ["batch", act_dim])],
        initializer=inits,
    )
    model = helper.make_model(
        graph, producer_name="robo_agent", opset_imports=[helper.make_opsetid("", OPSET)]
    )
    model.ir_version = 8  # readable by onnxruntime >= 1.12
    onnx.checker.check_model(model)
    return model.SerializeToString()


def write_artifact(folder: str | Path, model_bytes: bytes, spec_fields: dict) -> PolicySpec:
    """Write `policy.onnx` and a `policy.json` whose sha256 matches it; returns the spec."""
    import hashlib

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model_path = folder / MODEL_FILE
    tmp = folder / f".{MODEL_FILE}.tmp"
    tmp.write_bytes(model_bytes)
    tmp.replace(model_path)
    digest = hashlib.sha256(model_bytes).hexdigest()
    fields = {**spec_fields, "model_file": MODEL_FILE, "model_sha256": digest}
    spec = PolicySpec.model_validate(fields)
    write_spec(folder, spec)
    return spec


def spec_fields_from_env(env: object, task: str, inputs: list[tuple[str, int]]) -> dict:
    """The `PolicySpec` fields an environment can tell (all but the model hash).

    robo_agent envs give them through `deployment_spec()` (kept verbatim as
    `deployment`); panda-gym's joint-control envs (used by the benchmarks) fall back to
    the Panda description and panda-gym's constants (target += 0.05 rad * action).
    """
    from robo_agent.core.robot_spec import load_robot

    u = getattr(env, "unwrapped", env)
    act_dim = int(u.action_space.shape[0])
    inputs_json = [{"key": k, "size": int(n)} for k, n in inputs]
    if hasattr(u, "deployment_spec"):  # robo_agent.sim envs describe themselves
        dep = _jsonable(u.deployment_spec())
        scale = list(dep["joint_delta_scale"])
        if dep.get("gripper_delta_scale") is not None:
            scale.append(dep["gripper_delta_scale"])
        return {
            "robot": dep["robot"],
            "joint_names": dep["joint_names"],
            "task": task,
            "inputs": inputs_json,
            "observation_layout": dep["observation_layout"],
            "action_layout": dep["action_layout"],
            "action_dim": act_dim,
            "action_scale": scale,
            "action_mode": "joint_position_delta",
            "control_dt": float(dep["control_dt"]),
            "deployment": dep,
        }
    robot = load_robot("panda")  # panda-gym's Panda*Joints tasks
    control_dt = float(u.sim.timestep * u.sim.n_substeps) if hasattr(u, "sim") else 0.04
    return {
        "robot": robot.name,
        "joint_names": list(robot.joint_names),
        "task": task,
        "inputs": inputs_json,
        "observation_layout": None,
        "action_layout": None,
        "action_dim": act_dim,
        "action_scale": _action_scale(None, act_dim),
        "action_mode": "joint_position_delta",
        "control_dt": control_dt,
    }


def _action_scale(layout: object, act_dim: int) -> list[float]:
    scale = None
    if isinstance(layout, dict):
        scale = layout.get("scale") or layout.get("action_scale")
    elif layout is not None:
        scale = getattr(layout, "scale", None) or getattr(layout, "action_scale", None)
    if scale is None:
        return [0.05] * act_dim  # panda-gym: joint target = q + 0.05 * action
    arr = np.broadcast_to(np.asarray(scale, dtype=np.float64), (act_dim,))
    return [float(v) for v in arr]


def _action_mode(layout: object) -> str:
    mode = layout.get("mode") if isinstance(layout, dict) else getattr(layout, "mode", None)
    return str(mode) if mode else "joint_position_delta"


def _jsonable(value: object) -> object:
    """A JSON-safe copy (pydantic models, dataclasses, numpy arrays and tuples converted)."""
    import dataclasses
    import json

    if value is None:
        return None
    if hasattr(value, "model_dump"):
        value = value.model_dump(mode="json")
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    return json.loads(json.dumps(value, default=_default))


def _default(obj: object) -> object:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    return str(obj)
