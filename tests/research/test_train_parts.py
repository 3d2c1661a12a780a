"""Unit tests of train.py's parts (HER replay, input normaliser, actor log-probability),
in the spirit of SB3's tests of its buffers and distributions: real torch, no training."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from robo_agent.autoresearch import train

DIMS = {"observation": 3, "achieved_goal": 2, "desired_goal": 2}


def _episode(n: int, tag: float) -> dict[str, np.ndarray]:
    ep = {}
    for k, d in DIMS.items():
        ep[k] = np.full((n, d), tag, np.float32)
        ep[f"next_{k}"] = np.full((n, d), tag, np.float32)
    # achieved goals encode (episode tag, step) so a relabelled goal can be traced back
    steps = np.arange(n, dtype=np.float32)
    ep["next_achieved_goal"] = np.stack([np.full(n, tag), steps], 1).astype(np.float32)
    ep["desired_goal"][:] = -1.0
    ep["action"] = np.zeros((n, 1), np.float32)
    ep["terminated"] = np.zeros(n, np.float32)
    return ep


def test_her_relabels_with_a_future_goal_of_the_same_episode() -> None:
    buf = train.HerBuffer(100, DIMS, 1)
    buf.add_episode(_episode(10, tag=1.0))
    buf.add_episode(_episode(5, tag=2.0))
    rng = np.random.default_rng(0)
    batch = buf.sample(2000, her_ratio=1.0, rng=rng)
    tag, step = batch["desired_goal"][:, 0], batch["desired_goal"][:, 1]
    own_tag = batch["observation"][:, 0]
    assert np.array_equal(tag, own_tag)  # never a goal from another episode
    # the goal is one of the episode's own achieved goals (steps 0..len-1)
    assert (step >= 0).all() and (step < np.where(own_tag == 1.0, 10, 5)).all()
    none = buf.sample(500, her_ratio=0.0, rng=rng)
    assert (none["desired_goal"] == -1.0).all()  # her_ratio 0: goals untouched


def test_her_future_index_never_precedes_the_transition() -> None:
    buf = train.HerBuffer(50, DIMS, 1)
    buf.add_episode(_episode(20, tag=1.0))
    rng = np.random.default_rng(1)
    idx_rng = np.random.default_rng(1)
    batch = buf.sample(1000, 1.0, rng)
    idx = idx_rng.integers(0, buf.size, 1000)  # the same draw the buffer made
    assert (batch["desired_goal"][:, 1] >= idx).all()


def test_her_wraps_at_episode_granularity() -> None:
    buf = train.HerBuffer(12, DIMS, 1)
    buf.add_episode(_episode(5, 1.0))
    buf.add_episode(_episode(5, 2.0))
    buf.add_episode(_episode(5, 3.0))  # does not fit after 10: starts again at 0
    assert buf.pos == 5 and buf.size == 10
    assert (buf.data["observation"][:5, 0] == 3.0).all()
    assert (buf.ep_end[:5] == 5).all() and (buf.ep_end[5:10] == 10).all()
    buf.add_episode({k: v[:0] for k, v in _episode(1, 4.0).items()})  # empty: ignored
    assert buf.pos == 5


def test_normalizer_matches_numpy_and_clips() -> None:
    rng = np.random.default_rng(0)
    norm = train.Normalizer(3, torch.device("cpu"))
    chunks = [rng.normal([1.0, -2.0, 0.5], [0.5, 2.0, 0.001], (64, 3)) for _ in range(5)]
    for c in chunks:
        norm.update(c)
    data = np.concatenate(chunks)
    assert norm.mean_t.numpy() == pytest.approx(data.mean(0), abs=1e-5)
    std = np.sqrt(np.maximum(data.var(0), 1e-4))  # the floor keeps near-constant inputs finite
    assert norm.std_t.numpy() == pytest.approx(std, rel=1e-3)
    far = torch.tensor([[1.0, -2.0, 1.5]])
    assert norm(far)[0, 2].item() == 5.0  # 100 std away: clipped to +5


def test_actor_log_probability_is_the_tanh_gaussian_density() -> None:
    torch.manual_seed(0)
    actor = train.Actor(6, 3, 16)
    obs = torch.randn(256, 6)
    torch.manual_seed(1)
    action, logp = actor(obs)
    torch.manual_seed(1)  # replay the same noise to recover the pre-squash sample u
    h = actor.trunk(obs)
    mean, log_std = actor.mean(h), actor.log_std(h).clamp(-5.0, 2.0)
    u = mean + log_std.exp() * torch.randn_like(mean)
    assert torch.allclose(action, torch.tanh(u))
    base = torch.distributions.Normal(mean, log_std.exp()).log_prob(u).sum(-1)
    expected = base - torch.log1p(-torch.tanh(u) ** 2 + 1e-12).sum(-1)
    ok = (torch.tanh(u).abs() < 0.999).all(-1)  # away from saturation, where float32 is exact
    assert ok.sum() > 200
    assert torch.allclose(logp[ok], expected[ok], atol=1e-3)
    assert math.isfinite(logp.sum().item())
    assert torch.equal(actor.deterministic(obs), torch.tanh(mean))
