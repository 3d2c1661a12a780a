"""ONNX artifacts built from MLP weights match torch, carry the normaliser, load safely."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from robo_agent.autoresearch.onnx_policy import build_mlp_model, write_artifact

from robo_agent.core.artifact import ArtifactError
from robo_agent.policy import OnnxPolicy

pytestmark = pytest.mark.research


def _spec_fields() -> dict:
    return {
        "robot": "panda",
        "joint_names": [f"panda_joint{i}" for i in range(1, 8)],
        "task": "robo_agent/PandaReach-v0",
        "inputs": [{"key": "observation", "size": 20}, {"key": "desired_goal", "size": 3}],
        "action_dim": 7,
        "action_scale": [0.087] * 7,
        "control_dt": 0.04,
    }


def _torch_policy(obs_dim: int = 23, act_dim: int = 7) -> torch.nn.Sequential:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(obs_dim, 32), torch.nn.ReLU(),
        torch.nn.Linear(32, 32), torch.nn.ReLU(),
        torch.nn.Linear(32, act_dim), torch.nn.Tanh(),
    )  # fmt: skip


def test_onnxruntime_matches_torch_including_normaliser(tmp_path: Path) -> None:
    net = _torch_policy()
    rng = np.random.default_rng(0)
    mean = rng.normal(size=23).astype(np.float32)
    std = rng.uniform(0.1, 2.0, size=23).astype(np.float32)
    layers = [m for m in net if isinstance(m, torch.nn.Linear)]
    model = build_mlp_model(
        [m.weight.detach().numpy() for m in layers],
        [m.bias.detach().numpy() for m in layers],
        mean,
        std,
        clip=5.0,
    )
    spec = write_artifact(tmp_path, model, _spec_fields())
    policy = OnnxPolicy(tmp_path)
    assert policy.spec == spec and policy.spec.obs_dim == 23
    obs = rng.normal(scale=4.0, size=(64, 23)).astype(np.float32)
    with torch.no_grad():
        normed = torch.clamp(
            (torch.as_tensor(obs) - torch.as_tensor(mean)) / torch.as_tensor(std), -5, 5
        )
        expected = net(normed).numpy()
    got = policy.act({"observation": obs[:, :20], "desired_goal": obs[:, 20:]})
    np.testing.assert_allclose(got, expected, atol=1e-5)
    single = policy.act({"observation": obs[0, :20], "desired_goal": obs[0, 20:]})
    assert single.shape == (7,)
    np.testing.assert_allclose(policy.command(single), single * 0.087, rtol=1e-6)
    assert np.all(np.abs(got) <= 1.0)


def test_tampered_model_is_refused(tmp_path: Path) -> None:
    net = _torch_policy()
    layers = [m for m in net if isinstance(m, torch.nn.Linear)]
    model = build_mlp_model(
        [m.weight.detach().numpy() for m in layers],
        [m.bias.detach().numpy() for m in layers],
        np.zeros(23),
        np.ones(23),
    )
    write_artifact(tmp_path, model, _spec_fields())
    data = bytearray((tmp_path / "policy.onnx").read_bytes())
    data[-5] ^= 0xFF
    (tmp_path / "policy.onnx").write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="sha256"):
        OnnxPolicy(tmp_path)


def test_observation_of_wrong_size_is_refused(tmp_path: Path) -> None:
    net = _torch_policy()
    layers = [m for m in net if isinstance(m, torch.nn.Linear)]
    model = build_mlp_model(
        [m.weight.detach().numpy() for m in layers],
        [m.bias.detach().numpy() for m in layers],
        np.zeros(23),
        np.ones(23),
    )
    write_artifact(tmp_path, model, _spec_fields())
    policy = OnnxPolicy(tmp_path)
    with pytest.raises(ArtifactError, match="size 19"):
        policy.act({"observation": np.zeros(19), "desired_goal": np.zeros(3)})
    with pytest.raises(ArtifactError, match="no 'desired_goal'"):
        policy.act({"observation": np.zeros(20)})


def test_evaluator_refuses_a_policy_trained_faster_than_the_robot_may_move(
        tmp_path: Path) -> None:
    """An artifact whose joints move at the full URDF speed (0.087 rad per 40 ms step on
    the Panda) would be scored at one speed and clipped to another on the robot."""
    from robo_agent.autoresearch.evaluate import Evaluator

    net = _torch_policy()
    layers = [m for m in net if isinstance(m, torch.nn.Linear)]
    model = build_mlp_model([m.weight.detach().numpy() for m in layers],
                            [m.bias.detach().numpy() for m in layers],
                            np.zeros(23, np.float32), np.ones(23, np.float32), clip=5.0)
    fast, slow = tmp_path / "fast", tmp_path / "slow"
    write_artifact(fast, model, _spec_fields())
    write_artifact(slow, model, {**_spec_fields(), "action_scale": [0.0435] * 4 + [0.0522] * 3})
    evaluator = Evaluator("robo_agent/PandaReach-v0")
    try:
        with pytest.raises(ArtifactError, match=r"field action_scale .* at 1 of their velocity"):
            evaluator.run(fast, [10**9])
        assert evaluator.run(slow, [10**9])["episodes"] == 1.0
    finally:
        evaluator.close()
